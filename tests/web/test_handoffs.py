"""Hand-offs: feature requests grouped by meaning with an editor's status; gaps become drafts."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from insights_data import log_at

from suggester.knowledge.articles import read_article
from suggester.knowledge.lint import ERROR, lint_kb
from suggester.records.features import FeatureRecords
from web import create_app

from conftest import add_token, add_users, bearer, form_token, sign_in

FOLDERS = ("찜 목록을 폴더별로 정리할 수 있는 기능을 추가해 주세요",
           "찜 목록 폴더 기능 생기면 좋겠어요 건의합니다")
DARK_MODE = "앱에 다크 모드 기능을 추가해 주세요"


@pytest.fixture
def handoff_app(served_kb, tmp_path):
    """The app over copies of the shipped KB and index: gap drafts write article files."""
    app = create_app({"TESTING": True},
                     settings=replace(served_kb, database=tmp_path / "app.sqlite3"))
    add_users(app)
    app.config["AGENT_TOKEN"] = add_token(app, "handoff-agent")
    return app


def suggest(client, inquiry: str) -> dict:
    """Ask as an agent's API token would, whoever the client is signed in as."""
    token = client.application.config["AGENT_TOKEN"]
    response = client.post("/api/suggest", json={"inquiry": inquiry}, headers=bearer(token))
    assert response.status_code == 200
    return response.get_json()


def test_feature_requests_group_by_meaning_and_a_shipped_line_reaches_the_draft(handoff_app):
    client = handoff_app.test_client()
    replies = [suggest(client, text) for text in (*FOLDERS, DARK_MODE)]
    assert all(r["analysis"]["inquiry_types"][0]["category"] == "기능제안" for r in replies)
    records = FeatureRecords(handoff_app.extensions["suggester.store"])
    groups = {g.representative: g for g in records.groups(with_examples=True)}
    assert len(groups) == 2, list(groups)  # the two folder requests are one group
    folders = groups[FOLDERS[0]]
    assert folders.requests == 2 and folders.status == "접수"
    assert folders.first_seen <= folders.last_seen and len(folders.examples) == 2

    # An agent may not set the status; an editor may, and only 반영 with a line is said.
    sign_in(client, "agent")
    page = client.get("/insights/features/").get_data(as_text=True)
    assert FOLDERS[0] in page and "feature-status" not in page
    denied = client.post(f"/insights/features/{folders.id}",
                         data={"csrf_token": form_token(page), "status": "반영"})
    assert denied.status_code == 403
    line = "요청하신 찜 폴더 기능은 12월 10일부터 제공돼요."
    editor = handoff_app.test_client()
    sign_in(editor, "editor")
    token = form_token(editor.get("/insights/features/").get_data(as_text=True))
    editor.post(f"/insights/features/{folders.id}",
                data={"csrf_token": token, "status": "검토중", "announcement": line})
    asked_again = suggest(client, "찜 목록을 폴더로 나누는 기능 있으면 좋겠어요")
    assert line not in asked_again["draft"]["text"]
    editor.post(f"/insights/features/{folders.id}",
                data={"csrf_token": token, "status": "반영", "announcement": ""})
    assert "제공돼요" not in suggest(client, FOLDERS[1])["draft"]["text"]  # no line, no promise
    editor.post(f"/insights/features/{folders.id}",
                data={"csrf_token": token, "status": "반영", "announcement": line})
    assert suggest(client, FOLDERS[1])["draft"]["text"].startswith(line)
    assert line not in suggest(client, DARK_MODE)["draft"]["text"]  # another group
    bad = editor.post(f"/insights/features/{folders.id}",
                      data={"csrf_token": token, "status": "출시"}, follow_redirects=True)
    assert "상태는 접수, 검토중, 반영, 보류 중 하나여야 합니다." in bad.get_data(as_text=True)


def test_a_gap_group_becomes_a_draft_that_lints_and_round_trips_through_the_editor(
        handoff_app):
    store = handoff_app.extensions["suggester.store"]
    questions = ["중고 명품 시계 감정 서비스도 해 주시나요?", "시계 정품 감정 서비스 있나요?"]
    ids = [log_at(store, datetime.now(UTC), inquiry=q, grounded=False,
                  types=("상품상태",), cited=()) for q in questions]
    sent = "현재 시계 감정 서비스는 준비 중이에요. 출시되면 공지로 안내드릴게요."
    store.record_feedback(ids[0], verdict="edited", final_text=sent)
    editor = handoff_app.test_client()
    sign_in(editor, "editor")
    page = editor.get("/insights/").get_data(as_text=True)
    assert "문서 초안 만들기" in page
    form = page.split('class="gap-draft"', 1)[1].split("</form>", 1)[0]
    data = {"csrf_token": form_token(page),
            "category": re.search(r'name="category" value="([^"]*)"', form).group(1),
            "suggestion_id": re.findall(r'name="suggestion_id" value="([^"]*)"', form)}
    assert sorted(data["suggestion_id"]) == sorted(ids)
    response = editor.post("/insights/gaps/draft", data=data)
    assert response.status_code == 302 and response.headers["Location"].endswith("/edit")
    article_id = response.headers["Location"].split("/")[2]
    kb_dir = handoff_app.extensions["suggester.settings"].kb_dir
    path = next(kb_dir.rglob(f"{article_id}.md"))
    article = read_article(path)
    assert article.status == "draft" and article.category == "상품상태"
    assert sorted(q.title for q in article.questions()) == sorted(f"Q. {q}" for q in questions)
    assert sent in article.section("응대 예시").full_text()
    errors = [f for f in lint_kb(kb_dir).findings if f.path == path and f.severity == ERROR]
    assert not errors

    # Round trip: the editor opens it and saves it again as a draft; nothing is served.
    edit = editor.get(f"/editor/{article_id}/edit").get_data(as_text=True)
    base = re.search(r'name="base" value="([^"]*)"', edit).group(1)
    source = path.read_text(encoding="utf-8").replace("## 안내\n(작성 필요)",
                                                      "## 안내\n시계 감정은 준비 중이에요.")
    saved = editor.post(f"/editor/{article_id}/save", data={
        "csrf_token": form_token(edit), "base": base, "source": source, "action": "draft"})
    assert saved.status_code == 302
    assert "시계 감정은 준비 중이에요." in path.read_text(encoding="utf-8")
    assert read_article(path).status == "draft"
    agent = handoff_app.test_client()
    assert article_id not in str(suggest(agent, "시계 감정 서비스 있나요?"))


def test_only_editors_make_drafts_from_gaps(handoff_app):
    client = handoff_app.test_client()
    sign_in(client, "agent")
    page = client.get("/insights/").get_data(as_text=True)
    assert "문서 초안 만들기" not in page
    response = client.post("/insights/gaps/draft",
                           data={"csrf_token": form_token(page), "suggestion_id": "x"})
    assert response.status_code == 403
