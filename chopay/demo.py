"""A demo data directory a newcomer can open: a market, a program with a paid batch, a reconciliation.

:func:`seed` fills an empty data directory through chopay's own API (the requests run in this
process through the Flask test client, so every row goes through the services, the request's
unit of work and the ledger, exactly as in production):

* a market, ``CHO-THU``, with 20 vendors with obviously fake names, each with its static QR, and
  a day of payments into their accounts, delivered as signed bank notifications
  (``X-Chopay-Signature``) to ``POST /v1/bank-notifications``; some pay a vendor's payment intent;
* a program, ``THU``, funded, with 200 fake beneficiaries, and one batch uploaded, validated,
  approved by a second user and paid through the bank simulator over HTTP; three beneficiaries
  hold accounts the simulator keeps closed, frozen and not found, so the batch ends
  ``completed_with_failures`` with those three failures;
* one reconciliation of the simulator's statement of the payout account against the program's
  budget account.

The simulator must be running at ``settings.payout_url`` (``chopay demo`` starts it). What the
demo needs later (the tokens of each role, ids for the page URLs) is kept in ``demo.json``
(mode 0600) in the data directory.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from flask import Flask
from flask.testing import FlaskClient

from chopay.config import Settings

STATE_FILE = "demo.json"
MARKET = "CHO-THU"
MARKET_NAME = "Chợ Thử"
PROGRAM = "THU"
PERIOD = "2026-12"
VENDORS = 20
BENEFICIARIES = 200
MONTHLY = 500_000
BIN = "970436"  # Vietcombank: in the bank directory, receives transfers
CONNECTOR = "demo-bank"
CONNECTOR_SECRET = "whsec_demo_bank_secret_not_for_production"
# Beneficiaries whose accounts the simulator keeps in a documented dead state (last five digits).
DEAD_ACCOUNTS = {
    50: ("99991", "account_closed"),
    100: ("99993", "account_frozen"),
    150: ("99994", "account_not_found"),
}
ROLES = ("admin", "officer", "approver", "auditor", "merchant")
VIETNAM = dt.timezone(dt.timedelta(hours=7))


class DemoError(RuntimeError):
    """A step of the seeding did not give what it should; the message says which."""


@dataclass
class Demo:
    """What a seeded demo directory holds, for its banner."""

    tokens: dict[str, str]
    market: str
    merchants: list[str]
    program: str
    batch: int
    reconciliation: str
    receipt: str | None
    payments: int = 0
    intents_paid: int = 0
    failures: dict[str, str] = field(default_factory=dict)

    def save(self, data_dir: Path) -> None:
        from chopay.cli.keys import write_secret

        path = data_dir / STATE_FILE
        if path.exists():
            path.unlink()
        write_secret(path, json.dumps(asdict(self), ensure_ascii=False, indent=2) + "\n")

    @classmethod
    def load(cls, data_dir: Path) -> Demo | None:
        path = data_dir / STATE_FILE
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def pages(self, base: str) -> list[tuple[str, str]]:
        """Return (what, URL) of each page the demo shows."""
        vendor = self.merchants[0]
        pages = [
            ("sign in", f"{base}/login"),
            ("vendor poster", f"{base}/m/{vendor}/poster"),
            ("vendor live page", f"{base}/m/{vendor}"),
            ("market figures", f"{base}/markets/{self.market}"),
            ("payout batches", f"{base}/batches"),
            ("the paid batch", f"{base}/batches/{self.batch}"),
            ("ledger audit", f"{base}/audit"),
            ("reconciliation", f"{base}/audit/reconciliations/{self.reconciliation}"),
        ]
        if self.receipt:
            pages.append(("receipt check", f"{base}/r/{self.receipt}"))
        pages.append(("API docs", f"{base}/docs"))
        return pages


def demo_settings(data_dir: Path, payout_url: str, **extra: Any) -> Settings:
    """Return the embedded defaults on ``data_dir``, paying through ``payout_url``, with the connector."""
    from chopay.config import from_env

    return from_env(
        {},
        data_dir=data_dir,
        payout_url=payout_url,
        bank_connectors=f"{CONNECTOR}=chopay:{CONNECTOR_SECRET}",
        **extra,
    )


def connector_flag(notify_url: str) -> str:
    """Return the simulator's ``--connector`` value that notifies this demo's chopay."""
    return f"{CONNECTOR}=chopay:{CONNECTOR_SECRET}@{notify_url}"


class _Api:
    """Requests to the app as one user; a non-2xx answer is a :class:`DemoError`."""

    def __init__(self, client: FlaskClient, token: str | None) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200, 201, 202), **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        resp = self.client.open(path, method=method, headers=headers, **kwargs)
        if resp.status_code not in expect:
            raise DemoError(
                f"{method} {path} answered {resp.status_code}: {resp.get_data(as_text=True)[:500]}"
            )
        return resp.get_json()

    def upload(self, path: str, name: str, data: bytes, field_name: str = "file", **form: Any) -> Any:
        fields = {k: str(v) for k, v in form.items()} | {field_name: (io.BytesIO(data), name)}
        return self.call("POST", path, data=fields, content_type="multipart/form-data")


def _users(app: Flask) -> dict[str, str]:
    from chopay.db import get_db
    from chopay.users import create_user

    names = {
        "admin": "Quản trị Thử",
        "officer": "Cán bộ Trần Thị Thử",
        "approver": "Người duyệt Lê Văn Thử",
        "auditor": "Kiểm toán Phạm Thị Thử",
    }
    with get_db(app).unit_of_work() as s:
        return {role: create_user(s, name=name, role=role).token for role, name in names.items()}


def vendor_fields(n: int) -> dict[str, Any]:
    """Return the registry fields of obviously fake vendor ``n``."""
    return {
        "display_name": f"Sạp Thử {n:02d} — Nguyễn Văn Thử",
        "market_code": MARKET,
        "market_name": MARKET_NAME,
        "stall": f"T-{n:02d}",
        "ward": "Phường Thử Nghiệm",
        "province": "Đà Nẵng",
        "phone": f"09000000{n:02d}",
        "bin": BIN,
        "account_number": f"{9_100_000_000 + n}",
        "account_holder": f"NGUYEN VAN THU {n:02d}",
    }


def _notify(client: FlaskClient, body: dict[str, Any]) -> dict[str, Any]:
    from payments.rails.webhooks.chopay import chopay_headers

    raw = json.dumps(body, ensure_ascii=False).encode()
    resp = client.post(
        "/v1/bank-notifications", data=raw, headers=chopay_headers(CONNECTOR, raw, CONNECTOR_SECRET)
    )
    if resp.status_code not in (200, 201):
        raise DemoError(
            f"the bank notification was refused: {resp.status_code} {resp.get_data(as_text=True)[:300]}"
        )
    result: dict[str, Any] = resp.get_json()
    return result


def _market(
    app: Flask, client: FlaskClient, officer: _Api, now: dt.datetime
) -> tuple[list[str], int, int, int]:
    """Register the vendors and deliver a day of payments; return (ids, pk of 1, payments, intents)."""
    from chopay.db import get_db
    from merchants.services import registry

    ids = [officer.call("POST", "/v1/merchants", json=vendor_fields(n))["id"] for n in range(1, VENDORS + 1)]
    rng = random.Random(20261202)
    opening = now.astimezone(VIETNAM).replace(hour=6, minute=0, second=0, microsecond=0)
    start = min(opening, now - dt.timedelta(hours=3))
    span = (now - dt.timedelta(minutes=1) - start).total_seconds()
    serial = 0
    payments = 0
    for n in range(1, VENDORS + 1):
        for _ in range(rng.randint(3, 8)):
            serial += 1
            moment = start + dt.timedelta(seconds=rng.uniform(0, span))
            _notify(
                client,
                {
                    "bank_txn_id": f"FT{now:%y%m%d}{serial:06d}",
                    "bin": BIN,
                    "account_number": vendor_fields(n)["account_number"],
                    "amount": rng.choice([10_000, 15_000, 20_000, 25_000, 30_000, 45_000, 50_000, 120_000]),
                    "description": rng.choice(["mua rau", "tien ca", "thanh toan", "mua trai cay"]),
                    "occurred_at": moment.isoformat(),
                    "payer_name": "NGUYEN VAN KHACH THU",
                },
            )
            payments += 1
    # Vendors 1 to 5 each show two dynamic QRs; the buyers pay them now.
    paid = 0
    for n, public_id in enumerate(ids[:5], start=1):
        for amount in (35_000, 68_000):
            intent = officer.call(
                "POST",
                f"/v1/merchants/{public_id}/payment-intents",
                json={"amount": amount, "memo": "hang kho"},
            )
            serial += 1
            outcome = _notify(
                client,
                {
                    "bank_txn_id": f"FT{now:%y%m%d}{serial:06d}",
                    "bin": BIN,
                    "account_number": vendor_fields(n)["account_number"],
                    "amount": amount,
                    "description": f"MBVCB.3312.{intent['reference']}.thanh toan",
                    "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
                    "payer_name": "NGUYEN VAN KHACH THU",
                },
            )
            payments += 1
            paid += outcome["payment"]["kind"] == "intent"
    with get_db(app).read_session() as s:
        first = registry.get(s, ids[0]).id
    return ids, first, payments, paid


def person(serial: int) -> dict[str, Any]:
    """Return the registry fields of obviously fake beneficiary ``serial``, enrolled in the program."""
    from disbursement import domain

    born = dt.date(1940 + serial % 45, 1 + serial % 12, 1 + serial % 28)
    gender = "female" if serial % 2 else "male"
    dead = DEAD_ACCOUNTS.get(serial)
    account = f"9{serial:04d}{dead[0]}" if dead else f"92{serial:08d}"
    return {
        "national_id": f"048{domain.century_digit(born.year, gender)}{born.year % 100:02d}{serial:06d}",
        "full_name": f"{'Trần Thị' if serial % 2 else 'Nguyễn Văn'} Thử {serial:03d}",
        "date_of_birth": born.isoformat(),
        "gender": gender,
        "ward": f"Phường Thử {serial % 4 + 1}",
        "province": "Đà Nẵng",
        "phone": f"09{serial:08d}",
        "bin": BIN,
        "account_number": account,
        "status": "active",
        "program": PROGRAM,
        "monthly_amount": MONTHLY,
        "enrolled_from": "2026-01",
    }


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _wait(
    condition: Callable[[], bool], run: Callable[[], object], what: str, timeout: float = 300.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run()
        if condition():
            return
        time.sleep(0.2)
    raise DemoError(f"{what} did not happen within {timeout:.0f} s")


def _program(
    app: Flask, bank: httpx.Client, users: dict[str, _Api], run_jobs: Callable[[], object]
) -> tuple[int, str | None, dict[str, str]]:
    """Create, fund and enrol the program, pay one batch; return (batch id, a receipt, failures)."""
    officer, admin, approver = users["officer"], users["admin"], users["approver"]
    total = BENEFICIARIES * MONTHLY
    officer.call(
        "POST",
        "/v1/programs",
        json={
            "code": PROGRAM,
            "name": "Trợ cấp thử nghiệm hằng tháng",
            "legal_basis": "Quyết định thử nghiệm 01/2026",
            "monthly_amount": MONTHLY,
            "cap": 1_000_000,
            "source_bin": BIN,
            "source_account": "1000000001",
        },
    )
    # The budget arrives at the bank's payout account and is recorded in the ledger.
    funded = bank.post("/admin/fund", json={"amount": total})
    if funded.status_code >= 300:
        raise DemoError(f"the simulator refused the funding: {funded.text[:300]}")
    admin.call(
        "POST",
        f"/v1/programs/{PROGRAM}/funding",
        json={"amount": total, "reference": "FUNDING"},
        headers={"Idempotency-Key": "demo-funding"},
    )
    people = [person(n) for n in range(1, BENEFICIARIES + 1)]
    imported = officer.upload("/v1/beneficiaries/import", "danh-sach.csv", _csv(people))
    if imported["created"] != BENEFICIARIES:
        raise DemoError(
            f"the beneficiary import created {imported['created']}, not {BENEFICIARIES}: {imported}"
        )
    lines = [
        {"national_id": p["national_id"], "full_name": p["full_name"], "amount": MONTHLY} for p in people
    ]
    batch = officer.upload(
        "/v1/batches",
        f"chi-tra-{PERIOD}.csv",
        _csv(lines),
        program=PROGRAM,
        period=PERIOD,
        declared_count=len(lines),
        declared_total=total,
    )
    url = f"/v1/batches/{batch['id']}"
    _wait(lambda: officer.call("GET", url)["status"] != "validating", run_jobs, "the batch's validation")
    found = officer.call("GET", url)
    if found["status"] != "ready":
        raise DemoError(f"the batch is {found['status']}, not ready: {found}")
    approver.call("POST", f"{url}/approve", json={"exclude_invalid": False})
    final = {"completed", "completed_with_failures", "failed", "cancelled"}
    _wait(lambda: officer.call("GET", url)["status"] in final, run_jobs, "the batch's payment")
    failed = officer.call("GET", f"{url}/items", query_string={"status": "failed", "limit": 50})["items"]
    paid = officer.call("GET", f"{url}/items", query_string={"status": "paid", "limit": 1})["items"]
    failures = {str(i["row"] - 1): i["reason_code"] for i in failed}
    return batch["id"], (paid[0]["receipt_code"] if paid else None), failures


def _reconcile(app: Flask, bank: httpx.Client, auditor: _Api, run_jobs: Callable[[], object]) -> str:
    """Reconcile today's statement of the payout account against the program's budget."""
    from payments.rails.fakebank import config as fbcfg

    today = dt.datetime.now(VIETNAM).date().isoformat()
    statement = bank.get(
        f"/admin/statements/{fbcfg.SOURCE_BIN}/{fbcfg.SOURCE_NUMBER}",
        params={"format": "camt053", "from": today, "to": today},
    )
    if statement.status_code != 200:
        raise DemoError(f"the simulator gave no statement: {statement.status_code} {statement.text[:300]}")
    made = auditor.upload(
        "/v1/reconciliations",
        "sao-ke.xml",
        statement.content,
        field_name="statement",
        account=f"program:{PROGRAM}:budget",
        format="camt053",
    )
    url = f"/v1/reconciliations/{made['id']}"
    _wait(lambda: auditor.call("GET", url)["status"] in {"done", "failed"}, run_jobs, "the reconciliation")
    rec = auditor.call("GET", url)
    if rec["status"] != "done":
        raise DemoError(f"the reconciliation failed: {rec}")
    return str(made["id"])


def seed(settings: Settings, *, echo: Callable[[str], object] = lambda _m: None) -> Demo:
    """Migrate ``settings.data_dir`` and fill it; the simulator runs at ``settings.payout_url``."""
    from chopay import create_app, jobs, migrate
    from chopay.cli.keys import ensure_keys
    from chopay.db import get_db
    from chopay.users import create_user
    from disbursement import execution
    from payments.ledger import jobs as ledger_jobs

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.database_url)
    ensure_keys(settings)
    app = create_app(settings)
    runner = jobs.runner(app)

    def run_jobs() -> object:
        with app.app_context():
            return runner.run_pending()  # type: ignore[attr-defined]

    try:
        tokens = _users(app)
        client = app.test_client()
        api = {role: _Api(client, token) for role, token in tokens.items()}
        echo(f"market {MARKET}: {VENDORS} vendors and a day of payments")
        ids, first, payments, intents_paid = _market(app, client, api["officer"], dt.datetime.now(dt.UTC))
        with get_db(app).unit_of_work() as s:
            tokens["merchant"] = create_user(s, name="Sạp Thử 01", role="merchant", merchant_id=first).token
        with httpx.Client(base_url=settings.payout_url, timeout=30) as bank:
            echo(f"program {PROGRAM}: {BENEFICIARIES} beneficiaries and a batch paid through the simulator")
            batch, receipt, failures = _program(app, bank, api, run_jobs)
            with app.app_context():
                ledger_jobs.seal(get_db(app), settings, force=True)
            echo("reconciliation of the payout account's statement")
            reconciliation = _reconcile(app, bank, api["auditor"], run_jobs)
        run_jobs()
        with app.app_context():
            ledger_jobs.seal(get_db(app), settings, force=True)
    finally:
        rail = app.extensions.get(execution.RAIL_EXTENSION)
        if rail is not None and hasattr(rail, "close"):
            rail.close()  # its connections to the simulator
        get_db(app).engine.dispose()
    demo = Demo(
        tokens=tokens,
        market=MARKET,
        merchants=ids,
        program=PROGRAM,
        batch=batch,
        reconciliation=reconciliation,
        receipt=receipt,
        payments=payments,
        intents_paid=intents_paid,
        failures=failures,
    )
    demo.save(settings.data_dir)
    return demo
