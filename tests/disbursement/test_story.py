"""The welfare office's month, end to end on PostgreSQL, and what the database and logs then hold.

1. create a program and fund it; 2. import 2,000 beneficiaries from XLSX; 3. upload a batch
with one bad row of each kind; 4. see exactly those rows reported; 5. approve it as another
user; 6. upload the same month again and see every row rejected as already in a batch. Then
the privacy check: no table and no log line holds a plaintext national id, phone or account
number.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from chopay.db import get_db
from chopay.models import metadata
from disbursement.models import PayoutItem
from qr import banks
from tests.chopay.helpers import capture_logs
from tests.disbursement.helpers import BIN, person, xlsx_file

COUNT = 2000
IMPORT_HEADER = [
    "national_id",
    "full_name",
    "date_of_birth",
    "gender",
    "ward",
    "province",
    "phone",
    "bin",
    "account_number",
    "status",
    "program",
    "monthly_amount",
    "enrolled_from",
]
BATCH_HEADER = ["national_id", "full_name", "amount", "bin", "account_number"]
SUSPENDED, DECEASED, NOT_ENROLLED, NO_ACCOUNT = 1997, 1998, 1999, 2000


def _registry_rows() -> list[list[Any]]:
    rows = []
    for i in range(1, COUNT + 1):
        p = person(i)
        p["date_of_birth"] = dt.date.fromisoformat(p["date_of_birth"])  # a real date cell, as Excel writes it
        p["status"] = {SUSPENDED: "suspended", DECEASED: "deceased"}.get(i, "active")
        p["program"], p["monthly_amount"], p["enrolled_from"] = "TCXH", 500_000, "2026-01"
        if i == NOT_ENROLLED:
            p["program"] = p["monthly_amount"] = p["enrolled_from"] = None
        if i == NO_ACCOUNT:
            p["bin"] = p["account_number"] = None
        rows.append([p[c] for c in IMPORT_HEADER])
    return rows


def _multipart(
    client: FlaskClient, url: str, headers: dict[str, str], data: bytes, name: str, **form: Any
) -> Any:
    fields = {k: str(v) for k, v in form.items()} | {"file": (io.BytesIO(data), name)}
    return client.post(url, data=fields, headers=headers, content_type="multipart/form-data")


def _line(p: dict[str, Any], amount: int = 500_000, **overrides: Any) -> list[Any]:
    values = {
        "national_id": p["national_id"],
        "full_name": p["full_name"],
        "amount": amount,
        "bin": None,
        "account_number": None,
        **overrides,
    }
    return [values[c] for c in BATCH_HEADER]


def run_story(
    client: FlaskClient,
    app: Flask,
    users: dict[str, dict[str, str]],
    run_jobs: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    officer, admin, approver = users["officer"], users["admin"], users["approver"]
    # 1. A program, funded.
    program = {
        "code": "TCXH",
        "name": "Trợ cấp xã hội hằng tháng",
        "legal_basis": "Nghị định 20/2021/NĐ-CP",
        "monthly_amount": 500_000,
        "cap": 1_000_000,
        "source_bin": BIN,
        "source_account": "0011000000001",
    }
    assert client.post("/v1/programs", json=program, headers=officer).status_code == 201
    funded = client.post(
        "/v1/programs/TCXH/funding",
        json={"amount": 2_000_000_000, "reference": "QD-123"},
        headers={**admin, "Idempotency-Key": "fund-QD-123"},
    )
    assert funded.get_json()["budget_balance"] == 2_000_000_000

    # 2. 2,000 beneficiaries from an XLSX workbook.
    workbook = xlsx_file(IMPORT_HEADER, _registry_rows())
    imported = _multipart(client, "/v1/beneficiaries/import", officer, workbook, "danh-sach.xlsx")
    assert imported.status_code == 200, imported.get_json()
    report = imported.get_json()
    assert (report["rows"], report["created"], report["rejected"], report["enrolled"]) == (
        COUNT,
        COUNT,
        0,
        COUNT - 1,
    )
    ids = {
        b["full_name"]: b["id"]
        for b in client.get("/v1/beneficiaries?limit=500&name=Test 000", headers=officer).get_json()["items"]
    }
    assert len(ids) == 9

    # Payouts of an earlier batch for the same month: person 1 paid, person 2 waiting to be sent.
    earlier = [_line(person(1)), _line(person(2))]
    resp = _multipart(
        client,
        "/v1/batches",
        officer,
        xlsx_file(BATCH_HEADER, earlier),
        "dot-1.xlsx",
        program="TCXH",
        period="2026-11",
        declared_count=2,
        declared_total=1_000_000,
    )
    run_jobs()
    first_id = resp.get_json()["id"]
    assert (
        client.post(
            f"/v1/batches/{first_id}/approve", json={"exclude_invalid": False}, headers=approver
        ).status_code
        == 200
    )
    with get_db(app).unit_of_work() as s:  # what the payout stage records once the bank confirms
        s.execute(
            sa.update(PayoutItem)
            .where(PayoutItem.batch_id == first_id, PayoutItem.row_number == 2)
            .values(status="paid")
        )

    # 3. The month's batch: good rows, and one bad row of each kind.
    closed = banks.Bank("999999", "TESTCLOSED", "Test Closed", "Ngân hàng Test", None, False, False, "bank")
    real = banks.by_bin
    monkeypatch.setattr(banks, "by_bin", lambda b: closed if b == "999999" else real(b))
    good = [_line(person(i)) for i in range(20, 1990)]
    p = person
    bad = {
        "beneficiary_unknown": _line(p(5000)),
        "national_id_province_unknown": _line(p(10), national_id="003" + p(10)["national_id"][3:]),
        "national_id_leading_zero_lost": _line(p(11), national_id=int(p(11)["national_id"])),
        "name_mismatch": _line(p(12), full_name="Lê Thị Khác"),
        "beneficiary_suspended": _line(p(SUSPENDED)),
        "beneficiary_deceased": _line(p(DECEASED)),
        "not_enrolled": _line(p(NOT_ENROLLED)),
        "amount_not_positive": _line(p(13), amount=0),
        "amount_over_cap": _line(p(14), amount=1_500_000),
        "duplicate_in_file": _line(p(20)),
        "already_paid": _line(p(1)),
        "already_in_batch": _line(p(2)),
        "bin_unknown": _line(p(15), bin="123456", account_number="0123456789"),
        "bank_not_receiving": _line(p(16), bin="999999", account_number="0123456789"),
        "destination_missing": _line(p(NO_ACCOUNT)),
    }
    rows = good + list(bad.values())
    expected = {len(good) + 2 + n: code for n, code in enumerate(bad)}
    total = sum(r[2] for r in rows)
    resp = _multipart(
        client,
        "/v1/batches",
        officer,
        xlsx_file(BATCH_HEADER, rows),
        "chi-tra-2026-11.xlsx",
        program="TCXH",
        period="2026-11",
        declared_count=len(rows),
        declared_total=total,
    )
    assert resp.status_code == 202
    run_jobs()
    batch = client.get(resp.headers["Location"], headers=officer).get_json()
    assert batch["status"] == "ready"

    # 4. Exactly those rows are reported, each with its own code.
    errors = client.get(f"/v1/batches/{batch['id']}/errors?limit=500", headers=officer).get_json()
    assert {e["row"]: e["code"] for e in errors["items"]} == expected
    assert len(errors["items"]) == len(expected)
    assert (batch["rows_valid"], batch["rows_invalid"]) == (len(good), len(bad))

    # 5. Another user approves it, accepting explicitly that the bad rows are left out.
    assert (
        client.post(
            f"/v1/batches/{batch['id']}/approve", json={"exclude_invalid": False}, headers=approver
        ).status_code
        == 409
    )
    approved = client.post(
        f"/v1/batches/{batch['id']}/approve", json={"exclude_invalid": True}, headers=approver
    )
    assert approved.get_json()["status"] == "approved"
    items = client.get(f"/v1/batches/{batch['id']}/items?limit=500", headers=officer).get_json()["items"]
    assert all(i["reference"] and i["status"] == "pending" for i in items)

    # 6. The same month again: every row is already in a batch.
    again = _multipart(
        client,
        "/v1/batches",
        officer,
        xlsx_file(BATCH_HEADER, good),
        "chi-tra-lai.xlsx",
        program="TCXH",
        period="2026-11",
        declared_count=len(good),
        declared_total=len(good) * 500_000,
    )
    run_jobs()
    second = client.get(again.headers["Location"], headers=officer).get_json()
    assert second["status"] == "invalid"
    assert second["rows_valid"] == 0
    assert second["rows_invalid"] == len(good)
    codes = {e["code"]: e["rows"] for e in second["report"]["by_error"]}
    assert codes == {"already_in_batch": len(good), "no_valid_rows": 0}
    return {"people": [person(i) for i in range(1, COUNT + 1)]}


@pytest.fixture
def users(user: Callable[[str], tuple[int, dict[str, str]]]) -> dict[str, dict[str, str]]:
    return {role: user(role)[1] for role in ("officer", "admin", "approver")}


@pytest.mark.postgres
@pytest.mark.postgresql_only
def test_a_month_of_payouts(
    database_url: str,
    client: FlaskClient,
    app: Flask,
    users: dict[str, dict[str, str]],
    run_jobs: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
):
    run_story(client, app, users, run_jobs, monkeypatch)


@pytest.mark.postgres
@pytest.mark.postgresql_only
def test_no_plaintext_personal_data_in_any_table_or_log(
    database_url: str,
    client: FlaskClient,
    app: Flask,
    users: dict[str, dict[str, str]],
    run_jobs: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
):
    with capture_logs() as logs:
        story = run_story(client, app, users, run_jobs, monkeypatch)
    secrets = set()
    for p in story["people"]:
        secrets |= {p["national_id"], p["phone"], p["account_number"], p["national_id"][1:]}
    secrets |= {"0123456789"}
    dump = []
    with get_db(app).read_session() as s:
        for table in metadata.sorted_tables:
            for row in s.execute(sa.select(table)):
                dump.append(
                    json.dumps(
                        [v.decode("latin-1") if isinstance(v, bytes) else v for v in row],
                        default=str,
                        ensure_ascii=False,
                    )
                )
    text = "\n".join(dump)
    assert len(dump) > 4000  # the registry, the items, the errors, the ledger: the tables were really read
    leaked = sorted(s for s in secrets if s in text)
    assert leaked == []
    assert logs.lines  # requests and jobs were logged
    log_text = "\n".join(logs.lines)
    assert sorted(s for s in secrets if s in log_text) == []
