"""The vendor's and the market's pages: poster, live payments, dynamic QR, figures; roles and bad input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from chopay.config import Settings
from chopay.crypto import data_keys
from chopay.db import get_db, utcnow
from merchants import web as merchants_web
from merchants.models import Merchant
from merchants.services import codes, registry
from payments.rails import webhooks as wh
from tests.chopay.webclient import csrf_token, sign_in
from tests.merchants.conftest import vendor
from tests.merchants.intake.conftest import CHOPAY_SECRET, CONNECTORS, chopay_body

VIETNAM = dt.timezone(dt.timedelta(hours=7))


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, bank_connectors=CONNECTORS)


@pytest.fixture
def make_merchant(app: Flask) -> Callable[..., Merchant]:
    def factory(n: int = 1, **fields: Any) -> Merchant:
        with app.app_context(), get_db(app).unit_of_work() as s:
            return registry.create(s, data_keys(app), vendor(n, **fields))

    return factory


@pytest.fixture
def stall(make_merchant: Callable[..., Merchant]) -> Merchant:
    return make_merchant(1, display_name="Sạp rau Bà Thử Ngọc Ánh", stall="B-017")


@pytest.fixture
def page(app: Flask, make_token: Callable[..., str]) -> Callable[..., FlaskClient]:
    """Return a factory of test clients signed in with a role (a vendor's user for ``merchant``)."""

    def factory(role: str, merchant: Merchant | None = None) -> FlaskClient:
        token = make_token(role, merchant_id=merchant.id if merchant is not None else None)
        return sign_in(app.test_client(), token)

    return factory


def _text(resp: Any) -> str:
    return html.unescape(resp.get_data(as_text=True))


def _main(resp: Any) -> str:
    return _text(resp).split('<main id="main">')[1].split("</main>")[0]


def _pay(
    client: FlaskClient, merchant: Merchant, txn: str, amount: int, *, at: dt.datetime, ref: str = ""
) -> Any:
    body = chopay_body(
        bank_txn_id=txn,
        account_number=merchant.account_number,
        amount=amount,
        description=f"{ref} thanh toan".strip(),
        occurred_at=at.isoformat(),
    )
    resp = client.post(
        "/v1/bank-notifications", data=body, headers=wh.chopay_headers("bank-a", body, CHOPAY_SECRET)
    )
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()["payment"]


def _now() -> dt.datetime:
    return utcnow().astimezone(VIETNAM)


# ---------------------------------------------------------------------------------------------
# Poster


def test_the_poster_shows_the_stall_its_account_and_its_static_qr(
    app: Flask, stall: Merchant, page: Callable[..., FlaskClient]
) -> None:
    resp = page("officer").get(f"/m/{stall.public_id}/poster")
    assert resp.status_code == 200
    text = _text(resp)
    for shown in (
        "Sạp rau Bà Thử Ngọc Ánh",
        "Chợ Hàn",
        "B-017",
        "Vietcombank",
        stall.account_number,
        "NGUYEN VAN THU 1",
    ):
        assert shown in text
    assert "Quét mã bằng ứng dụng ngân hàng để thanh toán" in text
    assert f'data-payload="{codes.static_payload(stall)}"' in text
    svg = re.search(r'<svg role="img" aria-label="[^"]+" xmlns="http://www.w3.org/2000/svg"', text)
    assert svg is not None, "the QR is inline SVG with an accessible name"
    assert "<img" not in text
    css = app.test_client().get("/assets/merchants/merchants.css")
    assert "@page" in css.get_data(as_text=True)
    css.close()


def test_the_vendor_opens_its_own_poster_and_another_vendor_s_is_the_404_page(
    make_merchant: Callable[..., Merchant], page: Callable[..., FlaskClient]
) -> None:
    a, b = make_merchant(1), make_merchant(2)
    client = page("merchant", a)
    assert client.get(f"/m/{a.public_id}/poster").status_code == 200
    for path in (f"/m/{b.public_id}/poster", f"/m/{b.public_id}", f"/m/{b.public_id}/events"):
        resp = client.get(path)
        assert resp.status_code == 404, path
        assert resp.mimetype == "text/html"
        assert b.display_name not in _text(resp)
    missing = client.get("/m/m_2222222222/poster")
    assert missing.status_code == 404
    denied = client.get(f"/m/{b.public_id}/poster")
    assert _main(missing) == _main(denied), "as an id that does not exist"


@pytest.mark.parametrize("role", ["auditor", "approver"])
def test_other_roles_get_the_404_page_for_vendor_and_market_pages(
    role: str, stall: Merchant, page: Callable[..., FlaskClient]
) -> None:
    client = page(role)
    for path in (
        f"/m/{stall.public_id}/poster",
        f"/m/{stall.public_id}",
        "/markets",
        "/markets/CHO-HAN",
        "/m",
    ):
        assert client.get(path).status_code == 404, path


def test_nobody_signed_in_is_sent_to_sign_in(app: Flask, stall: Merchant) -> None:
    resp = app.test_client().get(f"/m/{stall.public_id}/poster")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/login?next=")


def test_a_suspended_vendor_s_poster_is_gone(
    app: Flask, stall: Merchant, page: Callable[..., FlaskClient]
) -> None:
    with app.app_context(), get_db(app).unit_of_work() as s:
        found = s.get(Merchant, stall.id)
        assert found is not None
        registry.change_status(s, found, "suspended", reason="kiểm tra")
    resp = page("admin").get(f"/m/{stall.public_id}/poster")
    assert resp.status_code == 410
    assert codes.static_payload(stall) not in _text(resp)


def test_the_vendor_link_goes_to_its_own_page(stall: Merchant, page: Callable[..., FlaskClient]) -> None:
    client = page("merchant", stall)
    resp = client.get("/m")
    assert resp.status_code == 303
    assert resp.headers["Location"] == f"/m/{stall.public_id}"
    assert 'href="/m"' in client.get(f"/m/{stall.public_id}").get_data(as_text=True), "the navigation"


# ---------------------------------------------------------------------------------------------
# The live page


def test_the_live_page_shows_today_s_payments_and_total_only(
    client: FlaskClient, stall: Merchant, page: Callable[..., FlaskClient]
) -> None:
    now = _now()
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first = _pay(client, stall, "FT1", 50_000, at=now - dt.timedelta(minutes=1))
    second = _pay(client, stall, "FT2", 1_250_000, at=now)
    yesterday = _pay(client, stall, "FT3", 7_000, at=start_of_day - dt.timedelta(minutes=1))
    text = _text(page("merchant", stall).get(f"/m/{stall.public_id}"))
    assert "50.000\u00a0₫" in text
    assert "1.250.000\u00a0₫" in text
    assert "7.000\u00a0₫" not in text
    assert re.search(r'id="today-total"[^>]*data-amount="1300000">1.300.000\u00a0₫<', text)
    assert re.search(r'id="today-count"[^>]*>2<', text)
    assert text.index("1.250.000") < text.index("50.000"), "newest first"
    newest = max(p["id"] for p in (first, second, yesterday))
    assert f'data-events="/m/{stall.public_id}/events?after={newest}"' in text, (
        "the stream replays nothing past"
    )


def test_the_page_stream_replays_after_the_page_s_last_payment(
    client: FlaskClient, stall: Merchant, page: Callable[..., FlaskClient]
) -> None:
    first = _pay(client, stall, "FT1", 50_000, at=_now())
    second = _pay(client, stall, "FT2", 20_000, at=_now())
    vendor_page = page("merchant", stall)
    resp = vendor_page.get(f"/m/{stall.public_id}/events?after={first['id']}", buffered=False)
    assert resp.status_code == 200
    assert resp.mimetype == "text/event-stream"
    chunks = iter(resp.response)
    assert next(chunks).startswith(b"retry:")
    event = next(chunks).decode()
    resp.close()
    assert f"id: {second['id']}\nevent: payment.received\n" in event
    assert '"amount":20000' in event


def test_the_page_stream_refuses_a_malformed_position(
    stall: Merchant, page: Callable[..., FlaskClient]
) -> None:
    client = page("officer")
    assert client.get(f"/m/{stall.public_id}/events?after=abc").status_code == 400
    bad = client.get(f"/m/{stall.public_id}/events", headers={"Last-Event-ID": "1;2"})
    assert bad.status_code == 400


def test_the_api_stream_still_needs_a_bearer_token_not_the_page_cookie(
    stall: Merchant, page: Callable[..., FlaskClient]
) -> None:
    resp = page("merchant", stall).get(f"/v1/merchants/{stall.public_id}/events")
    assert resp.status_code == 401
    assert resp.get_json()["code"] == "token_missing"


# ---------------------------------------------------------------------------------------------
# A dynamic QR for an amount


def _intent_form(client: FlaskClient, merchant: Merchant, amount: Any, *, as_json: bool = False) -> Any:
    token = csrf_token(client, f"/m/{merchant.public_id}")
    headers = {"Accept": "application/json"} if as_json else {}
    return client.post(
        f"/m/{merchant.public_id}/intents", data={"amount": amount, "csrf_token": token}, headers=headers
    )


def test_a_dynamic_qr_is_shown_until_it_is_paid(
    client: FlaskClient, stall: Merchant, page: Callable[..., FlaskClient]
) -> None:
    seller = page("merchant", stall)
    resp = _intent_form(seller, stall, "45000")
    assert resp.status_code == 303
    screen = resp.headers["Location"]
    assert re.fullmatch(rf"/m/{stall.public_id}/intents/pi_[0-9a-z]+", screen)
    text = _text(seller.get(screen))
    assert "45.000\u00a0₫" in text
    assert "<svg" in text
    assert "Chờ thanh toán" in text
    status = seller.get(screen + "/status.json").get_json()
    assert status["status"] == "open"
    assert status["paid"] is False
    _pay(client, stall, "FT9", 45_000, at=_now(), ref=status["reference"])
    paid = seller.get(screen + "/status.json").get_json()
    assert paid["status"] == "paid"
    assert paid["status_label"] == "Đã thanh toán"
    text = _text(seller.get(screen))
    assert "Đã thanh toán" in text
    assert "<svg" not in text, "a paid intent's QR is not shown again"


def test_the_page_script_gets_the_intent_and_its_qr_as_json(
    stall: Merchant, page: Callable[..., FlaskClient]
) -> None:
    resp = _intent_form(page("officer"), stall, 30000, as_json=True)
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["amount"] == 30000
    assert body["status"] == "open"
    assert body["qr_svg"].startswith("<svg")
    assert body["status_url"].endswith("/status.json")


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("", "Nhập số tiền"),
        ("abc", "chỉ gồm chữ số"),
        ("0", "Số tiền từ"),
        ("-5", "chỉ gồm chữ số"),
        ("10000000000000", "Số tiền từ 1 đến 9.999.999.999.999 đồng"),
        ("12.5", "chỉ gồm chữ số"),
        ("５０００", "chỉ gồm chữ số"),
    ],
)
def test_a_bad_amount_is_refused_with_a_reason_and_opens_nothing(
    app: Flask, stall: Merchant, page: Callable[..., FlaskClient], amount: str, message: str
) -> None:
    client = page("merchant", stall)
    resp = _intent_form(client, stall, amount)
    assert resp.status_code == 422
    text = _text(resp)
    assert message in text
    assert 'aria-invalid="true"' in text
    as_json = _intent_form(client, stall, amount, as_json=True)
    assert as_json.status_code == 422
    assert as_json.get_json()["errors"]["amount"]
    with app.app_context(), get_db(app).read_session() as s:
        from merchants.models import PaymentIntent

        assert s.query(PaymentIntent).count() == 0


def test_the_intent_form_without_its_csrf_token_is_refused(
    app: Flask, stall: Merchant, page: Callable[..., FlaskClient]
) -> None:
    resp = page("merchant", stall).post(f"/m/{stall.public_id}/intents", data={"amount": "5000"})
    assert resp.status_code == 400
    with app.app_context(), get_db(app).read_session() as s:
        from merchants.models import PaymentIntent

        assert s.query(PaymentIntent).count() == 0


def test_a_vendor_cannot_open_an_intent_or_read_one_of_another_vendor(
    make_merchant: Callable[..., Merchant], page: Callable[..., FlaskClient]
) -> None:
    a, b = make_merchant(1), make_merchant(2)
    screen = _intent_form(page("merchant", b), b, 5000).headers["Location"]
    client = page("merchant", a)
    token = csrf_token(client, f"/m/{a.public_id}")
    assert (
        client.post(f"/m/{b.public_id}/intents", data={"amount": "5000", "csrf_token": token}).status_code
        == 404
    )
    assert client.get(screen).status_code == 404
    assert client.get(screen + "/status.json").status_code == 404
    other_screen = screen.replace(b.public_id, a.public_id)
    assert client.get(other_screen).status_code == 404, "an intent is looked up within its own vendor"


def test_a_suspended_vendor_opens_no_intent(
    app: Flask, stall: Merchant, page: Callable[..., FlaskClient]
) -> None:
    client = page("merchant", stall)
    token = csrf_token(client, f"/m/{stall.public_id}")
    with app.app_context(), get_db(app).unit_of_work() as s:
        found = s.get(Merchant, stall.id)
        assert found is not None
        registry.change_status(s, found, "suspended", reason="kiểm tra")
    assert "intent-form" not in client.get(f"/m/{stall.public_id}").get_data(as_text=True)
    resp = client.post(f"/m/{stall.public_id}/intents", data={"amount": "5000", "csrf_token": token})
    assert resp.status_code == 422
    assert "không nhận thanh toán mới" in _text(resp)


# ---------------------------------------------------------------------------------------------
# Market figures


def test_the_market_page_shows_the_figures_a_chart_per_day_and_the_qr_share(
    client: FlaskClient, make_merchant: Callable[..., Merchant], page: Callable[..., FlaskClient]
) -> None:
    vendors = [make_merchant(n) for n in range(1, 5)]
    now = _now()
    _pay(client, vendors[0], "FT1", 50_000, at=now)
    _pay(client, vendors[0], "FT2", 30_000, at=now - dt.timedelta(days=2))
    _pay(client, vendors[1], "FT3", 20_000, at=now)
    officer = page("officer")
    listing = _text(officer.get("/markets"))
    assert "Chợ Hàn" in listing
    assert "/markets/CHO-HAN" in listing
    last, first = now.date(), now.date() - dt.timedelta(days=6)
    resp = officer.get(f"/markets/CHO-HAN?from={first}&to={last}")
    assert resp.status_code == 200
    text = _text(resp)
    assert "50%" in text, "two of four active vendors were paid"
    assert re.search(r'id="payment-count">3<', text)
    assert re.search(r'id="payment-value">100.000\u00a0₫<', text)
    bars = re.findall(r'<rect class="bar" [^>]*data-date="([0-9-]+)" data-count="([0-9]+)"', text)
    assert len(bars) == 7
    counts = dict(bars)
    assert counts[str(last)] == "2"
    assert counts[str(last - dt.timedelta(days=2))] == "1"
    assert "<script" not in text.split("</svg>")[0].split("<svg viewBox")[1]
    for v in vendors:
        assert f"/m/{v.public_id}/poster" in text


def test_the_market_page_defaults_to_the_last_thirty_days(
    make_merchant: Callable[..., Merchant], page: Callable[..., FlaskClient]
) -> None:
    make_merchant(1)
    text = _text(page("admin").get("/markets/CHO-HAN"))
    assert len(re.findall(r'<rect class="bar"', text)) == merchants_web.FIGURE_DAYS


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01", "YYYY-MM-DD"),
        ("to=yesterday", "YYYY-MM-DD"),
        ("from=2026-12-05&to=2026-12-01", "before"),
        ("from=2020-01-01&to=2026-01-01", "366"),
    ],
)
def test_a_bad_period_is_refused_with_a_reason(
    make_merchant: Callable[..., Merchant], page: Callable[..., FlaskClient], query: str, message: str
) -> None:
    make_merchant(1)
    resp = page("officer").get(f"/markets/CHO-HAN?{query}")
    assert resp.status_code == 422
    assert message in _text(resp)


def test_a_market_with_no_vendor_is_the_404_page(page: Callable[..., FlaskClient]) -> None:
    resp = page("officer").get("/markets/CHO-KHONG-CO")
    assert resp.status_code == 404
    assert resp.mimetype == "text/html"


def test_the_chart_scales_bars_to_a_round_axis() -> None:
    day = dt.date(2026, 12, 1)
    days = [
        {"date": day + dt.timedelta(days=i), "count": c, "value": c * 1000} for i, c in enumerate([0, 3, 7])
    ]
    drawn = merchants_web.chart(days, width=344, height=240)
    assert drawn.ticks[-1][1] == 8, "the axis ends at a round value at least the peak"
    plot = 240 - drawn.top - drawn.bottom
    heights = [b.height for b in drawn.bars]
    assert heights[0] == 0
    assert heights[1] == pytest.approx(plot * 3 / 8)
    assert heights[2] == pytest.approx(plot * 7 / 8)
    assert all(b.y + b.height == pytest.approx(drawn.top + plot) for b in drawn.bars), (
        "bars stand on the axis"
    )
    assert drawn.bars[1].x > drawn.bars[0].x + drawn.bars[0].width - 1e-9, "bars do not overlap"
    empty = merchants_web.chart([{"date": day, "count": 0, "value": 0}])
    assert [b.height for b in empty.bars] == [0]


def test_shares_read_as_vietnamese_percentages() -> None:
    assert merchants_web.percent(0.5) == "50%"
    assert merchants_web.percent(0.4567) == "45,7%"
    assert merchants_web.percent(0.0) == "0%"


@given(st.one_of(st.text(max_size=40), st.integers(min_value=0).map(str)))
def test_an_amount_typed_is_whole_dong_in_ascii_digits_or_refused(text: str) -> None:
    stripped = text.strip()
    try:
        amount = merchants_web.parse_amount(text)
    except ValueError:
        assert (
            not (stripped.isascii() and stripped.isdigit()) or len(stripped) > merchants_web.MAX_AMOUNT_CHARS
        )
        return
    if amount is None:
        assert stripped == ""
    else:
        assert stripped.isascii()
        assert stripped.isdigit()
        assert amount == int(stripped)


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=400))
def test_every_bar_stands_on_the_axis_within_the_plot(counts: list[int]) -> None:
    day = dt.date(2026, 1, 1)
    days = [{"date": day + dt.timedelta(days=i), "count": c, "value": c} for i, c in enumerate(counts)]
    drawn = merchants_web.chart(days)
    plot = drawn.height - drawn.top - drawn.bottom
    assert drawn.ticks[-1][1] >= max(counts)
    for bar, count in zip(drawn.bars, counts, strict=True):
        assert 0 <= bar.height <= plot + 1e-9
        assert bar.y >= drawn.top - 1e-9
        assert bar.y + bar.height == pytest.approx(drawn.top + plot)
        assert drawn.left <= bar.x
        assert bar.x + bar.width <= drawn.width + 1e-9
        assert (bar.height > 0) == (count > 0)
