"""The payout part of ``/batches/{id}``: progress of the run, pause, resume, cancel, report.csv."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from disbursement import execution
from tests.chopay.webclient import csrf_token, sign_in
from tests.disbursement.test_batches import row
from tests.disbursement.test_payouts import _approved, _items, _moved

Client = FlaskClient


def _text(resp: Any) -> str:
    return html.unescape(resp.get_data(as_text=True))


@pytest.fixture
def officer_page(app: Flask, make_token: Callable[..., str]) -> Client:
    return sign_in(app.test_client(), make_token("officer", name="Lê Thị Thử"))


@pytest.fixture
def batch_id(
    client: FlaskClient,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    approver: dict[str, str],
    run_jobs: Callable[[], int],
) -> int:
    """An approved batch of 5 people, not started yet."""
    return _approved(client, officer, approver, run_jobs, [row(p) for p in people[:5]])


def _post(page: Client, batch: int, action: str, **data: str) -> Any:
    token = csrf_token(page, f"/batches/{batch}")
    return page.post(f"/batches/{batch}/{action}", data={"csrf_token": token, **data})


def _status(page: Client, batch: int) -> str:
    status = page.get(f"/batches/{batch}/progress.json").get_json()["status"]
    assert isinstance(status, str)
    return status


def test_the_officer_pauses_and_resumes_and_the_page_follows_the_run_to_its_end(
    app: Flask, officer_page: Client, batch_id: int, run_jobs: Callable[[], int], bank_client: Any
):
    page = _text(officer_page.get(f"/batches/{batch_id}"))
    assert "Hủy đợt" in page
    assert "Tạm dừng</button>" not in page
    assert 'id="items-done" max="5" value="0"' in page
    assert f'href="/batches/{batch_id}/report.csv"' in page
    assert f'data-poll="/batches/{batch_id}/progress.json"' in page

    with app.app_context():
        execution.start_batch(batch_id)  # running, its chunks queued
    assert "Tạm dừng</button>" in _text(officer_page.get(f"/batches/{batch_id}"))
    resp = _post(officer_page, batch_id, "pause")
    assert resp.status_code == 303
    assert _status(officer_page, batch_id) == "paused"
    run_jobs()
    assert {i.status for i in _items(app, batch_id)} == {"pending"}  # nothing sent while paused
    page = _text(officer_page.get(f"/batches/{batch_id}"))
    assert f"Đợt {batch_id} đã tạm dừng." in page
    assert "Tiếp tục</button>" in page
    assert "Lý do tạm dừng" in page
    assert "Người vận hành đã tạm dừng." in page

    assert _post(officer_page, batch_id, "resume").status_code == 303
    assert _status(officer_page, batch_id) == "running"
    run_jobs()
    progress = officer_page.get(f"/batches/{batch_id}/progress.json").get_json()
    assert progress["status"] == "completed"
    assert progress["final"] is True
    assert (progress["items_total"], progress["percent_done"]) == (5, 100)
    assert progress["report"]["execution"]["items_per_second"] > 0
    assert progress["by_status"]["paid"] == {"status": "paid", "count": 5, "amount": 2_500_000}
    page = _text(officer_page.get(f"/batches/{batch_id}"))
    assert 'id="items-done" max="5" value="5"' in page
    assert "data-poll=" not in page  # finished: nothing more to poll
    assert "Hủy đợt" not in page
    assert "Tạm dừng</button>" not in page
    assert all(_moved(bank_client, i.reference) == 1 for i in _items(app, batch_id))

    report = officer_page.get(f"/batches/{batch_id}/report.csv")
    assert report.status_code == 200
    assert report.mimetype == "text/csv"
    assert f"batch-{batch_id}-report.csv" in report.headers["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(report.get_data(as_text=True))))
    items = {i.reference: i for i in _items(app, batch_id)}
    assert len(lines) == 5
    for line in lines:
        item = items[line["reference"]]
        assert (line["status"], line["bank_txn_id"], line["receipt_code"]) == (
            "paid",
            item.bank_txn_id,
            item.receipt_code,
        )


def test_cancelling_needs_a_reason_and_leaves_the_unsent_unpaid(
    app: Flask, officer_page: Client, batch_id: int, run_jobs: Callable[[], int], bank_client: Any
):
    resp = _post(officer_page, batch_id, "cancel", reason="  ")
    assert resp.status_code == 303
    assert "Hãy nêu lý do hủy." in _text(officer_page.get(f"/batches/{batch_id}"))
    assert _status(officer_page, batch_id) == "approved"

    resp = _post(officer_page, batch_id, "cancel", reason="Sai danh sách kỳ 2026-11")
    assert resp.status_code == 303
    run_jobs()
    page = _text(officer_page.get(f"/batches/{batch_id}"))
    assert f"Đợt {batch_id} đã bị hủy." in page
    assert "Sai danh sách kỳ 2026-11" in page
    assert _status(officer_page, batch_id) == "cancelled"
    assert {i.status for i in _items(app, batch_id)} == {"cancelled"}
    assert all(_moved(bank_client, i.reference) == 0 for i in _items(app, batch_id))


def test_a_control_that_does_not_fit_the_status_changes_nothing_and_says_why(
    officer_page: Client, batch_id: int
):
    assert _post(officer_page, batch_id, "resume").status_code == 303
    page = _text(officer_page.get(f"/batches/{batch_id}"))
    assert "Không có gì thay đổi" in page
    assert _status(officer_page, batch_id) == "approved"


def test_controls_without_their_csrf_token_are_refused(officer_page: Client, batch_id: int):
    for action in ("pause", "resume", "cancel"):
        resp = officer_page.post(f"/batches/{batch_id}/{action}", data={"reason": "x"})
        assert resp.status_code == 400, action
    assert _status(officer_page, batch_id) == "approved"


def test_auditors_see_the_run_and_its_report_but_no_controls(
    app: Flask, make_token: Callable[..., str], batch_id: int
):
    auditor = sign_in(app.test_client(), make_token("auditor", name="Đỗ Văn Thử"))
    page = _text(auditor.get(f"/batches/{batch_id}"))
    assert "Hủy đợt" not in page
    assert re.search(rf'href="/batches/{batch_id}/report.csv"', page)
    report = auditor.get(f"/batches/{batch_id}/report.csv")
    assert report.status_code == 200
    assert len(report.get_data(as_text=True).splitlines()) == 6  # the header and five items
    token = csrf_token(auditor, f"/batches/{batch_id}")
    resp = auditor.post(f"/batches/{batch_id}/cancel", data={"csrf_token": token, "reason": "x"})
    assert resp.status_code == 404
    assert auditor.get(f"/batches/{batch_id}/progress.json").get_json()["status"] == "approved"


def test_the_approver_may_control_a_run(app: Flask, make_token: Callable[..., str], batch_id: int):
    approver = sign_in(app.test_client(), make_token("approver", name="Phạm Văn Thử"))
    with app.app_context():
        execution.start_batch(batch_id)
    assert _post(approver, batch_id, "pause").status_code == 303
    assert _status(approver, batch_id) == "paused"


def test_controls_and_report_of_an_unknown_batch_get_the_404_page(officer_page: Client, batch_id: int):
    token = csrf_token(officer_page, f"/batches/{batch_id}")
    assert officer_page.get("/batches/999999/report.csv").status_code == 404
    for action in ("pause", "resume", "cancel"):
        resp = officer_page.post(f"/batches/999999/{action}", data={"csrf_token": token, "reason": "x"})
        assert resp.status_code == 404, action
        assert "Không tìm thấy trang" in _text(resp)
