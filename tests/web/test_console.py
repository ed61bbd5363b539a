"""The console page and the article page: what the server sends before any script runs."""

from __future__ import annotations

import re

import pytest

from suggester.knowledge.articles import TAXONOMY

from conftest import add_users, sign_in


@pytest.fixture
def agent(app, client):
    """A client signed in as an agent (the console will require it)."""
    add_users(app)
    sign_in(client, "agent")
    return client


def test_console_page_has_the_form_and_only_external_scripts(agent):
    response = agent.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for needle in ('id="inquiry"', 'value="board"', 'value="seller"', 'id="customer-name"',
                   'id="order-id"', "답변 추천 받기", "내부 전용", "그대로 사용", "수정 후 사용",
                   "사용 안 함", "근거 문서 없음 — 확인 후 안내 / 에스컬레이션"):
        assert needle in html
    assert all(f'<option value="{category}">' in html for category in TAXONOMY)
    # A strict CSP (script-src 'self') must hold: no inline script, no inline handlers.
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
    assert not re.search(r"\son[a-z]+\s*=", html)
    assert "//cdn" not in html and "https://" not in html


def test_console_script_is_served_locally_and_builds_text_only(agent):
    script = agent.get("/static/console.js").get_data(as_text=True)
    assert "fetch(\"/api/suggest\"" in script or "\"/api/suggest\"" in script
    # innerHTML is used once, for the article HTML the server sanitised.
    assert script.count(".innerHTML") == 1 and "template.innerHTML = html" in script


def test_article_page_marks_internal_sections(agent):
    response = agent.get("/articles/off-platform-payment")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "안전결제 외 거래 금지 정책" in html
    assert html.count('class="article-section internal"') >= 1
    assert "내부 전용 · 고객 안내 금지" in html


@pytest.mark.parametrize("article_id", ["no-such-article", "Bad_Slug", "..%2Fsecret"])
def test_unknown_articles_are_not_found(agent, article_id):
    assert agent.get(f"/articles/{article_id}").status_code == 404
