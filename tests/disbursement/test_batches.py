"""Payout batches through the API: upload, validation, the error report, approval and rejection."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from chopay.db import get_db
from disbursement.models import Batch, PayoutItem, Upload, UploadChunk
from qr import banks
from tests.chopay.helpers import assert_problem
from tests.disbursement.helpers import BIN, cccd, csv_file, person, xlsx_file

HEADER = ["national_id", "full_name", "amount", "bin", "account_number"]
PERIOD = "2026-11"


def row(p: dict[str, Any], amount: int = 500_000, **overrides: Any) -> dict[str, Any]:
    return {"national_id": p["national_id"], "full_name": p["full_name"], "amount": amount, **overrides}


def upload_json(
    client: FlaskClient, headers: dict[str, str], rows: list[dict[str, Any]], **fields: Any
) -> Any:
    items = fields.pop("items", rows)
    body = {
        "program": "TCXH",
        "period": PERIOD,
        "declared_count": len(items),
        "declared_total": sum(i["amount"] for i in items) or 1,
        "items": items,
        **fields,
    }
    return client.post("/v1/batches", json=body, headers=headers)


def upload_file(client: FlaskClient, headers: dict[str, str], data: bytes, name: str, **fields: Any) -> Any:
    form = {
        "program": "TCXH",
        "period": PERIOD,
        **{k: str(v) for k, v in fields.items()},
        "file": (io.BytesIO(data), name),
    }
    return client.post("/v1/batches", data=form, headers=headers, content_type="multipart/form-data")


def validated(
    client: FlaskClient, headers: dict[str, str], resp: Any, run_jobs: Callable[[], int]
) -> dict[str, Any]:
    assert resp.status_code == 202, resp.get_json()
    assert resp.get_json()["status"] == "validating"
    run_jobs()
    return client.get(resp.headers["Location"], headers=headers).get_json()


def errors_of(client: FlaskClient, headers: dict[str, str], batch_id: int) -> list[tuple[int | None, str]]:
    found = client.get(f"/v1/batches/{batch_id}/errors?limit=500", headers=headers).get_json()["items"]
    return [(e["row"], e["code"]) for e in found]


def test_every_kind_of_bad_row_is_reported_on_its_row(
    client: FlaskClient,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    approver: dict[str, str],
    run_jobs: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
):
    # No BIN in today's directory refuses transfers; a test bank that does stands in for one that stops.
    closed = banks.Bank("999999", "TESTCLOSED", "Test Closed", "Ngân hàng Test", None, False, False, "bank")
    real = banks.by_bin
    monkeypatch.setattr(banks, "by_bin", lambda b: closed if b == "999999" else real(b))
    held = validated(
        client, officer, upload_json(client, officer, [row(people[0]), row(people[1])]), run_jobs
    )
    assert held["status"] == "ready"
    client.post(f"/v1/batches/{held['id']}/approve", json={"exclude_invalid": False}, headers=approver)
    with get_db(client.application).unit_of_work() as s:  # the next stage pays the first person
        s.execute(
            sa.update(PayoutItem).where(PayoutItem.beneficiary_id == people[0]["id"]).values(status="paid")
        )
    p = people
    rows = [
        row(p[2]),
        row(p[3]),  # 1, 2: good
        row(person(99)),  # 3: not registered
        row(p[4], national_id="003" + p[4]["national_id"][3:]),  # 4: no such province
        row(p[5], full_name="Trần Thị Khác"),  # 5: another name
        row(p[16]),
        row(p[17]),
        row(p[18]),  # 6-8: suspended, deceased, not enrolled
        row(p[6], amount=0),
        row(p[7], amount=1_000_001),  # 9, 10: amounts
        row(p[2]),  # 11: p[2] again
        row(p[0]),
        row(p[1]),  # 12, 13: paid, in another batch
        row(p[8], bin="123456", account_number="1234567"),  # 14: unknown BIN
        row(p[9], bin="999999", account_number="1234567"),  # 15: bank receives no transfers
        row(p[19]),  # 16: no account anywhere
        row(p[10], full_name="NGUYEN VAN TEST 0011", bin=BIN, account_number="7000000011"),  # 17: good
        row(p[11], national_id=p[11]["national_id"][1:]),  # 18: leading zero lost
        row(p[12], amount=-5),  # 19: negative
    ]
    batch = validated(client, officer, upload_json(client, officer, rows), run_jobs)
    assert batch["status"] == "ready"
    assert (batch["rows_checked"], batch["rows_valid"], batch["rows_invalid"]) == (19, 3, 16)
    assert errors_of(client, officer, batch["id"]) == [
        (3, "beneficiary_unknown"),
        (4, "national_id_province_unknown"),
        (5, "name_mismatch"),
        (6, "beneficiary_suspended"),
        (7, "beneficiary_deceased"),
        (8, "not_enrolled"),
        (9, "amount_not_positive"),
        (10, "amount_over_cap"),
        (11, "duplicate_in_file"),
        (12, "already_paid"),
        (13, "already_in_batch"),
        (14, "bin_unknown"),
        (15, "bank_not_receiving"),
        (16, "destination_missing"),
        (18, "national_id_leading_zero_lost"),
        (19, "amount_not_positive"),
    ]
    report = batch["report"]
    assert report["by_status"] == [{"status": "pending", "count": 3, "amount": 1_500_000}]
    assert {e["code"]: (e["rows"], e["amount"]) for e in report["by_error"]}["amount_over_cap"] == (
        1,
        1_000_001,
    )
    assert sum(w["count"] for w in report["by_ward"]) == 3
    items = client.get(f"/v1/batches/{batch['id']}/items", headers=officer).get_json()["items"]
    assert [(i["row"], i["destination_source"], i["reference"]) for i in items] == [
        (1, "registry", None),
        (2, "registry", None),
        (17, "file", None),
    ]
    assert items[2]["account_number"] == "7******011"
    text = client.get(f"/v1/batches/{batch['id']}/errors.csv", headers=officer).get_data(as_text=True)
    lines = text.splitlines()
    assert lines[0] == "row,column,code,message"
    assert lines[1].startswith("3,national_id,beneficiary_unknown,No beneficiary with national id 0********")
    assert len(lines) == 17
    for p_ in people:
        assert p_["national_id"] not in text


def test_control_totals_are_checked_before_any_row(
    client: FlaskClient, people: list[dict[str, Any]], officer: dict[str, str], run_jobs: Callable[[], int]
):
    items = [row(people[0]), row(people[1], amount=-7), row(person(99))]
    resp = upload_json(client, officer, items, declared_count=3, declared_total=1_000_000)
    batch = validated(client, officer, resp, run_jobs)
    assert batch["status"] == "invalid"
    assert [e["code"] for e in batch["file_errors"]] == ["control_total_mismatch"]
    assert "add up to 999,993" in batch["file_errors"][0]["message"]
    assert batch["rows_checked"] == 0  # no row was checked
    assert errors_of(client, officer, batch["id"]) == [(None, "control_total_mismatch")]
    count = validated(client, officer, upload_json(client, officer, items, declared_count=4), run_jobs)
    assert [e["code"] for e in count["file_errors"]] == ["control_count_mismatch"]


def test_a_csv_file_from_excel_is_validated_and_its_upload_removed(
    client: FlaskClient,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    session: Session,
    run_jobs: Callable[[], int],
):
    data = csv_file(
        HEADER,
        [[p["national_id"], p["full_name"], 500_000, "", ""] for p in people[:5]] + [["", "", ""]],
        bom=True,
        crlf=True,
    )
    resp = upload_file(client, officer, data, "chi-tra-11.csv", declared_count=5, declared_total=2_500_000)
    assert session.scalar(sa.select(sa.func.count()).select_from(UploadChunk)) == 1
    batch = validated(client, officer, resp, run_jobs)
    assert (batch["status"], batch["format"], batch["filename"], batch["rows_valid"]) == (
        "ready",
        "csv",
        "chi-tra-11.csv",
        5,
    )
    # Once validated, the file (personal data) is gone; the items hold what is needed.
    assert session.scalar(sa.select(sa.func.count()).select_from(Upload)) == 0


def test_an_xlsx_batch_with_two_sheets_says_which_is_read(
    client: FlaskClient, people: list[dict[str, Any]], officer: dict[str, str], run_jobs: Callable[[], int]
):
    rows = [
        [int(people[0]["national_id"]), people[0]["full_name"], 500_000],
        [people[1]["national_id"], people[1]["full_name"], 500_000.0],
    ]
    data = xlsx_file(HEADER[:3], rows, sheets=["Ghi chú"])
    resp = upload_file(client, officer, data, "ds.xlsx", declared_count=2, declared_total=1_000_000)
    assert resp.get_json()["warnings"][0]["code"] == "xlsx_several_sheets"
    batch = validated(client, officer, resp, run_jobs)
    assert "'Danh sach', is read" in batch["warnings"][0]["message"]
    assert errors_of(client, officer, batch["id"]) == [(2, "national_id_leading_zero_lost")]
    assert batch["rows_valid"] == 1


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"period": "2026-13"}, 422, "validation_failed"),
        ({"declared_total": -5}, 422, "validation_failed"),
        ({"declared_count": 0}, 422, "validation_failed"),
        ({"program": "NOPE"}, 404, "program_not_found"),
        ({"items": []}, 422, "validation_failed"),
        ({"items": [{"national_id": "1", "full_name": "x", "amount": 1.5}]}, 422, "validation_failed"),
    ],
)
def test_bad_upload_fields_are_refused_and_leave_nothing(
    client: FlaskClient,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    session: Session,
    change: dict[str, Any],
    status: int,
    code: str,
):
    body = assert_problem(upload_json(client, officer, [row(people[0])], **change), status, code)
    if status == 422:
        assert body["errors"]["json"]
    assert session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(Upload)) == 0


def test_bad_files_are_refused_at_upload_and_leave_nothing(
    client: FlaskClient, program: dict[str, Any], officer: dict[str, str], session: Session
):
    fields = {"declared_count": 1, "declared_total": 1}
    typo = upload_file(client, officer, b"national_id,ful_name,amount\n", "a.csv", **fields)
    assert "did you mean 'full_name'" in assert_problem(typo, 422, "column_unknown")["detail"]
    legacy = upload_file(
        client, officer, "national_id,full_name,amount\n1,Đào,1\n".encode("cp1258"), "a.csv", **fields
    )
    assert_problem(legacy, 422, "file_encoding")  # the header is fine; the job would have failed later
    assert_problem(
        upload_file(client, officer, b"\xd0\xcf\x11\xe0" + b"\0" * 64, "a.xls", **fields), 422, "file_format"
    )
    form = upload_file(client, officer, b"national_id,full_name,amount\n", "a.csv", declared_count="x")
    assert_problem(form, 422, "validation_failed")
    no_file = client.post(
        "/v1/batches", data={"program": "TCXH"}, headers=officer, content_type="multipart/form-data"
    )
    assert_problem(no_file, 422, "validation_failed")
    text = client.post("/v1/batches", data=b"a,b\n", headers={**officer, "Content-Type": "text/csv"})
    assert_problem(text, 415, "upload_media_type")
    assert session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(Upload)) == 0


def test_an_encoding_error_deep_in_the_file_makes_the_batch_invalid(
    client: FlaskClient, people: list[dict[str, Any]], officer: dict[str, str], run_jobs: Callable[[], int]
):
    good = "\n".join(f"{p['national_id']},{p['full_name']},500000" for p in people[:1] * 2500)
    data = ("national_id,full_name,amount\n" + good + "\n").encode() + b"049061000001,\xe0,1\n"
    resp = upload_file(client, officer, data, "a.csv", declared_count=2501, declared_total=1_250_000_001)
    batch = validated(client, officer, resp, run_jobs)
    assert batch["status"] == "invalid"
    assert batch["file_errors"][0]["code"] == "file_encoding"
    assert "line 2502" in batch["file_errors"][0]["message"]


def test_approval_is_maker_checker_and_explicit_about_invalid_rows(
    client: FlaskClient,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    approver: dict[str, str],
    user: Callable[[str], tuple[int, dict[str, str]]],
    run_jobs: Callable[[], int],
):
    batch = validated(
        client, officer, upload_json(client, officer, [row(people[0]), row(person(99))]), run_jobs
    )
    url = f"/v1/batches/{batch['id']}/approve"
    assert_problem(client.post(url, json={"exclude_invalid": True}, headers=officer), 403, "role_forbidden")
    refused = client.post(url, json={"exclude_invalid": False}, headers=approver)
    assert assert_problem(refused, 409, "invalid_rows_not_excluded")["rows_invalid"] == 1
    assert_problem(client.post(url, json={}, headers=approver), 422, "validation_failed")
    approved = client.post(url, json={"exclude_invalid": True}, headers=approver)
    assert approved.status_code == 200
    body = approved.get_json()
    assert body["status"] == "approved"
    assert body["approvals"][0]["rows_invalid"] == 1
    assert len(body["items_digest"]) == 64
    assert_problem(
        client.post(url, json={"exclude_invalid": True}, headers=user("approver")[1]),
        409,
        "batch_already_approved",
    )
    item = client.get(f"/v1/batches/{batch['id']}/items", headers=officer).get_json()["items"][0]
    assert item["reference"].startswith("P")
    assert len(item["reference"]) == 16


def test_approval_gives_every_item_its_own_reference_page_by_page(
    client: FlaskClient,
    app: Flask,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    approver: dict[str, str],
    run_jobs: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
):
    from disbursement.services import batches

    monkeypatch.setattr(batches, "REFERENCE_PAGE", 2)  # five items: pages of 2, 2 and 1
    batch = validated(client, officer, upload_json(client, officer, [row(p) for p in people[:5]]), run_jobs)
    approved = client.post(
        f"/v1/batches/{batch['id']}/approve", json={"exclude_invalid": False}, headers=approver
    )
    assert approved.status_code == 200, approved.get_json()
    with get_db(app).read_session() as s:
        refs = list(s.scalars(sa.select(PayoutItem.reference).where(PayoutItem.batch_id == batch["id"])))
    assert len(refs) == 5
    assert None not in refs
    assert len(set(refs)) == 5


def test_the_creator_can_never_approve(
    app: Flask,
    people: list[dict[str, Any]],
    client: FlaskClient,
    user: Callable[[str], tuple[int, dict[str, str]]],
    run_jobs: Callable[[], int],
):
    from disbursement.errors import ApprovalRefused
    from disbursement.services import batches

    creator, headers = user("officer")
    batch = validated(client, headers, upload_json(client, headers, [row(people[0])]), run_jobs)
    with app.app_context(), get_db(app).unit_of_work() as s, pytest.raises(ApprovalRefused):
        batches.approve(s, batch["id"], user_id=creator, exclude_invalid=True, required=1)


def test_several_approvers_and_the_fixed_item_set(
    make_app: Callable[..., Flask],
    people: list[dict[str, Any]],
    run_jobs: Callable[[], int],
    officer: dict[str, str],
    user: Callable[[str], tuple[int, dict[str, str]]],
):
    strict = make_app(approvals_required=2)
    client = strict.test_client()
    batch = validated(
        client,
        officer,
        upload_json(client, officer, [row(people[0]), row(people[1])]),
        lambda: __import__("chopay").jobs.runner(strict).run_pending(),
    )
    url = f"/v1/batches/{batch['id']}/approve"
    first = user("approver")[1]
    one = client.post(url, json={"exclude_invalid": False}, headers=first).get_json()
    assert (one["status"], len(one["approvals"]), one["approvals_required"]) == ("ready", 1, 2)
    assert_problem(
        client.post(url, json={"exclude_invalid": False}, headers=first), 409, "already_approved_by_you"
    )
    two = client.post(url, json={"exclude_invalid": False}, headers=user("approver")[1]).get_json()
    assert two["status"] == "approved"
    assert len(two["approvals"]) == 2
    before = client.get(f"/v1/batches/{batch['id']}/items", headers=officer).get_json()["items"]
    client.patch(
        f"/v1/beneficiaries/{people[0]['id']}", json={"account_number": "5550000001"}, headers=officer
    )
    after = client.get(f"/v1/batches/{batch['id']}/items", headers=officer).get_json()["items"]
    assert before == after  # the registry edit does not reach the approved batch
    assert (
        client.get(f"/v1/batches/{batch['id']}", headers=officer).get_json()["items_digest"]
        == two["items_digest"]
    )


def test_rejection_frees_the_entitlements(
    client: FlaskClient,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    approver: dict[str, str],
    run_jobs: Callable[[], int],
):
    items = [row(people[0]), row(people[1])]
    first = validated(client, officer, upload_json(client, officer, items), run_jobs)
    again = validated(client, officer, upload_json(client, officer, items), run_jobs)
    assert again["status"] == "invalid"
    assert errors_of(client, officer, again["id"]) == [
        (1, "already_in_batch"),
        (2, "already_in_batch"),
        (None, "no_valid_rows"),
    ]
    assert_problem(
        client.post(f"/v1/batches/{first['id']}/reject", json={}, headers=approver), 422, "validation_failed"
    )
    rejected = client.post(
        f"/v1/batches/{first['id']}/reject", json={"reason": "Sai danh sách"}, headers=approver
    )
    assert rejected.get_json()["status"] == "cancelled"
    assert rejected.get_json()["cancel_reason"] == "Sai danh sách"
    assert rejected.get_json()["report"]["by_status"] == [
        {"status": "cancelled", "count": 2, "amount": 1_000_000}
    ]
    assert_problem(
        client.post(f"/v1/batches/{first['id']}/approve", json={"exclude_invalid": True}, headers=approver),
        409,
        "batch_not_ready",
    )
    third = validated(client, officer, upload_json(client, officer, items), run_jobs)
    assert (third["status"], third["rows_valid"]) == ("ready", 2)
    payouts = client.get(f"/v1/beneficiaries/{people[0]['id']}/payouts", headers=officer).get_json()["items"]
    assert [(p["batch_id"], p["status"]) for p in payouts] == [
        (first["id"], "cancelled"),
        (third["id"], "pending"),
    ]
    assert [
        p["batch_id"]
        for p in client.get(
            f"/v1/beneficiaries/{people[0]['id']}/payouts?status=pending", headers=officer
        ).get_json()["items"]
    ] == [third["id"]]


def test_the_database_refuses_a_second_holder_of_an_entitlement(
    app: Flask,
    people: list[dict[str, Any]],
    client: FlaskClient,
    officer: dict[str, str],
    run_jobs: Callable[[], int],
):
    batch = validated(client, officer, upload_json(client, officer, [row(people[0])]), run_jobs)
    with app.app_context(), get_db(app).unit_of_work() as s:
        item = s.scalar(sa.select(PayoutItem).where(PayoutItem.batch_id == batch["id"]))
        assert item is not None
        copy = {
            c: getattr(item, c)
            for c in (
                "row_number",
                "program_id",
                "beneficiary_id",
                "period",
                "ward",
                "amount",
                "bin",
                "account_number",
                "account_index",
                "destination_source",
            )
        }
    with app.app_context(), get_db(app).unit_of_work() as s:
        other = Batch(
            program_id=copy["program_id"],
            period=PERIOD,
            format="json",
            declared_count=1,
            declared_total=1,
            created_by=1,
        )
        s.add(other)
        s.flush()
        with pytest.raises(sa.exc.IntegrityError), s.begin_nested():
            s.add(PayoutItem(batch_id=other.id, **copy))
        # Not entitled (cancelled, or failed for good), the same key is free to exist again.
        s.add(PayoutItem(batch_id=other.id, status="cancelled", entitled=False, **copy))
        s.flush()
        with pytest.raises(sa.exc.IntegrityError), s.begin_nested():  # a failed item may not hold the key
            s.add(
                PayoutItem(batch_id=other.id, status="failed", entitled=True, **{**copy, "period": "2026-12"})
            )


def test_lists_filter_and_page(
    client: FlaskClient, people: list[dict[str, Any]], officer: dict[str, str], run_jobs: Callable[[], int]
):
    for i in range(3):
        validated(
            client, officer, upload_json(client, officer, [row(people[i])], period=f"2026-0{i + 1}"), run_jobs
        )
    page1 = client.get("/v1/batches?limit=2", headers=officer).get_json()
    assert [b["period"] for b in page1["items"]] == ["2026-03", "2026-02"]
    page2 = client.get(f"/v1/batches?limit=2&cursor={page1['next_cursor']}", headers=officer).get_json()
    assert [b["period"] for b in page2["items"]] == ["2026-01"]
    assert page2["next_cursor"] is None
    assert (
        len(
            client.get("/v1/batches?program=TCXH&period=2026-02&status=ready", headers=officer).get_json()[
                "items"
            ]
        )
        == 1
    )
    assert_problem(client.get("/v1/batches?period=2026-13", headers=officer), 422, "validation_failed")
    assert_problem(client.get("/v1/batches?stat=ready", headers=officer), 400, "unknown_parameter")
    assert_problem(client.get("/v1/batches/999999", headers=officer), 404, "batch_not_found")
    assert_problem(client.get("/v1/batches/1/items?status=lost", headers=officer), 422, "validation_failed")


def test_upload_is_idempotent(
    client: FlaskClient, people: list[dict[str, Any]], officer: dict[str, str], session: Session
):
    headers = {**officer, "Idempotency-Key": "batch-2026-11"}
    first = upload_json(client, headers, [row(people[0])])
    second = upload_json(client, headers, [row(people[0])])
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.get_json()["id"] == first.get_json()["id"]
    assert session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 1
    assert_problem(upload_json(client, headers, [row(people[1])]), 409, "idempotency_key_reused")


def test_a_multipart_upload_may_exceed_the_json_body_limit(
    make_app: Callable[..., Flask], people: list[dict[str, Any]], officer: dict[str, str]
):
    small = make_app(max_body_bytes=2048, max_upload_bytes=1024 * 1024)
    client = small.test_client()
    lines = [[people[0]["national_id"], people[0]["full_name"] + " " + "x" * 40, 500_000]] * 60
    data = csv_file(HEADER[:3], lines)
    assert len(data) > 2048
    resp = upload_file(client, officer, data, "big.csv", declared_count=60, declared_total=30_000_000)
    assert resp.status_code == 202
    too_big = make_app(max_body_bytes=2048, max_upload_bytes=2048).test_client()
    assert_problem(
        upload_file(too_big, officer, data, "big.csv", declared_count=60, declared_total=30_000_000),
        413,
        "payload_too_large",
    )


def test_cccd_helper_builds_valid_ids():
    assert cccd(1) == "049060000001"
