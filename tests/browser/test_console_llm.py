"""The console says who wrote the draft when an LLM is configured, and why its draft was not
used. The endpoint is a closed loopback port, so the LLM's call really fails."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from browser.browser_support import LiveServer, log_in, screenshot, serve
from browser.test_console import ask

from conftest import free_port

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_server(shipped_settings, tmp_path_factory) -> Iterator[LiveServer]:
    """The app with an LLM endpoint that refuses connections (overrides the package's)."""
    from web import create_app

    settings = replace(shipped_settings,
                       database=tmp_path_factory.mktemp("browser-llm-db") / "app.sqlite3",
                       llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_model="gemma")
    app = create_app({"TESTING": True}, settings=settings)
    app.extensions["suggester.service"].suggest("환불은 언제 되나요?", log=False)
    with serve(app) as server:
        yield server


def test_a_refused_llm_draft_shows_the_composers_with_the_reason(page, live_server):
    log_in(page, live_server)
    ask(page, "환불은 언제 되나요?")
    assert page.inner_text("#draft-source") == "기본 초안"
    note = page.inner_text("#llm-fallback")
    assert note.startswith("LLM 초안을 쓰지 않았습니다: LLM 호출 오류")
    assert page.input_value("#draft-text")  # the composer's draft is there to use
    screenshot(page, "console-llm-fallback")
