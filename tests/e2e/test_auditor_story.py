"""An auditor's day against a running service: entries are sealed without anyone asking, and the
export verifies offline with nothing but the public key and the pure ledger modules."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from payments.ledger import merkle
from payments.ledger.note import Checkpoint, Verifier, open_note

from .serving import Service, admin_headers, serving

REPO = Path(__file__).resolve().parents[2]

# Run the verifier where Flask, SQLAlchemy, rq and click cannot be imported.
BLOCKED_RUN = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"flask", "sqlalchemy", "rq", "click", "chopay", "werkzeug"}:
            raise ImportError(f"{name} is not available to the offline verifier")
sys.meta_path.insert(0, Block())
sys.path.insert(0, sys.argv.pop(1))
from payments.ledger.verify import main
raise SystemExit(main(sys.argv[1:]))
"""


def _post(service: Service, path: str, body: dict, headers: dict[str, str]) -> dict:
    resp = service.request(
        "POST", path, json.dumps(body).encode(), {**headers, "Content-Type": "application/json"}
    )
    assert resp.status in (200, 201), resp.body
    return resp.json()  # type: ignore[return-value]


def _wait_for_checkpoint(service: Service, auditor: dict[str, str], size: int) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        resp = service.request("GET", "/v1/ledger/checkpoint", headers=auditor)
        if resp.status == 200 and resp.body.decode().split("\n")[1] == str(size):
            return resp.body.decode()
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint of size {size} within 30 s:\n{service.output()}")


def test_entries_are_sealed_and_the_export_verifies_offline(tmp_path):
    with serving(tmp_path / "var") as service:
        admin = admin_headers(service)
        for code, kind in [("program:TCXH:budget", "asset"), ("equity:state-funding", "equity")]:
            _post(service, "/v1/ledger/accounts", {"code": code, "kind": kind}, admin)
        for month in ("2026-10", "2026-11"):
            _post(
                service,
                "/v1/ledger/transactions",
                {
                    "kind": "funding",
                    "memo": f"TCXH budget {month}",
                    "postings": [
                        {"account": "program:TCXH:budget", "amount": 250_000_000},
                        {"account": "equity:state-funding", "amount": -250_000_000},
                    ],
                },
                {**admin, "Idempotency-Key": f"funding-{month}"},
            )
        token = _post(service, "/v1/users", {"name": "Auditor Tran Thi B", "role": "auditor"}, admin)["token"]
        auditor = {"Authorization": f"Bearer {token}"}

        # The in-process worker sequences and signs without any manual step.
        note = _wait_for_checkpoint(service, auditor, 2)
        keys = json.loads(service.request("GET", "/v1/ledger/verifier-key", headers=auditor).body)["keys"]
        text, signers = open_note(note, [Verifier.from_vkey(k) for k in keys])
        root = Checkpoint.parse(text).root
        assert signers

        entry = json.loads(service.request("GET", "/v1/ledger/entries/1", headers=auditor).body)
        assert entry["leaf"]["memo"] == "TCXH budget 2026-11"
        assert merkle.verify_inclusion(
            1, 2, bytes.fromhex(entry["leaf_hash"]), [bytes.fromhex(h) for h in entry["proof"]], root
        )

        export = service.request("GET", "/v1/ledger/export", headers=auditor)
        assert export.status == 200
        path = tmp_path / "ledger.jsonl"
        path.write_bytes(export.body)

    run = [sys.executable, "-c", BLOCKED_RUN, str(REPO), str(path), "--key", keys[0]]
    ok = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "size: 2" in ok.stdout
    assert root.hex() in ok.stdout

    edited = tmp_path / "edited.jsonl"
    edited.write_text(path.read_text().replace("TCXH budget 2026-10", "TCXH budget 2026-09"))
    bad = subprocess.run(
        [*run[:4], str(edited), "--key", keys[0]], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1
    assert "entry 0" in bad.stdout + bad.stderr
