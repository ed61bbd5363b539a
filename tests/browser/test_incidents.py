"""A replayed outage in real browsers: one incident opens and every open console shows it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from browser.browser_support import VIEWPORT, LiveServer, log_in, screenshot, serve
from suggester.evaluation.incidents import PAYMENT_OUTAGE
from suggester.settings import Settings

pytestmark = pytest.mark.browser

BANNER_SECONDS = 5  # the promise: every open console within 5 s


@pytest.fixture(scope="module")
def outage_server(shipped_settings: Settings,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of its own: the open incident must not change other tests' drafts."""
    from web import create_app

    settings = replace(shipped_settings,
                       database=tmp_path_factory.mktemp("incident-db") / "app.sqlite3")
    app = create_app({"TESTING": True}, settings=settings)
    app.extensions["suggester.service"].suggest("환불은 언제 되나요?", log=False)
    with serve(app) as server:
        yield server


def console(browser, server: LiveServer, role: str):
    context = browser.new_context(viewport=VIEWPORT, locale="ko-KR", base_url=server.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, server, role=role)
    page.goto("/")
    return context, page, errors


def test_a_replayed_outage_opens_one_incident_shown_in_every_console(browser, outage_server):
    agent_context, agent, agent_errors = console(browser, outage_server, "agent")
    editor_context, editor, editor_errors = console(browser, outage_server, "editor")
    try:
        assert agent.locator("#incident-banner").is_hidden()
        # The page's requests share its session, so writes carry its CSRF token (web/access.py).
        csrf = {"X-CSRF-Token": agent.locator('meta[name="csrf-token"]').get_attribute("content")}
        first_inquiry = time.monotonic()
        for n in range(outage_server.app.extensions["suggester.settings"].incident_threshold):
            response = agent.request.post("/api/suggest", headers=csrf, data={
                "inquiry": PAYMENT_OUTAGE[n % len(PAYMENT_OUTAGE)]})
            assert response.ok
        opened = time.monotonic()
        for page in (agent, editor):
            page.locator("#incident-banner .incident.open").wait_for(
                timeout=BANNER_SECONDS * 1000)
        shown = time.monotonic()
        print(f"\nfirst inquiry → banner in both consoles: {shown - first_inquiry:.1f} s "
              f"(replaying the inquiries took {opened - first_inquiry:.1f} s; opening → "
              f"banner {shown - opened:.1f} s)")
        banner = editor.locator("#incident-banner .incident.open")
        assert banner.count() == 1  # exactly one incident
        assert "결제 오류" in banner.inner_text() and "문의 6건" in banner.inner_text()
        screenshot(editor, "incident-banner")

        # The live count: one more matching inquiry, and the other console sees 7.
        agent.request.post("/api/suggest", headers=csrf, data={"inquiry": "결제가 계속 실패해요"})
        editor.locator("#incident-banner .incident-facts[data-count='7']").wait_for(
            timeout=BANNER_SECONDS * 1000)

        # The agent takes the holding reply as the draft; only the editor may close.
        assert agent.locator("#incident-banner .incident-close").count() == 0
        agent.click("#incident-banner .incident-draft")
        assert "장애" in agent.input_value("#draft-text")
        editor.fill("#incident-banner .incident-close textarea",
                    "카드 결제가 다시 정상적으로 돼요. 한 번 더 시도해 주세요.")
        editor.click("#incident-banner .incident-close button")
        agent.locator("#incident-banner .incident.closed").wait_for(
            timeout=BANNER_SECONDS * 1000)
        agent.click("#incident-banner .incident-draft")
        assert "카드 결제가 다시 정상적으로 돼요." in agent.input_value("#draft-text")
        assert not agent_errors and not editor_errors
    finally:
        agent_context.close()
        editor_context.close()
