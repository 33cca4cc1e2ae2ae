"""The welfare officer and the approver in Chromium: upload, three bad rows, approval excluding them,
the run through the bank simulator to completion, and the payout report."""

from __future__ import annotations

import csv
import io
import re

from playwright.sync_api import expect

from chopay.db import get_db
from disbursement.services import programs
from tests.browser.conftest import check_page, sign_in
from tests.disbursement.conftest import PROGRAM
from tests.disbursement.helpers import csv_file
from tests.disbursement.test_web import HEADER, PERIOD, batch_rows, enrol_people


def _program(live) -> None:
    with get_db(live.app).unit_of_work() as s:
        programs.create_program(s, **PROGRAM)
        programs.fund(s, "TCXH", amount=10_000_000_000, reference="QD-2026-11", created_by=None)


def test_upload_see_three_bad_rows_approve_without_them_and_watch_the_run_complete(
    live, new_page, paying_bank
):
    _program(live)
    people = enrol_people(live.app)
    officer = new_page()
    sign_in(officer, live.token("officer", name="Lê Thị Thử"))
    officer.get_by_role("navigation", name="Điều hướng chính").get_by_role("link", name="Đợt chi trả").click()
    check_page(officer, "batches")
    officer.get_by_label("Chương trình").select_option("TCXH")
    officer.get_by_label("Kỳ (YYYY-MM)").fill(PERIOD)
    officer.get_by_label("Số dòng đã khai").fill("8")
    officer.get_by_label("Tổng tiền đã khai (đồng)").fill("4000000")
    data = csv_file(HEADER, batch_rows(people))
    officer.get_by_label("Tệp (CSV hoặc XLSX)").set_input_files(
        {"name": "tro-cap-2026-11.csv", "mimeType": "text/csv", "buffer": data}
    )
    officer.get_by_role("button", name="Tải lên").click()
    officer.wait_for_url(re.compile(r"/batches/\d+$"))
    batch_url = officer.url

    # Validation runs in the background; the page notices and shows the report without a click.
    rows = officer.locator("#errors tbody tr")
    expect(rows).to_have_count(3)
    assert [r.split("\t")[0] for r in rows.evaluate_all("rs => rs.map(r => r.innerText)")] == ["7", "8", "9"]
    expect(officer.locator("#rows-invalid")).to_have_text("3")
    check_page(officer, "batch-report")

    code = rows.nth(0).locator("code").text_content()
    assert code
    officer.get_by_label("Lỗi", exact=True).select_option(code)
    expect(officer.locator("#errors tbody tr:not([hidden])")).to_have_count(1)
    with officer.expect_download() as download:
        officer.get_by_role("link", name="Tải báo cáo (CSV)").click()
    report = download.value.path().read_text()
    assert [line.split(",")[0] for line in report.splitlines()[1:]] == ["7", "8", "9"]
    expect(officer.get_by_role("button", name="Duyệt")).to_have_count(0)

    approver = new_page()
    sign_in(approver, live.token("approver", name="Phạm Văn Thử"))
    approver.goto(batch_url)
    dialogs: list[str] = []
    approver.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    approver.get_by_role("button", name="Duyệt").click()
    expect(approver.locator(".flash.error")).to_contain_text("Không có gì thay đổi")
    approver.get_by_label(re.compile("Bỏ qua 3 dòng không hợp lệ")).check()
    approver.get_by_role("button", name="Duyệt").click()
    assert dialogs == ["Duyệt và bỏ qua 3 dòng không hợp lệ? Chỉ 5 dòng hợp lệ được chi trả."] * 2

    # The page follows the run through the simulator to its end, with no click.
    expect(approver.locator("#batch-status")).to_have_text("hoàn tất", timeout=30_000)
    paid = approver.locator("#by-status tr", has_text="đã chi trả")
    expect(paid).to_contain_text("5")
    expect(paid).to_contain_text("2.500.000\u00a0₫")
    expect(approver.locator("#items-done")).to_have_attribute("value", "5")
    expect(approver.get_by_role("button", name="Tạm dừng")).to_have_count(0)
    check_page(approver, "batch-completed")
    with approver.expect_download() as download:
        approver.get_by_role("link", name="Tải báo cáo chi trả (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [r["status"] for r in rows] == ["paid"] * 5
    assert all(r["bank_txn_id"] and r["receipt_code"] for r in rows)
    assert all(
        paying_bank.get("/admin/transfers", params={"reference": r["reference"]}).json()["count"] == 1
        for r in rows
    )
