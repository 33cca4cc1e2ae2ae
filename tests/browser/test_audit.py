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
