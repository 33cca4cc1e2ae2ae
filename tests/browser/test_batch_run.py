"""A payout run controlled from the batch page in Chromium: paused for want of funds, resumed, done."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import check_page, sign_in
from tests.browser.payouts import approved_batch


@pytest.mark.parametrize("bank_options", [{"source_balance": 1_000_000}])
def test_a_run_short_of_funds_pauses_and_the_officer_resumes_it_to_the_end(live, new_page, paying_bank):
    run = approved_batch(live, "TCBR", range(311, 315))  # 2,000,000 dong from a source holding 1,000,000
    run.wait({"paused"})
    officer = new_page()
    sign_in(officer, live.token("officer", name="Lê Thị Thử"))
    officer.goto(f"/batches/{run.id}")
    expect(officer.locator("#batch-status")).to_have_text("tạm dừng")
    expect(officer.locator("#run-alert")).to_have_text(re.compile("^Tài khoản nguồn chi trả không đủ tiền"))
    expect(officer.get_by_role("button", name="Tiếp tục")).to_be_visible()
    expect(officer.get_by_role("button", name="Hủy đợt")).to_be_visible()
    expect(officer.get_by_label("Lý do hủy")).to_be_visible()
    check_page(officer, "batch-paused")

    assert paying_bank.post("/admin/fund", json={"amount": 10_000_000}).status_code == 200
    officer.get_by_role("button", name="Tiếp tục").click()
    expect(officer.locator(".flash.ok")).to_contain_text(f"Đợt {run.id} đã chạy lại.")
    expect(officer.locator("#batch-status")).to_have_text("hoàn tất", timeout=30_000)
    expect(officer.locator("#items-done")).to_have_attribute("value", "4")
    expect(officer.get_by_role("button", name="Tiếp tục")).to_have_count(0)
    expect(officer.get_by_role("button", name="Hủy đợt")).to_have_count(0)


@pytest.mark.parametrize("bank_options", [{"source_balance": 600_000}])
def test_the_officer_cancels_a_paused_run_with_a_reason(live, new_page, paying_bank):
    run = approved_batch(live, "TCBH", range(321, 324))
    run.wait({"paused"})
    officer = new_page()
    sign_in(officer, live.token("officer", name="Lê Thị Thử"))
    officer.goto(f"/batches/{run.id}")
    dialogs: list[str] = []
    officer.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    officer.get_by_label("Lý do hủy").fill("Sai danh sách kỳ 2026-12")
    officer.get_by_role("button", name="Hủy đợt").click()
    expect(officer.locator("#batch-status")).to_have_text("đã hủy")
    assert dialogs == [f"Hủy đợt {run.id}? Các khoản chưa gửi sẽ không được chi trả."]
    expect(officer.get_by_text("Sai danh sách kỳ 2026-12")).to_be_visible()
    cancelled = officer.locator("#by-status tr", has_text="đã hủy")
    expect(cancelled).to_contain_text("3")  # nothing was sent while the money was short
    expect(cancelled).to_contain_text("1.500.000\u00a0₫")
    expect(officer.get_by_role("button", name="Tiếp tục")).to_have_count(0)
    check_page(officer, "batch-cancelled")
