"""The editor pages end to end: edit, publish, draft, archive, restore, diff, helper, safety.

One writable copy of the shipped KB and its index is built per module (vectors come from the
shared test cache); each test changes its own article, so they do not depend on each other.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
from dataclasses import replace

import pytest

from suggester import publish as publish_module
from suggester.knowledge.articles import read_article
from suggester.search.index import Indexer
from web import create_app

from conftest import SHIPPED_KB, add_users, console_csrf, form_token, make_settings, sign_in

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def editable_settings(tmp_path_factory):
    root = tmp_path_factory.mktemp("editable")
    shutil.copytree(SHIPPED_KB, root / "kb")
    settings = make_settings(root / "data", root / "kb")
    Indexer(settings).sync()
    return settings


@pytest.fixture
def editor_app(editable_settings, tmp_path):
    app = create_app({"TESTING": True},
                     settings=replace(editable_settings, database=tmp_path / "app.sqlite3"))
    add_users(app)
    return app


@pytest.fixture
def editor(editor_app):
    client = editor_app.test_client()
    sign_in(client, "editor")
    return client


def kb_path(app, article_id: str, folder: str):
    return app.extensions["suggester.settings"].kb_dir / folder / f"{article_id}.md"


def open_editor(client, article_id: str) -> dict[str, str]:
    """What the edit form holds: source, CSRF token and the base fingerprint."""
    page = client.get(f"/editor/{article_id}/edit").get_data(as_text=True)
    base = re.search(r'name="base" value="([^"]*)"', page)
    assert base
    return {"token": form_token(page), "base": base.group(1), "page": page}


def save(client, article_id: str, source: str, action: str = "publish", **extra):
    form = open_editor(client, article_id)
    data = {"csrf_token": form["token"], "base": form["base"], "source": source,
            "action": action, **extra}
    return client.post(f"/editor/{article_id}/save", data=data)


def suggest(client, inquiry: str) -> dict:
    """Ask as the console does: the signed-in session, with its CSRF token in a header."""
    response = client.post("/api/suggest", json={"inquiry": inquiry},
                           headers={"X-CSRF-Token": console_csrf(client)})
    assert response.status_code == 200
    return response.get_json()


def test_published_change_is_cited_by_the_next_suggestion(editor, editor_app):
    path = kb_path(editor_app, "settlement-schedule", "policy")
    inquiry = "판매대금 정산 언제 들어와요?"
    assert "18:00" in suggest(editor, inquiry)["draft"]["text"]
    response = save(editor, "settlement-schedule",
                    path.read_text(encoding="utf-8").replace("18:00", "17:45"))
    assert response.status_code == 302
    assert read_article(path).version == 4
    body = suggest(editor, inquiry)
    assert "17:45" in body["draft"]["text"] and "18:00" not in body["draft"]["text"]
    cited = [p for p in body["passages"] if p["article_id"] == "settlement-schedule"]
    assert cited and {p["version"] for p in cited} == {4}
    history = editor_app.extensions["suggester.store"].article_history("settlement-schedule")
    assert [(h.version, h.action, h.author) for h in history] == [
        (3, "publish", "kb-file"), (4, "publish", "editor")]
    page = editor.get("/editor/settlement-schedule/edit").get_data(as_text=True)
    assert "게시했습니다 (버전 4)" in page


def test_a_draft_is_not_served(editor, editor_app):
    path = kb_path(editor_app, "refund-timing", "policy")
    before = path.read_text(encoding="utf-8")
    response = save(editor, "refund-timing", before.replace("3~5영업일", "9~12영업일"),
                    action="draft")
    assert response.status_code == 302
    assert path.read_text(encoding="utf-8") == before
    body = suggest(editor, "카드로 결제했는데 환불 며칠 걸려요?")
    assert "9~12영업일" not in str(body)
    page = open_editor(editor, "refund-timing")["page"]
    assert "임시 저장본" in page and "9~12영업일" in page


def test_archive_takes_the_article_out_of_retrieval_but_keeps_the_file(editor, editor_app):
    path = kb_path(editor_app, "phishing-links", "faq")
    retriever = editor_app.extensions["suggester.service"].retriever
    query = "문자로 받은 링크를 눌렀는데 피싱 같아요"
    assert "phishing-links" in retriever.search(query, k=10).article_ids()
    form = open_editor(editor, "phishing-links")
    response = editor.post("/editor/phishing-links/archive",
                           data={"csrf_token": form["token"], "base": form["base"]})
    assert response.status_code == 302
    assert path.exists() and read_article(path).status == "archived"
    assert "phishing-links" not in retriever.search(query, k=10).article_ids()


def test_restore_publishes_an_older_version_again(editor, editor_app):
    path = kb_path(editor_app, "coupon-policy", "policy")
    original = path.read_text(encoding="utf-8")
    save(editor, "coupon-policy", original.replace("상품 할인 쿠폰 1장", "상품 할인 쿠폰 2장"))
    store = editor_app.extensions["suggester.store"]
    baseline = store.article_history("coupon-policy")[0]
    page = editor.get("/editor/coupon-policy/history").get_data(as_text=True)
    assert "이 버전으로 복원" in page and "kb-file" in page
    response = editor.post("/editor/coupon-policy/restore",
                           data={"csrf_token": form_token(page), "history_id": baseline.id})
    assert response.status_code == 302
    restored = read_article(path)
    assert restored.version == 4 and "상품 할인 쿠폰 1장" in restored.source
    assert [h.action for h in store.article_history("coupon-policy")] == [
        "publish", "publish", "restore"]
    assert [h.version for h in store.article_history("coupon-policy")] == [2, 3, 4]


def test_diff_view_escapes_html(editor, editor_app):
    path = kb_path(editor_app, "payment-receipt", "faq")
    source = path.read_text(encoding="utf-8").replace("## 응대 예시", f"{SCRIPT}\n\n## 응대 예시")
    assert save(editor, "payment-receipt", source).status_code == 302
    old, new = editor_app.extensions["suggester.store"].article_history("payment-receipt")
    response = editor.get(f"/editor/payment-receipt/diff?a={old.id}&b={new.id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert SCRIPT not in page


def test_script_in_an_article_renders_inert(editor, editor_app):
    path = kb_path(editor_app, "price-offer", "faq")
    source = path.read_text(encoding="utf-8").replace("## 응대 예시", f"{SCRIPT}\n\n## 응대 예시")
    form = open_editor(editor, "price-offer")
    preview = editor.post("/editor/preview", json={"source": source, "article_id": "price-offer"},
                          headers={"X-CSRF-Token": form["token"]})
    assert preview.status_code == 200
    assert SCRIPT not in preview.get_json()["html"]
    assert "&lt;script&gt;" in preview.get_json()["html"]
    assert save(editor, "price-offer", source).status_code == 302
    article = editor.get("/api/articles/price-offer").get_json()
    html = "".join(section["html"] for section in article["sections"])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and SCRIPT not in html
    assert SCRIPT not in editor.get("/editor/price-offer/edit").get_data(as_text=True)


def test_lint_errors_block_publishing_with_path_and_line(editor, editor_app):
    path = kb_path(editor_app, "how-to-list-item", "faq")
    before = path.read_text(encoding="utf-8")
    broken = before.replace("category: 이용방법", "category: 아무거나")
    response = save(editor, "how-to-list-item", broken)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "faq/how-to-list-item.md:6" in page and "아무거나" in page
    assert path.read_text(encoding="utf-8") == before
    assert editor_app.extensions["suggester.store"].article_history("how-to-list-item") == []


def test_failed_write_keeps_the_old_file(editor, editor_app, monkeypatch):
    path = kb_path(editor_app, "seller-unresponsive", "faq")
    before = path.read_text(encoding="utf-8")

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(publish_module.os, "replace", disk_full)
    response = save(editor, "seller-unresponsive", before.replace("## 요약", "## 요약\n추가 문장."))
    assert response.status_code == 503
    assert "디스크 공간이 부족" in response.get_data(as_text=True)
    assert path.read_text(encoding="utf-8") == before
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_stale_edit_is_refused_with_409(editor, editor_app):
    path = kb_path(editor_app, "tracking-not-updating", "faq")
    stale = open_editor(editor, "tracking-not-updating")
    assert save(editor, "tracking-not-updating", path.read_text(encoding="utf-8")) \
        .status_code == 302
    response = editor.post("/editor/tracking-not-updating/save", data={
        "csrf_token": stale["token"], "base": stale["base"], "action": "publish",
        "source": path.read_text(encoding="utf-8")})
    assert response.status_code == 409
    assert "다른 사람이 먼저" in response.get_data(as_text=True)


def test_new_draft_article_with_the_similar_answers_helper(editor, editor_app):
    page = editor.get("/editor/new").get_data(as_text=True)
    response = editor.post("/editor/new", data={
        "csrf_token": form_token(page), "type": "faq", "id": "instant-settlement",
        "title": "빠른 정산 서비스", "category": "정산·수수료", "audience": "seller",
        "owner": "payments-team"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/editor/instant-settlement/edit"
    path = kb_path(editor_app, "instant-settlement", "faq")
    assert read_article(path).status == "draft"
    source = path.read_text(encoding="utf-8").replace(
        "## 요약\n", "## 요약\n빠른 정산을 신청하면 구매확정 당일에 정산돼요.\n").replace(
        "### Q. \n\n### Q. \n",
        "### Q. 판매대금은 언제 입금되나요?\n당일 입금돼요.\n\n"
        "### Q. 정산금에서 수수료는 얼마나 빠지나요?\n1% 추가 수수료가 있어요.\n")
    assert save(editor, "instant-settlement", source, action="draft").status_code == 302
    edit_page = editor.get("/editor/instant-settlement/edit").get_data(as_text=True)
    helper = edit_page.split("새 기능 도우미", 1)[1]
    assert "Q. 판매대금은 언제 입금되나요?" in helper
    assert "/editor/settlement-schedule/edit" in helper  # the published answer to compare
    assert "instant-settlement" not in str(suggest(editor, "판매대금 언제 입금되나요?"))


@pytest.mark.parametrize(("fields", "words"), [
    ({"id": "Bad ID"}, "ID는 영문 소문자"),
    ({"id": "refund-timing"}, "이미 사용 중"),
    ({"category": "없는분류"}, "분류(category)"),
])
def test_new_article_form_validates(editor, fields, words):
    page = editor.get("/editor/new").get_data(as_text=True)
    data = {"csrf_token": form_token(page), "type": "faq", "id": "brand-new", "title": "새 글",
            "category": "배송", "audience": "all", "owner": "cx-policy", **fields}
    response = editor.post("/editor/new", data=data)
    assert response.status_code == 422
    assert words in response.get_data(as_text=True)


def test_list_filters_and_search(editor):
    policies = editor.get("/editor/?type=policy").get_data(as_text=True)
    assert "/editor/return-policy/edit" in policies and "/editor/price-offer/edit" not in policies
    found = editor.get("/editor/?q=정산").get_data(as_text=True)
    assert "/editor/settlement-schedule/edit" in found and "/editor/coupon-policy/edit" not in found
    sellers = editor.get("/editor/?audience=seller&category=정산·수수료").get_data(as_text=True)
    assert "/editor/settlement-schedule/edit" in sellers
    assert "/editor/refund-timing/edit" not in sellers


def test_edit_page_shows_preview_and_findings(editor):
    page = editor.get("/editor/return-policy/edit").get_data(as_text=True)
    assert 'id="preview"' in page and "<h2>요약</h2>" in page
    assert "게시 전 검사" in page
    assert "editor.js" in page and "<script>" not in page  # no inline script
    assert editor.get("/editor/no-such-article/edit").status_code == 404


def test_preview_reports_lint_findings(editor):
    token = open_editor(editor, "return-policy")["token"]
    response = editor.post("/editor/preview", headers={"X-CSRF-Token": token},
                           json={"source": "---\nid: x\n", "article_id": "return-policy"})
    findings = response.get_json()["findings"]
    assert findings and findings[0]["severity"] == "error" and findings[0]["line"] == 1


def test_preview_and_edit_page_list_lines_of_other_articles_that_disagree(editor, editor_app):
    source = kb_path(editor_app, "selling-fees", "policy").read_text(encoding="utf-8")
    changed = source.replace("판매 수수료는 구매자가 결제한 금액 중 상품가의 5%예요.",
                             "판매 수수료는 구매자가 결제한 금액 중 상품가의 7%예요.")
    token = open_editor(editor, "selling-fees")["token"]
    response = editor.post("/editor/preview", headers={"X-CSRF-Token": token},
                           json={"source": changed, "article_id": "selling-fees"})
    conflicts = response.get_json()["conflicts"]
    disagreeing = [c for c in conflicts if c["kind"] == "contradiction"]
    assert disagreeing and all("7%" in c["text"] for c in disagreeing)
    assert all(re.fullmatch(r"(policy|faq|exception)/[a-z0-9-]+\.md:\d+", c["where"])
               and "selling-fees" not in c["where"] for c in disagreeing)
    # Saving shows the same list on the edit page, beside the lint findings.
    assert save(editor, "selling-fees", changed, action="draft").status_code == 302
    page = editor.get("/editor/selling-fees/edit").get_data(as_text=True)
    assert "다른 문서와 비교" in page and "값이 다름" in page and "7% ↔ 5%" in page


def test_impact_preview_lists_the_drafts_a_fee_change_alters_and_changes_nothing(editor,
                                                                                 editor_app):
    path = kb_path(editor_app, "selling-fees", "policy")
    served = path.read_text(encoding="utf-8")
    token = open_editor(editor, "selling-fees")["token"]
    response = editor.post("/editor/selling-fees/impact", headers={"X-CSRF-Token": token},
                           json={"source": served.replace("5%", "7%")})
    assert response.status_code == 200
    events = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    progress, [last] = events[:-1], events[-1:]
    assert progress and progress[-1]["done"] == progress[-1]["total"] == last["report"]["inquiries"]
    report = last["report"]
    fee_changes = [c for c in report["changes"] if "답변의 수치" in c["changed"]]
    assert fee_changes
    assert any("7%" in c["after"]["facts"] and "5%" in c["before"]["facts"] for c in fee_changes)
    assert all(c["before"]["facts"] != c["after"]["facts"] for c in fee_changes)
    assert set(report["figures"]) >= {"retrieval.served.mrr", "no_answer.recall"}
    # Nothing was published: the file and the served answer are as before.
    assert path.read_text(encoding="utf-8") == served
    assert "5%" in suggest(editor, "판매 수수료 몇 퍼센트예요?")["draft"]["text"]


def test_a_long_korean_article_fits_in_the_form(editor, editor_app):
    # Form-encoded, each Korean character takes 9 bytes: far past the API's 64 KB limit.
    path = kb_path(editor_app, "returned-item-damaged", "exception")
    # ~55 KB in paragraphs: under MAX_FILE_BYTES, and no block over MAX_BLOCK_CHARS.
    long_text = "\n\n".join(["반품된 상품이 손상된 경우의 안내 문장이에요. " * 100] * 8)
    source = path.read_text(encoding="utf-8").replace("## 요약\n", f"## 요약\n{long_text}\n", 1)
    response = save(editor, "returned-item-damaged", source, action="draft")
    assert response.status_code == 302
    pending = editor_app.extensions["suggester.store"].article_history("returned-item-damaged")
    assert long_text.strip() in pending[-1].source


# -- found by fuzzing (tests/knowledge/test_fuzz_articles.py) ------------------------------------


@pytest.mark.parametrize("route", ["/editor/preview", "/editor/return-policy/impact"])
@pytest.mark.parametrize("body", [b'{"source": "---\\nid: x\\n---\\n\\ud800"}',
                                  b'{"source": ' + b"[" * 5000 + b"]" * 5000 + b"}"])
def test_preview_refuses_sources_no_utf8_file_can_hold(editor, body, route):
    token = open_editor(editor, "return-policy")["token"]
    response = editor.post(route, data=body, content_type="application/json",
                           headers={"X-CSRF-Token": token})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_source"


def test_preview_of_an_oversized_paragraph_is_a_message_not_markup(editor):
    token = open_editor(editor, "return-policy")["token"]
    source = "---\nid: return-policy\n---\n## 요약\n" + "[" * 6000
    response = editor.post("/editor/preview", json={"source": source},
                           headers={"X-CSRF-Token": token})
    body = response.get_json()
    assert response.status_code == 200 and "without a blank line" in body["html"]
    assert any("without a blank line" in f["message"] for f in body["findings"])


def test_overlong_article_id_is_not_found(editor):
    assert editor.get("/editor/" + "a" * 300 + "/edit").status_code == 404


@pytest.mark.parametrize("article_id", ["\\udfff", "../etc/passwd", "x" * 300])
def test_preview_refuses_an_article_id_that_is_not_an_id(editor, article_id):
    token = open_editor(editor, "return-policy")["token"]
    body = b'{"source": "---\\nid: x\\n---\\n", "article_id": "' + article_id.encode() + b'"}'
    response = editor.post("/editor/preview", data=body, content_type="application/json",
                           headers={"X-CSRF-Token": token})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_article_id"
