"""Sign-in, the session cookie, CSRF, roles and the 404 page, in Chromium."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import check_page, sign_in


def test_sign_in_keeps_only_a_flagged_cookie_and_sign_out_ends_it(live, new_page):
    page = new_page()
    token = live.token("auditor", name="Nguyễn Văn Thử")
    page.goto("/login")
    check_page(page, "login")
    page.get_by_label("Mã API").fill(token)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url("**/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Xin chào, Nguyễn Văn Thử")
    assert token not in page.content()
    assert token not in page.url
    (cookie,) = page.context.cookies()
    assert cookie["name"] == "chopay_session"
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain http here; https sets it
    assert token not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # no script can read it
    check_page(page, "home-auditor")

    page.get_by_role("button", name="Đăng xuất").click()
    page.wait_for_url("**/login")
    page.goto("/audit")
    assert page.url.endswith("/login?next=/audit")


def test_a_form_without_its_csrf_token_is_refused(live, new_page):
    page = new_page()
    page.goto("/login")
    page.get_by_label("Mã API").fill(live.token("auditor"))
    page.evaluate("document.querySelector('main form input[name=csrf_token]').remove()")
    with page.expect_response("**/login") as answer:
        page.get_by_role("button", name="Đăng nhập").click()
    assert answer.value.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("Biểu mẫu đã hết hạn")
    check_page(page, "csrf-refused")
    page.goto("/")
    assert "/login" in page.url  # not signed in


def test_navigation_shows_only_what_the_role_may_open(live, new_page):
    officer = new_page()
    sign_in(officer, live.token("officer"))
    nav = officer.get_by_role("navigation", name="Điều hướng chính")
    expect(nav.get_by_role("link", name="Đợt chi trả")).to_be_visible()
    expect(nav.get_by_role("link", name="Kiểm toán")).to_have_count(0)
    auditor = new_page()
    sign_in(auditor, live.token("auditor"))
    nav = auditor.get_by_role("navigation", name="Điều hướng chính")
    expect(nav.get_by_role("link", name="Kiểm toán")).to_be_visible()
    expect(nav.get_by_role("link", name="Đối soát")).to_be_visible()


def test_a_merchant_or_another_role_gets_the_404_page(live, new_page):
    merchant = new_page()
    sign_in(merchant, live.token("merchant", name="Bà Thử bán rau", merchant_id=1))
    answer = merchant.goto("/batches")
    assert answer.status == 404
    expect(merchant.get_by_role("heading", level=1)).to_have_text("Không tìm thấy trang")
    check_page(merchant, "not-found-merchant")
    officer = new_page()
    sign_in(officer, live.token("officer"))
    assert officer.goto("/audit").status == 404
    expect(officer.get_by_role("heading", level=1)).to_have_text("Không tìm thấy trang")


def test_the_language_switch_turns_the_pages_english(live, new_page):
    page = new_page()
    page.goto("/login")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert page.evaluate("document.documentElement.lang") == "en"
    check_page(page, "login-english")
