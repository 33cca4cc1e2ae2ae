"""The simulator as a real gunicorn process, driven over HTTP by the SDK, the rail and the CLI."""

from __future__ import annotations

import http.server
import shlex
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import payos
import pytest
from click.testing import CliRunner
from payos.types import PayoutBatchItem, PayoutBatchRequest

from chopay.cli import main
from payments.rails import webhooks as wh
from payments.rails.base import Outcome, Reason, TransferRequest, TransferResult
from payments.rails.errors import RailError
from payments.rails.fakebank import config as cfg
from payments.rails.fakebank.process import Simulator

from .conftest import wait_for

BAD = {
    "0000099991": Reason.ACCOUNT_CLOSED,
    "0000099993": Reason.ACCOUNT_FROZEN,
    "0000099994": Reason.ACCOUNT_NOT_FOUND,
}


def test_the_unmodified_sdk_drives_the_simulator_over_http(live_bank: Callable[..., Simulator]):
    live = live_bank()
    assert f"client id:     {cfg.DEMO_CLIENT_ID}" in live.banner
    assert f"checksum key:  {cfg.DEMO_CHECKSUM_KEY}" in live.banner
    item = PayoutBatchItem(
        reference_id="R1", amount=150_000, description="TCXH", to_bin="970436", to_account_number="0123456789"
    )
    with payos.PayOS(
        cfg.DEMO_CLIENT_ID, cfg.DEMO_API_KEY, cfg.DEMO_CHECKSUM_KEY, base_url=live.url + "/"
    ) as client:
        payout = client.payouts.batch.create(PayoutBatchRequest(reference_id="B1", payouts=[item]))
        assert payout.transactions[0].state == "SUCCEEDED"
        assert client.payouts.get(payout.id) == payout
        assert client.payouts_account.balance().balance == str(cfg.DEFAULT_SOURCE_BALANCE - 150_000)
    with (
        payos.PayOS(
            cfg.DEMO_CLIENT_ID, "wrong", cfg.DEMO_CHECKSUM_KEY, base_url=live.url + "/", max_retries=0
        ) as wrong,
        pytest.raises(payos.UnauthorizedError),
    ):
        wrong.payouts_account.balance()


def _transfers(n: int) -> list[TransferRequest]:
    out = []
    bad = list(BAD)
    for i in range(n):
        account = bad[i % len(bad)] if i % 10 == 9 else f"{1_000_000 + i:010d}"
        out.append(TransferRequest(f"T{i:06d}", 10_000 + i, "970436", account, "TCXH 2026-12"))
    return out


def _resolve(rail, todo: dict[str, TransferRequest], final: dict[str, TransferResult]) -> None:
    for ref in list(todo):
        try:
            found = rail.status(ref)
        except RailError:
            continue
        if found is not None and found.final:
            final[ref] = found
            del todo[ref]


def test_exactly_once_whatever_the_faults(live_bank: Callable[..., Simulator]):
    live = live_bank("--drop-rate", "0.3", "--error-rate", "0.3", "--settle-ms", "50", "--seed", "11")
    rail = live.rail(timeout=10)
    items = _transfers(300)
    todo = {t.reference: t for t in items}
    final: dict[str, TransferResult] = {}
    faults: set[str] = set()
    for attempt in range(400):
        if not todo:
            break
        pending = list(todo.values())
        for start in range(0, len(pending), 50):
            chunk = pending[start : start + 50]
            try:
                results = rail.send(chunk, chunk_reference=f"C{attempt:03d}{start:04d}")
            except RailError as exc:
                faults.add(exc.code)
                continue
            for r in results:
                if r.final:
                    final[r.reference] = r
                    todo.pop(r.reference, None)
        _resolve(rail, todo, final)
    assert not todo
    assert {"response_lost", "server_error"} <= faults  # both faults really happened
    with live.admin() as admin:
        summary = admin.get("/admin/transfers").json()
        sample = [
            admin.get("/admin/transfers", params={"reference": t.reference}).json()["count"]
            for t in items[:40]
        ]
    payable = [t for t in items if t.account_number not in BAD]
    assert summary["references"] == len(payable)
    assert summary["payouts"] == len(payable)
    assert summary["references_paid_more_than_once"] == []
    assert summary["paid_amount"] == sum(t.amount for t in payable)
    assert sample == [0 if t.account_number in BAD else 1 for t in items[:40]]
    for t in items:
        result = final[t.reference]
        if t.account_number in BAD:
            assert (result.outcome, result.reason) == (Outcome.FAILED, BAD[t.account_number])
        else:
            assert result.outcome == Outcome.SUCCEEDED
    rail.close()
    assert "Traceback" not in live.log.read_text()


class _Intake(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]
    fail_first: int

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        status = 503 if len(self.received) <= self.fail_first else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"success": true}')

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def intake() -> Iterator[tuple[str, type[_Intake]]]:
    handler = type("Intake", (_Intake,), {"received": [], "fail_first": 1})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_pay_is_delivered_over_http_until_acknowledged(live_bank, intake, tmp_path: Path):
    url, handler = intake
    live = live_bank("--notify-url", url, "--connector", "cho=chopay:whsec_live", "--retry-base-ms", "20")
    runner = CliRunner()
    pay = (
        f"pay --bank-url {live.url} --to-bin 970436 --to-account 0123456789 --amount 45000 --memo CPABCD2345"
    )
    result = runner.invoke(main, ["fakebank", *shlex.split(pay), "--format", "chopay"])
    assert result.exit_code == 0, result.output
    wait_for(lambda: len(handler.received) >= 2)
    headers, body = handler.received[-1]
    assert wh.verify_chopay(body, headers[wh.SIGNATURE_HEADER], ["whsec_live"])
    assert wh.parse_chopay(body).amount == 45_000
    with live.admin() as admin:
        wait_for(lambda: admin.get("/admin/notifications").json()[0]["status"] == "delivered")

    out = runner.invoke(main, ["fakebank", "statement", "970436", "0123456789", "--db", str(live.db)])
    assert out.exit_code == 0, out.output
    assert "45000" in out.output
    assert "CPABCD2345" in out.output

    traffic = tmp_path / "stalls.csv"
    traffic.write_text("bin,account_number,connector\n970436,0123456789,cho\n970436,0123456788,cho\n")
    simulate = f"simulate --bank-url {live.url} --merchants {traffic} --rate 20 --duration 1 --seed 1"
    sim = runner.invoke(main, ["fakebank", *shlex.split(simulate)])
    assert sim.exit_code == 0, sim.output
    assert '"refused": 0' in sim.output
    with httpx.Client(base_url=live.url) as admin:
        wait_for(lambda: len(handler.received) >= 12)
        assert admin.get("/admin/accounts/970436/0123456788").json()["balance"] > 0


def test_pay_reports_a_refusal(live_bank):
    live = live_bank()
    pay = f"pay --bank-url {live.url} --to-bin 970436 --to-account 0123499991 --amount 1000 --memo x"
    result = CliRunner().invoke(main, ["fakebank", *shlex.split(pay)])
    assert result.exit_code == 1
    assert "account_closed" in result.output
