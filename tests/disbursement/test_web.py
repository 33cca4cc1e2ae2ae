"""The officer's and the approver's pages: upload, the validation report, approval, progress."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from chopay.crypto import data_keys
from chopay.db import get_db
from disbursement.models import Approval, Batch
from disbursement.services import programs, registry
from tests.chopay.webclient import csrf_token, sign_in
from tests.disbursement.helpers import csv_file, person

HEADER = ["national_id", "full_name", "amount", "bin", "account_number"]
PERIOD = "2026-11"
STATUS = {6: "suspended", 7: "deceased"}  # and number 8 is not enrolled: three bad rows


def enrol_people(app: Flask) -> list[dict[str, Any]]:
    """Register fake people 1-8 and enrol 1-7 in TCXH; 6 is suspended and 7 deceased."""
    with app.app_context(), get_db(app).unit_of_work() as s:
        tcxh = programs.get_program(s, "TCXH")
        for i in range(1, 9):
            values = person(i, status=STATUS.get(i, "active"))
            values["date_of_birth"] = dt.date.fromisoformat(values["date_of_birth"])
            created = registry.create(s, data_keys(app), values)
            if i != 8:
                programs.enrol(s, tcxh, created.id, enrolled_from="2026-01")
    return [person(i) for i in range(1, 9)]


@pytest.fixture
def people(app: Flask, program: dict[str, Any]) -> list[dict[str, Any]]:
    return enrol_people(app)


def batch_rows(people: list[dict[str, Any]]) -> list[list[Any]]:
    """Return the batch file's rows: one of 500,000 dong per person."""
    return [[p["national_id"], p["full_name"], 500_000, "", ""] for p in people]


def _text(resp) -> str:
    return html.unescape(resp.get_data(as_text=True))


@pytest.fixture
def officer_client(app: Flask, make_token: Callable[..., str]):
    return sign_in(app.test_client(), make_token("officer", name="Lê Thị Thử"))


@pytest.fixture
def approver_client(app: Flask, make_token: Callable[..., str]):
    return sign_in(app.test_client(), make_token("approver", name="Phạm Văn Thử"))


def _upload(client, data: bytes, **fields: Any):
    form = {
        "csrf_token": csrf_token(client, "/batches"),
        "program": "TCXH",
        "period": PERIOD,
        "declared_count": "8",
        "declared_total": "4000000",
        **fields,
        "file": (io.BytesIO(data), "tro-cap-2026-11.csv"),
    }
    return client.post("/batches", data=form, content_type="multipart/form-data")


def _batches(app: Flask) -> list[Batch]:
    with get_db(app).read_session() as s:
        return list(s.scalars(sa.select(Batch)))


def _error_rows(page: str) -> list[tuple[str, str]]:
    table = page.split('<table id="errors">')[1].split("</table>")[0]
    return re.findall(r'<tr><td class="num">(\d+)</td><td>[^<]*</td><td><code>([a-z_]+)</code>', table)


def test_upload_report_and_approval_excluding_the_bad_rows(
    app, people, officer_client, approver_client, run_jobs
):
    resp = _upload(officer_client, csv_file(HEADER, batch_rows(people)))
    assert resp.status_code == 303, _text(resp)
    (batch,) = _batches(app)
    assert resp.headers["Location"] == f"/batches/{batch.id}"
    waiting = _text(officer_client.get(resp.headers["Location"]))
    assert "đang kiểm tra" in waiting
    assert 'data-poll="/batches/' in waiting
    run_jobs()

    page = _text(officer_client.get(f"/batches/{batch.id}"))
    rows = _error_rows(page)
    assert sorted(int(r) for r, _ in rows) == [7, 8, 9]  # the file's row numbers, header on row 1
    assert 'id="rows-invalid">3<' in page
    assert "Duyệt</button>" not in page  # an officer does not approve
    csv_report = officer_client.get(f"/batches/{batch.id}/errors.csv")
    assert csv_report.status_code == 200
    assert csv_report.mimetype == "text/csv"
    lines = csv_report.get_data(as_text=True).splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["7", "8", "9"]

    one_code = rows[0][1]
    filtered = _text(officer_client.get(f"/batches/{batch.id}?code={one_code}"))
    assert {c for _, c in _error_rows(filtered)} == {one_code}

    approving = _text(approver_client.get(f"/batches/{batch.id}"))
    assert "Bỏ qua 3 dòng không hợp lệ" in approving
    assert 'data-confirm="Duyệt và bỏ qua 3 dòng không hợp lệ?' in approving
    form = {"csrf_token": csrf_token(approver_client, f"/batches/{batch.id}")}
    refused = approver_client.post(f"/batches/{batch.id}/approve", data=form)
    assert refused.status_code == 303
    assert "Không có gì thay đổi" in _text(approver_client.get(refused.headers["Location"]))
    assert _approvals(app) == []

    approved = approver_client.post(f"/batches/{batch.id}/approve", data={**form, "exclude_invalid": "y"})
    assert approved.status_code == 303
    after = _text(approver_client.get(approved.headers["Location"]))
    assert "đã duyệt" in after
    assert _approvals(app) == [(True, 3)]
    progress = approver_client.get(f"/batches/{batch.id}/progress.json").get_json()
    assert progress["status"] == "approved"
    assert progress["by_status"]["pending"] == {"status": "pending", "count": 5, "amount": 2_500_000}
    assert progress["final"] is False


def _approvals(app: Flask) -> list[tuple[bool, int]]:
    with get_db(app).read_session() as s:
        return [tuple(r) for r in s.execute(sa.select(Approval.exclude_invalid, Approval.rows_invalid))]


def test_declared_totals_that_are_not_numbers_are_refused_on_the_form(app, people, officer_client):
    resp = _upload(officer_client, csv_file(HEADER, batch_rows(people)), declared_total="nhiều")
    assert resp.status_code == 422
    assert _batches(app) == []


def test_a_bad_period_is_refused_with_the_api_rule(app, people, officer_client):
    resp = _upload(officer_client, csv_file(HEADER, batch_rows(people)), period="11/2026")
    assert resp.status_code == 422
    period = _text(resp).split('name="period"')[1].split("</p>")[0]
    assert '<span class="error">' in period
    assert _batches(app) == []


def test_a_file_that_is_not_a_table_is_refused_at_once(app, people, officer_client):
    resp = _upload(officer_client, b"\x00\x01 not a spreadsheet")
    assert resp.status_code == 422
    assert "Tệp bị từ chối:" in _text(resp)
    assert _batches(app) == []


def test_an_upload_without_its_csrf_token_is_refused(app, people, officer_client):
    form = {"program": "TCXH", "period": PERIOD, "declared_count": "8", "declared_total": "4000000"}
    form["file"] = (io.BytesIO(csv_file(HEADER, batch_rows(people))), "x.csv")
    resp = officer_client.post("/batches", data=form, content_type="multipart/form-data")
    assert resp.status_code == 400
    assert _batches(app) == []


def test_only_officers_and_admins_see_the_upload_form(app, make_token, people):
    for role, sees in (("officer", True), ("admin", True), ("approver", False), ("auditor", False)):
        client = sign_in(app.test_client(), make_token(role))
        page = _text(client.get("/batches"))
        assert ('enctype="multipart/form-data"' in page) is sees, role
    approver = sign_in(app.test_client(), make_token("approver"))
    resp = approver.post("/batches", data={"csrf_token": csrf_token(approver, "/batches")})
    assert resp.status_code == 404


def test_the_creator_cannot_approve_from_the_page(app, people, officer_client, run_jobs, make_token):
    _upload(officer_client, csv_file(HEADER, batch_rows(people)))
    run_jobs()
    (batch,) = _batches(app)
    # The creator is an officer; an approver who did not create it sees the button.
    approver = sign_in(app.test_client(), make_token("approver"))
    assert "Duyệt</button>" in _text(approver.get(f"/batches/{batch.id}"))
    assert "Duyệt</button>" not in _text(officer_client.get(f"/batches/{batch.id}"))


def test_unknown_batches_get_the_404_page(officer_client):
    resp = officer_client.get("/batches/987654")
    assert resp.status_code == 404
    assert resp.mimetype == "text/html"


def test_the_batch_list_pages_back_in_time(app, people, officer_client, monkeypatch):
    from disbursement import web as disbursement_web

    monkeypatch.setattr(disbursement_web, "BATCHES_SHOWN", 2)
    for period in ("2026-08", "2026-09", "2026-10"):
        assert _upload(officer_client, csv_file(HEADER, batch_rows(people)), period=period).status_code == 303
    first = _text(officer_client.get("/batches"))
    ids = [b.id for b in _batches(app)]
    assert re.findall(r'href="/batches/(\d+)"', first) == [str(ids[2]), str(ids[1])]
    older = re.search(r'href="(/batches\?before=\d+)"', first)
    assert older is not None
    second = _text(officer_client.get(older.group(1)))
    assert re.findall(r'href="/batches/(\d+)"', second) == [str(ids[0])]
    assert "Các đợt cũ hơn" not in second
    assert officer_client.get("/batches?before=x1").status_code == 404
