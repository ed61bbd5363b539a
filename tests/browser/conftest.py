"""Browser fixtures: the real app on a loopback port, driven by Debian's chromium via Playwright.

The server runs in a thread with werkzeug's `make_server` over the shipped index and its own
temporary database. It sends a strict Content-Security-Policy (unless the app already sends
one), so a page that needs inline script fails here before it fails in production.

Run `scripts/install-browser.sh` first; without chromium or Playwright these tests skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from browser.browser_support import VIEWPORT, LiveServer, serve
from suggester.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="package")
def live_server(shipped_settings: Settings,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app over the shipped index, with a fresh database, serving on a free port."""
    from web import create_app

    settings = replace(shipped_settings,
                       database=tmp_path_factory.mktemp("browser-db") / "app.sqlite3")
    app = create_app({"TESTING": True}, settings=settings)
    # Load the models now, so the first test's suggestion is not the one that waits for them.
    app.extensions["suggester.service"].suggest("환불은 언제 되나요?", log=False)
    with serve(app) as server:
        yield server


# Package scope, not session: Playwright's sync API keeps an event loop running in the main
# thread while it is open, and later tests that call asyncio.run() (ragas) would fail.
@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    """Debian's chromium, headless; the tests skip when it or Playwright is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing — run scripts/install-browser.sh")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="pip install playwright (the dev extras)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class PageProblems:
    """What must never happen on our pages: dialogs (XSS), script errors, CSP violations."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser, live_server: LiveServer, problems: PageProblems) -> Iterator[object]:
    """A laptop-sized page with clipboard access, failing the test on dialogs and errors."""
    context = browser.new_context(viewport=VIEWPORT, locale="ko-KR", base_url=live_server.url,
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.set_default_timeout(20_000)

    def on_dialog(dialog) -> None:
        problems.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: problems.errors.append(str(error)))
    page.on("console", lambda message: _console_error(message, problems))
    page.on("response", lambda response: _failed_response(response, problems))
    try:
        yield page
    finally:
        context.close()
    assert not problems.dialogs, f"a dialog opened (script ran): {problems.dialogs}"
    assert not problems.errors, f"errors in the page: {problems.errors}"


def _console_error(message, problems: PageProblems) -> None:
    # Failed loads are reported with their URL by _failed_response instead.
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        problems.errors.append(message.text)


def _failed_response(response, problems: PageProblems) -> None:
    # The browser asks for /favicon.ico on its own; base.html declares no icon (yet).
    if response.status >= 400 and not response.url.endswith("/favicon.ico"):
        problems.errors.append(f"{response.status} {response.url}")
