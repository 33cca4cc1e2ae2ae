"""The auditor's pages: the latest checkpoint, an older one checked, reports and their decisions."""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa

from chopay.db import get_db
from payments.reconciliation.models import Decision
from tests.chopay.webclient import csrf_token, sign_in
from tests.payments.reconciliation.conftest import run_jobs, upload
from tests.payments.reconciliation.planted import D3, post_ledger, statement


@pytest.fixture
def auditor_client(app, make_token):
    return sign_in(app.test_client(), make_token("auditor", name="Trần Thị Thử"))


def _text(resp) -> str:
    return html.unescape(resp.get_data(as_text=True))


def _checkpoint_note(page: str) -> str:
    found = re.search(r'<pre class="mono" id="checkpoint-note">(.*?)</pre>', page, re.S)
    assert found is not None
    return found.group(1)


def _check(client, note: str):
    return client.post("/audit", data={"note": note, "csrf_token": csrf_token(client, "/audit")})


def test_the_audit_page_shows_a_verified_latest_checkpoint(app, auditor_client, book):
    post_ledger(book)
    page = _text(auditor_client.get("/audit"))
    assert "Chữ ký hợp lệ" in page
    assert re.search(r'id="checkpoint-size">9 mục', page)
    assert "Signed by" not in page
    assert "chopay.local/ledger" in _checkpoint_note(page)


def test_before_any_checkpoint_the_page_says_so(auditor_client):
    assert "Chưa có điểm kiểm tra nào được ký." in _text(auditor_client.get("/audit"))


def test_an_older_checkpoint_is_proved_consistent_with_the_latest(app, auditor_client, book):
    post_ledger(book)
    older = _checkpoint_note(_text(auditor_client.get("/audit")))
    book.fund("funding:2026-12", 1_000_000, D3)
    book.seal()
    resp = _check(auditor_client, older)
    assert resp.status_code == 200
    page = _text(resp)
    assert "Nhất quán" in page
    assert "Sổ cái có 10 mục nối tiếp điểm kiểm tra có 9 mục." in page
    # The latest one against itself is consistent too, pasted with Windows line ends.
    latest = _checkpoint_note(page)
    assert _check(auditor_client, latest.replace("\n", "\r\n")).status_code == 200


def test_a_tampered_checkpoint_fails_clearly(app, auditor_client, book):
    post_ledger(book)
    note = _checkpoint_note(_text(auditor_client.get("/audit")))
    origin, size, rest = note.split("\n", 2)
    tampered = f"{origin}\n{int(size) - 1}\n{rest}"
    resp = _check(auditor_client, tampered)
    assert resp.status_code == 422
    page = _text(resp)
    assert "Không xác minh được" in page
    assert "chữ ký của điểm kiểm tra không khớp với khóa tin cậy nào" in page.lower()
    assert "Nhất quán" not in page


@pytest.mark.parametrize("note", ["not a checkpoint", "chopay.local/ledger\n3\nAAAA\n\n— x y\n"])
def test_text_that_is_not_a_checkpoint_is_named_so(auditor_client, book, note):
    post_ledger(book)
    resp = _check(auditor_client, note)
    assert resp.status_code == 422
    assert "Không phải điểm kiểm tra" in _text(resp)


def test_an_empty_paste_asks_for_a_checkpoint(auditor_client):
    resp = _check(auditor_client, "")
    assert resp.status_code == 422
    assert "Hãy dán một điểm kiểm tra." in _text(resp)


@pytest.mark.parametrize("role", ["officer", "approver"])
def test_other_roles_get_the_404_page(app, make_token, role):
    client = sign_in(app.test_client(), make_token(role))
    for path in ("/audit", "/audit/reconciliations"):
        resp = client.get(path)
        assert resp.status_code == 404
        assert "Không tìm thấy trang" in _text(resp)


def test_nobody_signed_in_is_sent_to_sign_in(client):
    resp = client.get("/audit")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/login?next=/audit"


def _reconciled(app, client, auditor, book) -> int:
    post_ledger(book)
    data, fields = statement("csv")
    rid = upload(client, auditor, data, **fields).json["id"]
    run_jobs(app)
    return int(rid)


def _item_row(page: str, line_id: str) -> str:
    rows = re.findall(r'<tr id="item-(\d+)">(.*?)</tr>', page, re.S)
    found = [(int(pos), row) for pos, row in rows if line_id in row]
    assert len(found) == 1, line_id
    return f"{found[0][0]}|{found[0][1]}"


def test_a_report_shows_its_categories_and_items(app, client, auditor, auditor_client, book):
    rid = _reconciled(app, client, auditor, book)
    listing = _text(auditor_client.get("/audit/reconciliations"))
    assert f"RC-{rid:010d}" in listing
    page = _text(auditor_client.get(f"/audit/reconciliations/{rid}"))
    assert "đã giải thích hết" in page
    for category in ("matched", "suggested", "returned", "missing_in_bank", "missing_in_ledger"):
        assert f">{category}</a>" in page
    assert "FB0008" in page
    only = _text(auditor_client.get(f"/audit/reconciliations/{rid}?category=suggested"))
    assert "FB0008" in only
    assert "FB0001" not in only
    assert auditor_client.get(f"/audit/reconciliations/{rid}?category=nonsense").status_code == 404
    assert auditor_client.get("/audit/reconciliations/999999").status_code == 404


def _decide(client, rid: int, position: int, **fields):
    page = f"/audit/reconciliations/{rid}"
    return client.post(f"{page}/items/{position}", data={"csrf_token": csrf_token(client, page), **fields})


def _decisions(app) -> list[tuple[int, str, str | None]]:
    with get_db(app).read_session() as s:
        return [tuple(r) for r in s.execute(sa.select(Decision.position, Decision.action, Decision.note))]


def test_a_suggested_match_is_confirmed_once(app, client, auditor, auditor_client, book):
    rid = _reconciled(app, client, auditor, book)
    page = _text(auditor_client.get(f"/audit/reconciliations/{rid}"))
    position = int(_item_row(page, "FB0008").split("|")[0])
    resp = _decide(auditor_client, rid, position, action="confirm", note="Đúng người nhận")
    assert resp.status_code == 303
    after = _text(auditor_client.get(resp.headers["Location"]))
    assert f"Mục {position}: đã ghi nhận quyết định." in after
    assert _decisions(app) == [(position, "confirmed", "Đúng người nhận")]
    again = _decide(auditor_client, rid, position, action="reject")
    shown = _text(auditor_client.get(again.headers["Location"]))
    assert f"Mục {position} không được thay đổi" in shown
    assert "already confirmed" in shown
    assert _decisions(app) == [(position, "confirmed", "Đúng người nhận")]


def test_a_returned_payout_is_reversed_with_a_reason(app, client, auditor, auditor_client, book):
    rid = _reconciled(app, client, auditor, book)
    page = _text(auditor_client.get(f"/audit/reconciliations/{rid}?category=returned"))
    position = int(_item_row(page, "FB0005").split("|")[0])
    without = _decide(auditor_client, rid, position, action="reverse", note="")
    assert "hãy ghi lý do" in _text(auditor_client.get(without.headers["Location"])).lower()
    assert _decisions(app) == []
    resp = _decide(auditor_client, rid, position, action="reverse", note="Tài khoản đã đóng")
    assert resp.status_code == 303
    assert _decisions(app) == [(position, "reversed", "Tài khoản đã đóng")]


def test_a_decision_without_its_csrf_token_is_refused(app, client, auditor, auditor_client, book):
    rid = _reconciled(app, client, auditor, book)
    resp = auditor_client.post(f"/audit/reconciliations/{rid}/items/1", data={"action": "confirm"})
    assert resp.status_code == 400
    assert _decisions(app) == []
