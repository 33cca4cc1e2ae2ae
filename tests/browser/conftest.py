"""Pages in a real browser: Debian's Chromium, headless, driven by Playwright, checked by axe-core.

One chopay app serves these tests on a free port (werkzeug's threaded server, a SQLite file,
the in-process job runner started as ``chopay serve`` starts it); each test makes its own users
and data. Every page a test opens is checked by axe-core (no serious or critical violation) and
photographed at 360 px and 1280 px wide into ``test-artifacts/``.

Chromium comes from the distribution (``apt-get install chromium``); Playwright's own browser
downloads are not used. Without ``/usr/bin/chromium`` these tests skip and say why; CI
installs it (``.ci/run``), so there nothing skips.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from chopay import create_app, jobs, migrate
from chopay.cli.keys import ensure_keys
from chopay.config import from_env
from chopay.db import get_db
from chopay.users import create_user

CHROMIUM = Path(os.environ.get("CHOPAY_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WIDTHS = (360, 1280)
TIMEOUT_MS = 15_000

if not CHROMIUM.exists():
    pytest.skip(
        reason=f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium) "
        "for browser tests",
        allow_module_level=True,
    )


@dataclass
class Live:
    """The served app: its address, and a way to make users."""

    app: Flask
    base_url: str

    def token(self, role: str, name: str | None = None, merchant_id: int | None = None) -> str:
        with get_db(self.app).unit_of_work() as s:
            return create_user(s, name=name or f"Test {role}", role=role, merchant_id=merchant_id).token

    def user_id(self, token: str) -> int:
        from chopay.users import authenticate

        with get_db(self.app).read_session() as s:
            return authenticate(s, token).id


@pytest.fixture(scope="package")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Serve one chopay app on a free port while this package's tests run."""
    data_dir = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{data_dir / 'chopay.db'}"
    migrate.upgrade(url)
    settings = from_env({}, database_url=url, data_dir=data_dir, inline_jobs=True, log_level="WARNING")
    settings = dataclasses.replace(settings, checkpoint_interval=0.0)
    ensure_keys(settings)
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="chopay-browser-tests", daemon=True)
    thread.start()
    runner = jobs.runner(app)
    assert isinstance(runner, jobs.InlineRunner)
    runner.start()
    yield Live(app, f"http://127.0.0.1:{server.server_port}")
    server.shutdown()
    thread.join(10)
    runner.stop()
    runner.join(10)
    get_db(app).engine.dispose()


@pytest.fixture
def bank_options() -> dict[str, Any]:
    """Override (or parametrize) to configure the bank simulator of ``paying_bank``."""
    return {}


@pytest.fixture
def paying_bank(live: Live, tmp_path: Path, bank_options: dict[str, Any]) -> Iterator[Any]:
    """Pay through the payOS protocol against the bank simulator, in process, while a test runs.

    Returns an httpx client into the simulator, for its admin endpoints.
    """
    import httpx

    from disbursement.execution import RAIL_EXTENSION
    from payments.rails.fakebank import config as cfg
    from payments.rails.payos import PayosRail
    from tests.payments.rails.conftest import make_bank

    bank = make_bank(tmp_path, **bank_options)
    before = live.app.extensions.get(RAIL_EXTENSION)
    with httpx.Client(transport=httpx.WSGITransport(app=bank), base_url="http://fakebank") as http:
        live.app.extensions[RAIL_EXTENSION] = PayosRail(
            base_url="http://fakebank",
            client_id=cfg.DEMO_CLIENT_ID,
            api_key=cfg.DEMO_API_KEY,
            checksum_key=cfg.DEMO_CHECKSUM_KEY,
            http_client=http,
        )
        yield http
        live.app.extensions[RAIL_EXTENSION] = before
    bank.extensions["fakebank"].engine.dispose()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Launch Debian's Chromium once for this package's tests (closed before other tests run)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser: Any, live: Live) -> Iterator[Callable[[], Any]]:
    """Return a factory of pages, each in a browser context (cookies) of its own."""
    contexts: list[Any] = []

    def factory() -> Any:
        context = browser.new_context(base_url=live.base_url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield factory
    for context in contexts:
        context.close()


def sign_in(page: Any, token: str) -> None:
    """Sign in through the form, as a person does."""
    page.goto("/login")
    page.get_by_label("Mã API").fill(token)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url("**/")


def check_page(page: Any, name: str) -> None:
    """Run axe-core on the page (no serious or critical violation); photograph it at both widths."""
    from axe_playwright_python.sync_playwright import Axe

    ARTIFACTS.mkdir(exist_ok=True)
    original = page.viewport_size
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in {"serious", "critical"}]
    assert not bad, f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in bad
    )
    page.set_viewport_size(original)
