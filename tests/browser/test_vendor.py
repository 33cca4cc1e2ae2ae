"""The vendor in Chromium: the printed poster's QR, payments arriving live, a dynamic QR paid; the markets."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from chopay.crypto import data_keys
from chopay.db import get_db, utcnow
from merchants.intake import connectors
from merchants.models import Merchant
from merchants.services import codes, registry
from payments.rails import webhooks as wh
from tests.browser.conftest import ARTIFACTS, check_page, sign_in
from tests.merchants.conftest import vendor

_serial = itertools.count(1)
VIETNAM = dt.timezone(dt.timedelta(hours=7))


def _vendor(live, **fields) -> Merchant:
    """Register an obviously fake vendor with a market and account of this test's own."""
    n = next(_serial)
    values = vendor(800 + n, market_code="CHO-THU", market_name="Chợ Thử Nghiệm", **fields)
    with live.app.app_context(), get_db(live.app).unit_of_work() as s:
        return registry.create(s, data_keys(live.app), values)


def _connector(live) -> tuple[str, str]:
    """Add a chopay-format connector; return its name and secret."""
    name = f"bank-browser-{next(_serial)}"
    with live.app.app_context(), get_db(live.app).unit_of_work() as s:
        issued = connectors.add(s, data_keys(live.app), name=name, fmt="chopay")
    return name, issued.secret


def _pay(live, connector: tuple[str, str], merchant: Merchant, amount: int, description: str) -> dict:
    """Deliver a correctly signed bank notification of a payment to the intake endpoint."""
    body = json.dumps(
        {
            "bank_txn_id": f"FTB{next(_serial) + 26_000_000}",
            "bin": merchant.bin,
            "account_number": merchant.account_number,
            "amount": amount,
            "description": description,
            "occurred_at": utcnow().astimezone(VIETNAM).isoformat(),
        }
    ).encode()
    resp = httpx.post(
        live.base_url + "/v1/bank-notifications",
        content=body,
        headers=wh.chopay_headers(connector[0], body, connector[1]),
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["payment"]


@contextmanager
def _simulator(tmp_path: Path, live, connector: tuple[str, str]) -> Iterator[httpx.Client]:
    """Run the bank simulator in process, notifying the served chopay through ``connector``."""
    from tests.payments.rails.conftest import make_bank

    bank = make_bank(tmp_path, notify_url=live.base_url)
    deliverer = bank.extensions["fakebank"].deliverer
    deliverer.start()
    try:
        with httpx.Client(transport=httpx.WSGITransport(app=bank), base_url="http://fakebank") as http:
            configured = http.put(
                f"/admin/connectors/{connector[0]}", json={"format": "chopay", "secret": connector[1]}
            )
            assert configured.status_code == 200, configured.text
            yield http
    finally:
        deliverer.stop()
        bank.extensions["fakebank"].engine.dispose()


def _bank_pays(bank: httpx.Client, merchant: Merchant, amount: int, memo: str) -> None:
    """A buyer's bank transfer into the vendor's account; the simulator notifies chopay."""
    answer = bank.post(
        "/admin/pay",
        json={
            "to_bin": merchant.bin,
            "to_account": merchant.account_number,
            "amount": amount,
            "memo": memo,
            "format": "chopay",
        },
    )
    assert answer.status_code == 201, answer.text


def _pdf_pages(pdf: bytes) -> int:
    """Count the pages of a PDF: its page objects, and the page tree's count must agree."""
    objects = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))
    counts = [int(c) for c in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", pdf)]
    counts += [int(c) for c in re.findall(rb"/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", pdf)]
    assert counts, "the PDF has a page tree"
    assert max(counts) == objects, (counts, objects)
    return objects


def test_the_poster_s_qr_decodes_to_the_payload_and_prints_on_one_a5_page(live, new_page):
    stall = _vendor(live, display_name="Sạp cá Bà Thử Hồng Nhung", stall="C-042")
    page = new_page()
    sign_in(page, live.token("merchant", name="Nguyễn Văn Thử", merchant_id=stall.id))
    page.goto(f"/m/{stall.public_id}/poster")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sạp cá Bà Thử Hồng Nhung")
    expect(page.locator(".poster")).to_contain_text("Quét mã bằng ứng dụng ngân hàng để thanh toán")
    check_page(page, "vendor-poster")

    shot = page.screenshot(full_page=True)
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(shot)))
    qr_codes = [b for b in found if b.format == zxingcpp.BarcodeFormat.QRCode]
    assert len(qr_codes) == 1, found
    assert qr_codes[0].text == codes.static_payload(stall)

    page.emulate_media(media="print")
    pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "vendor-poster.pdf").write_bytes(pdf)
    assert _pdf_pages(pdf) == 1
    # A5 is 148 x 210 mm: 419.5 x 595.3 points.
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert box is not None
    assert abs(float(box.group(1)) - 419.5) < 2
    assert abs(float(box.group(2)) - 595.3) < 2
    expect(page.locator("header.site")).to_be_hidden()
    page.emulate_media(media="screen")


@pytest.fixture
def simulator(live, tmp_path: Path) -> Iterator[tuple[tuple[str, str], httpx.Client]]:
    """A chopay-format connector, and the bank simulator delivering to it."""
    connector = _connector(live)
    with _simulator(tmp_path, live, connector) as bank:
        yield connector, bank


def test_a_payment_appears_live_and_the_dynamic_qr_shows_paid(live, new_page, simulator):
    stall = _vendor(live, display_name="Sạp rau Bà Thử Lan Anh")
    connector, bank = simulator
    _pay(live, connector, stall, 20_000, "mua rau")  # before the page opens: rendered by the server
    page = new_page()
    sign_in(page, live.token("merchant", name="Lê Văn Thử", merchant_id=stall.id))
    page.goto(f"/m/{stall.public_id}")
    expect(page.locator("#today-total")).to_have_text("20.000\u00a0₫")
    expect(page.locator("#live-state")).to_have_text("Các khoản thanh toán mới hiện ở đây ngay khi đến.")
    check_page(page, "vendor-live")
    page.evaluate("window.__notReloaded = true")

    _bank_pays(bank, stall, 50_000, "mua ca")
    started = time.monotonic()
    row = page.locator("#payments tbody tr").first
    expect(row).to_contain_text("50.000\u00a0₫", timeout=2_000)
    assert time.monotonic() - started < 2.0
    expect(row).to_have_class(re.compile(r"\barrived\b"))
    expect(page.locator("#today-total")).to_have_text("70.000\u00a0₫")
    expect(page.locator("#today-count")).to_have_text("2")

    page.get_by_label("Số tiền (đồng)").fill("45000")
    page.get_by_role("button", name="Hiện mã QR cho số tiền này").click()
    screen = page.locator("#intent-screen")
    expect(screen).to_be_visible()
    expect(screen.locator("#intent-amount")).to_have_text("45.000\u00a0₫")
    expect(screen.locator("#intent-status")).to_have_text("Chờ thanh toán")
    box = screen.bounding_box()
    assert box is not None
    assert box["width"] >= 1279, "the QR screen fills the window"
    assert box["height"] >= 899
    check_page(page, "vendor-intent")

    qr_shot = screen.locator("#intent-qr svg").screenshot()
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr_shot)))
    assert len(decoded) == 1
    reference = re.search(r"CP[0-9A-Z]{8}", decoded[0].text)
    assert reference is not None, decoded[0].text

    _bank_pays(bank, stall, 45_000, f"{reference.group(0)} thanh toan")
    started = time.monotonic()
    expect(screen.locator("#intent-status")).to_have_text("Đã thanh toán", timeout=2_000)
    assert time.monotonic() - started < 2.0
    expect(screen.locator("#intent-qr")).to_be_hidden()
    expect(screen.locator("#intent-title")).to_have_text("Thanh toán")
    expect(page.locator("#today-total")).to_have_text("115.000\u00a0₫")
    assert page.evaluate("window.__notReloaded") is True, "the page was not reloaded"
    check_page(page, "vendor-intent-paid")

    intent_page = page.evaluate("document.getElementById('intent-screen').dataset.intent")
    page.goto(f"/m/{stall.public_id}/intents/{intent_page}")
    expect(page.locator("#intent-status")).to_have_text("Đã thanh toán")
    check_page(page, "vendor-intent-page")


def test_a_vendor_signed_in_as_a_opening_b_s_page_gets_the_404_page(live, new_page):
    a, b = _vendor(live), _vendor(live)
    page = new_page()
    sign_in(page, live.token("merchant", merchant_id=a.id))
    for path in (f"/m/{b.public_id}", f"/m/{b.public_id}/poster"):
        answer = page.goto(path)
        assert answer is not None
        assert answer.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("Không tìm thấy trang")
        expect(page.locator("main")).not_to_contain_text(b.display_name)
    check_page(page, "vendor-other-404")


def test_the_officer_reads_a_market_s_figures_and_chart(live, new_page):
    stalls = [_vendor(live) for _ in range(3)]
    bank = _connector(live)
    _pay(live, bank, stalls[0], 30_000, "mua")
    page = new_page()
    sign_in(page, live.token("officer", name="Phạm Thị Thử"))
    page.get_by_role("navigation").get_by_role("link", name="Các chợ").click()
    check_page(page, "markets")
    page.get_by_role("link", name="Chợ Thử Nghiệm").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Chợ Thử Nghiệm")
    expect(page.locator("#per-day-chart rect.bar")).to_have_count(30)
    expect(page.locator("#qr-share")).not_to_have_text("")
    check_page(page, "market-figures")
