"""The auditor in Chromium: a verified latest checkpoint, an older one consistent, a tampered one not."""

from __future__ import annotations

import itertools

from playwright.sync_api import expect

from chopay.db import get_db
from payments.ledger import jobs as ledger_jobs
from payments.ledger import services as ledger
from payments.ledger.domain import Posting, TransactionSpec
from tests.browser.conftest import check_page, sign_in

_serial = itertools.count(1)


def _post_and_seal(live, entries: int) -> None:
    """Post ``entries`` transactions between two accounts of the test's own and sign a checkpoint."""
    with get_db(live.app).unit_of_work() as s:
        ledger.ensure_account(s, code="bank:browser", kind="asset")
        ledger.ensure_account(s, code="equity:browser", kind="equity")
        for _ in range(entries):
            n = next(_serial)
            spec = TransactionSpec(
                idempotency_key=f"browser:{n}",
                kind="other",
                memo=f"Browser test entry {n}",
                postings=[Posting("bank:browser", 1000 * n), Posting("equity:browser", -1000 * n)],
            )
            ledger.post(s, spec)
    ledger_jobs.seal(get_db(live.app), live.app.config["CHOPAY"], force=True)


def _paste(page, note: str) -> None:
    page.get_by_label("Một điểm kiểm tra cũ, đúng như bạn đã lưu").fill(note)
    page.get_by_role("button", name="Kiểm tra", exact=True).click()


def test_verified_checkpoint_consistent_older_one_and_a_tampered_one(live, new_page):
    _post_and_seal(live, 3)
    page = new_page()
    sign_in(page, live.token("auditor", name="Trần Thị Thử"))
    page.goto("/audit")
    expect(page.locator("#signature-status")).to_contain_text("Chữ ký hợp lệ")
    older = page.locator("#checkpoint-note").text_content()
    assert older is not None
    check_page(page, "audit")

    _post_and_seal(live, 2)
    page.reload()
    _paste(page, older)
    expect(page.locator("#consistency-result")).to_contain_text("Nhất quán")
    check_page(page, "audit-consistent")

    origin, size, rest = older.split("\n", 2)
    _paste(page, f"{origin}\n{int(size) + 1}\n{rest}")
    result = page.locator("#consistency-result")
    expect(result).to_contain_text("Không xác minh được")
    expect(result).to_contain_text("không khớp với khóa tin cậy nào")
    check_page(page, "audit-tampered")


def test_reconciliation_list_page_is_accessible(live, new_page):
    page = new_page()
    sign_in(page, live.token("auditor"))
    page.get_by_role("navigation", name="Điều hướng chính").get_by_role("link", name="Đối soát").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Đối soát")
    check_page(page, "reconciliations")


def test_a_report_page_shows_its_items_and_takes_a_decision(live, new_page):
    from tests.payments.reconciliation.conftest import Book, upload
    from tests.payments.reconciliation.planted import post_ledger, statement

    post_ledger(Book(live.app))
    data, fields = statement("csv")
    token = live.token("auditor", name="Trần Thị Thử")
    answer = upload(live.app.test_client(), {"Authorization": f"Bearer {token}"}, data, **fields)
    assert answer.status_code == 202, answer.get_json()
    page = new_page()
    sign_in(page, token)
    page.goto(f"/audit/reconciliations/{answer.get_json()['id']}")
    for _ in range(100):  # the reconciliation job runs on the server's worker thread
        if page.locator("#rec-status").text_content() == "done":
            break
        page.wait_for_timeout(100)
        page.reload()
    expect(page.locator("#rec-status")).to_have_text("done")
    expect(page.locator("#categories")).to_contain_text("suggested")
    check_page(page, "reconciliation-report")

    row = page.locator("#items tbody tr", has_text="FB0008")
    row.get_by_label("Ghi chú (không bắt buộc)").fill("Đúng đơn hàng CP7K2M9QXA")
    row.get_by_role("button", name="Xác nhận").click()
    expect(page.locator(".flash.ok")).to_contain_text("đã ghi nhận quyết định")
    decided = page.locator("#items tbody tr", has_text="FB0008")
    expect(decided).to_contain_text("confirmed: Đúng đơn hàng CP7K2M9QXA")
    page.get_by_label("Lọc các mục hiển thị").fill("FB0006")
    expect(page.locator("#items tbody tr:not([hidden])")).to_have_count(1)
