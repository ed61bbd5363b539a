"""The editor area in a real browser: edit → preview → publish → the agent's next suggestion.

This module runs its own server over a writable copy of the shipped KB (indexed with vectors
from the shared test cache) and its own database, so publishing never touches kb/articles or
the package's read-only index. Pages come from `open_page`, which signs in a role in a fresh
browser context and fails the test on any dialog other than the publish confirmation, on
script errors and CSP violations, and on HTTP errors the test did not announce.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import pytest

from browser.browser_support import VIEWPORT, LiveServer, log_in, screenshot, serve
from suggester.search.index import Indexer

from conftest import SHIPPED_KB, make_settings

pytestmark = pytest.mark.browser

PUBLISH_CONFIRM = "이 내용으로 게시할까요? 다음 추천부터 바로 반영됩니다."
FEE_QUESTION = "판매 수수료가 얼마예요? 몇 퍼센트 떼 가나요?"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
XSS_ID = "gift-wrap-check"
XSS_BODY = f"""
## 요약
선물 포장 서비스는 주문서에서 신청할 수 있고 이용료는 2,000원이에요. {SCRIPT}

## 안내
- 선물 포장 이용료는 상품 1개당 2,000원이에요. {IMG}
- 포장 요청 문구 예시: {SCRIPT} {IMG}

## 응대 예시
{{고객명}}님, 선물 포장은 주문서에서 신청하실 수 있고 이용료는 2,000원이에요.

## 예상 문의
### Q. 선물 포장 비용은 얼마예요?
상품 1개당 2,000원이에요.

### Q. 선물 포장은 어디서 신청해요?
주문서의 선물 포장 항목에서 신청해요.

## 내부 메모
- 점검용 문서: {IMG}
"""


@dataclass
class Watch:
    """What happened in this test's pages; `refusals` are the HTTP errors the test expects."""

    dialogs: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refusals: set[tuple[int, str]] = field(default_factory=set)


@pytest.fixture(scope="module")
def live_server(browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """This module's app: a writable KB copy and index, its own database (overrides conftest's)."""
    from web import create_app  # `browser` first: without chromium, skip before indexing

    root = tmp_path_factory.mktemp("editor-flow")
    shutil.copytree(SHIPPED_KB, root / "kb")
    settings = replace(make_settings(root / "data", root / "kb"), database=root / "app.sqlite3")
    Indexer(settings).sync()
    app = create_app({"TESTING": True}, settings=settings)
    app.extensions["suggester.service"].suggest("판매 수수료 얼마예요?", log=False)  # load models
    with serve(app) as server:
        yield server


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def open_page(browser, live_server: LiveServer, watch: Watch) -> Iterator[Callable[..., object]]:
    """`open_page(role)`: a new browser context's page, signed in as `role` (None: anonymous)."""
    contexts = []

    def on_dialog(dialog) -> None:
        if dialog.type == "confirm" and dialog.message == PUBLISH_CONFIRM:
            watch.confirmed.append(dialog.message)
            dialog.accept()
        else:
            watch.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

    def on_response(response) -> None:
        path = urlsplit(response.url).path
        if response.status >= 400 and path != "/favicon.ico" \
                and (response.status, path) not in watch.refusals:
            watch.errors.append(f"{response.status} {response.url}")

    def on_console(message) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            watch.errors.append(message.text)

    def open_page(role: str | None):
        context = browser.new_context(viewport=VIEWPORT, locale="ko-KR",
                                      base_url=live_server.url)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: watch.errors.append(str(error)))
        page.on("console", on_console)
        page.on("response", on_response)
        if role:
            log_in(page, live_server, role=role)
            assert page.locator(".who").inner_text().endswith(
                {"agent": "상담원", "editor": "편집자"}[role])
        return page

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()
    assert not watch.dialogs, f"a dialog opened (script ran?): {watch.dialogs}"
    assert not watch.errors, f"errors in the page: {watch.errors}"


def ask(page, inquiry: str, *, audience: str = "") -> None:
    """Ask the console (already open) and wait for this inquiry's result."""
    previous = page.get_attribute("#result", "data-suggestion-id")
    page.fill("#inquiry", inquiry)
    if audience:
        page.check(f"input[name=audience][value={audience}]")
    page.click("#submit")
    selector = "#result[data-suggestion-id]"
    if previous:
        selector += f":not([data-suggestion-id='{previous}'])"
    page.wait_for_selector(selector, timeout=60_000)


def open_citation(page, title: str) -> str:
    """Expand the first citation chip of the article titled `title`; return its passage."""
    chip = page.locator("#citation-chips .citation-chip", has_text=title).first
    chip.click()
    # A passage outside the suggestion's own list is fetched with its article.
    passage = page.locator(".citation-detail .passage")
    passage.locator(".article-html, p.pre").first.wait_for()
    return passage.inner_text()


def test_editor_publishes_a_fee_change_and_the_agent_sees_it(open_page, live_server, watch):
    # The agent's console is open all day: it answers with 5% before the change.
    agent = open_page("agent")
    ask(agent, FEE_QUESTION, audience="seller")
    assert "5%" in agent.input_value("#draft-text")
    assert "5%" in open_citation(agent, "판매 수수료 안내")
    agent.click(".citation-detail button:has-text('문서 전체 보기')")
    agent.wait_for_selector("#article-panel-meta:has-text('v2')")
    agent.keyboard.press("Escape")

    # The editor finds the article through the list's search and opens it.
    editor = open_page("editor")
    editor.click("nav a:has-text('문서 관리')")
    editor.fill("input[name=q]", "수수료")
    editor.click("form.filters button[type=submit]")
    assert editor.locator("table.articles tbody tr").count() >= 1
    editor.click("table.articles a:has-text('판매 수수료 안내')")
    editor.wait_for_url("**/editor/selling-fees/edit")
    assert "version: 2" in editor.input_value("#source")
    assert "상품가의 5%예요" in editor.inner_text("#preview")

    # 5% → 7% everywhere agents could quote it; the preview follows as the editor types.
    source = editor.input_value("#source")
    changed = source.replace("5%", "7%")
    assert changed.count("7%") >= 8 and "5%" not in changed
    editor.fill("#source", changed)
    editor.wait_for_selector("#preview li:has-text('상품가의 7%예요')")
    assert "5%" not in editor.inner_text("#preview")
    assert editor.locator("#findings .finding-error").count() == 0
    # Beside the findings: the published lines of other articles that still say 5%.
    editor.wait_for_selector("#conflicts .conflict-contradiction")
    disagreeing = editor.locator("#conflicts .conflict-contradiction")
    first = disagreeing.first.inner_text()
    assert "값이 다름" in first and "7%" in first and "5%" in first
    assert re.search(r"(policy|faq|exception)/[a-z-]+\.md:\d+", first)
    assert "selling-fees.md" not in first

    # 영향 미리보기: the drafts that would change, before and after, with a progress bar.
    editor.click("#impact-button")
    editor.wait_for_selector("#impact-summary:has-text('건이 바뀝니다')", timeout=120_000)
    assert editor.inner_text("#impact-count") == "완료"
    changed = editor.locator("#impact-changes .impact-change", has_text="7%")
    assert changed.count() >= 1
    before, after = changed.first.locator("td").nth(1), changed.first.locator("td").nth(2)
    assert "5%" in before.inner_text() and "7%" in after.inner_text()
    assert editor.locator("#impact-figures td", has_text="retrieval.served.mrr").count() == 1
    screenshot(editor, "editor-impact")

    with editor.expect_navigation():
        editor.click("button[value=publish]")
    assert watch.confirmed == [PUBLISH_CONFIRM]
    assert editor.url.endswith("/editor/selling-fees/edit")
    editor.wait_for_selector(".notice-ok:has-text('게시했습니다 (버전 3)')")
    assert "version: 3" in editor.input_value("#source")
    assert "상품가의 7%예요" in editor.inner_text("#preview")
    screenshot(editor, "editor-edit")

    # History keeps the shipped file and the new version, with a diff between them.
    editor.click(".editor-links a:has-text('이력')")
    rows = editor.locator("table.history tbody tr")
    assert rows.count() == 2
    assert "editor-browser" in rows.nth(0).inner_text() and "kb-file" in rows.nth(1).inner_text()
    screenshot(editor, "editor-history")
    editor.click("table.history a:has-text('직전과 비교')")
    editor.wait_for_url(re.compile(r"/editor/selling-fees/diff\?a=\d+&b=\d+"))
    changed_row = editor.locator("table.diff tr", has=editor.locator(".diff_chg", has_text="7"))
    assert changed_row.filter(has_text="5%").filter(has_text="7%").count() >= 1
    screenshot(editor, "editor-diff")

    # The agent's next suggestion, on the same open page, cites version 3 with 7%.
    ask(agent, FEE_QUESTION, audience="seller")
    draft = agent.input_value("#draft-text")
    assert "7%" in draft and "5%" not in draft
    chip = agent.locator("#citation-chips .citation-chip", has_text="판매 수수료 안내").first
    assert "v3" in chip.inner_text()
    passage = open_citation(agent, "판매 수수료 안내")
    assert "7%" in passage and "5%" not in passage
    agent.click(".citation-detail button:has-text('문서 전체 보기')")
    agent.wait_for_selector("#article-panel-meta:has-text('v3')")
    panel = agent.inner_text("#article-panel-body")
    assert "상품가의 7%예요" in panel and "상품가의 5%" not in panel


def test_agents_and_visitors_cannot_reach_the_editor(open_page, live_server, watch):
    watch.refusals |= {(403, "/editor/"), (403, "/editor/selling-fees/edit"),
                       (403, "/editor/selling-fees/history")}
    agent = open_page("agent")
    for path in ("/editor/", "/editor/selling-fees/edit", "/editor/selling-fees/history"):
        response = agent.goto(path)
        assert response.status == 403
        assert agent.inner_text("h1") == "권한 없음"
        assert "편집자 권한" in agent.inner_text("main")
        assert agent.locator("#edit-form, textarea, table.articles, table.history").count() == 0

    visitor = open_page(None)
    visitor.goto("/editor/")
    assert urlsplit(visitor.url).path == "/login"
    assert visitor.locator("input[name=password]").is_visible()
    assert visitor.input_value("input[name=next]") == "/editor/"
    # Signing in as an editor from there lands on the page that was asked for.
    username, password = "editor-next", "editor-password-2"
    live_server.store.add_user(username, password, role="editor")
    visitor.fill("input[name=username]", username)
    visitor.fill("input[name=password]", password)
    with visitor.expect_navigation():
        visitor.click("button[type=submit]")
    assert urlsplit(visitor.url).path == "/editor/"
    assert visitor.inner_text("h1") == "문서 관리"


def test_markup_in_an_article_renders_inert(open_page, watch):
    editor = open_page("editor")
    editor.goto("/editor/new")
    editor.select_option("select[name=type]", "faq")
    editor.fill("input[name=id]", XSS_ID)
    editor.fill("input[name=title]", "선물 포장 안내")
    editor.select_option("select[name=category]", "이용방법")
    editor.select_option("select[name=audience]", "buyer")
    editor.click("form.new-form button[type=submit]")
    editor.wait_for_url(f"**/editor/{XSS_ID}/edit")
    assert "status: draft" in editor.input_value("#source")

    skeleton = editor.input_value("#source")
    front_matter = skeleton[: skeleton.index("---", 3) + 3]
    editor.fill("#source", front_matter + "\n" + XSS_BODY)
    preview = editor.locator("#preview")
    editor.wait_for_selector("#preview li:has-text('선물 포장 이용료는')")
    assert SCRIPT in preview.inner_text() and IMG in preview.inner_text()
    assert preview.locator("script, img").count() == 0
    assert editor.locator("#findings .finding-error").count() == 0

    with editor.expect_navigation():
        editor.click("button[value=publish]")
    editor.wait_for_selector(".notice-ok:has-text('게시했습니다')")
    assert editor.locator("#preview script, #preview img").count() == 0
    assert IMG in editor.inner_text("#preview")

    # The agent gets it cited, opens the passage and the whole article beside the draft.
    agent = open_page("agent")
    ask(agent, "선물 포장 비용은 얼마예요?", audience="buyer")
    passage = open_citation(agent, "선물 포장 안내")
    assert "2,000원" in passage
    agent.click(".citation-detail button:has-text('문서 전체 보기')")
    agent.wait_for_selector("#article-panel-body .article-section")
    body = agent.locator("#article-panel-body")
    assert SCRIPT in body.inner_text() and IMG in body.inner_text()
    assert body.locator("script, img").count() == 0
    screenshot(agent, "console-article-markup")

    agent.goto(f"/articles/{XSS_ID}")
    article = agent.locator("article.article-page")
    assert SCRIPT in article.inner_text() and IMG in article.inner_text()
    assert article.locator("script, img").count() == 0
    agent.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert watch.dialogs == []


def test_preview_recovers_after_a_failed_refresh(open_page):
    editor = open_page("editor")
    editor.goto("/editor/settlement-schedule/edit")
    source = editor.input_value("#source")
    # The server is briefly unreachable: the preview greys out instead of showing stale text.
    editor.route("**/editor/preview", lambda route: route.abort())
    editor.fill("#source", source.replace("18:00", "17:30"))
    editor.wait_for_selector("#preview.stale")
    editor.unroute("**/editor/preview")
    editor.fill("#source", source.replace("18:00", "17:45"))
    editor.wait_for_selector("#preview li:has-text('17:45')")
    assert "stale" not in editor.get_attribute("#preview", "class")


def test_editor_schedules_a_fee_change_and_the_agent_sees_it_switch_over(open_page):
    """A successor published now for next week: today's drafts keep the fee in force with an
    internal note; the console's 기준일 set to next week gets the new fee and says so."""
    import datetime as dt

    day = dt.date.today() + dt.timedelta(days=7)
    editor = open_page("editor")
    editor.goto("/editor/new")
    editor.select_option("select[name=type]", "policy")
    editor.fill("input[name=id]", "selling-fees-next")
    editor.fill("input[name=title]", "판매 수수료 안내 (변경)")
    editor.select_option("select[name=category]", "정산·수수료")
    editor.select_option("select[name=audience]", "seller")
    editor.click("form.new-form button[type=submit]")
    editor.wait_for_url("**/editor/selling-fees-next/edit")
    skeleton = editor.input_value("#source")
    front_matter = skeleton[: skeleton.index("---", 3)]
    front_matter = re.sub(r"effective_from: .*", f"effective_from: {day.isoformat()}",
                          front_matter) + "supersedes: selling-fees\n---\n"
    shipped = (SHIPPED_KB / "policy" / "selling-fees.md").read_text(encoding="utf-8")
    body = shipped[shipped.index("---", 3) + 3:]
    editor.fill("#source", front_matter + re.sub(r"\d+%", "9%", body))
    editor.wait_for_selector("#preview li:has-text('상품가의 9%예요')")
    assert editor.locator("#findings .finding-error").count() == 0
    with editor.expect_navigation():
        editor.click("button[value=publish]")
    editor.wait_for_selector(".notice-ok:has-text('게시했습니다')")
    editor.goto("/editor/")
    switch = editor.inner_text("#switchovers")
    assert f"{day.month}월 {day.day}일" in switch and "판매 수수료 안내 (변경)" in switch

    agent = open_page("agent")
    ask(agent, FEE_QUESTION, audience="seller")
    assert "9%" not in agent.input_value("#draft-text")
    note = agent.inner_text("#internal .scheduled-change")
    assert note.startswith(f"정책 변경 예정: {day.month}월 {day.day}일부터")
    agent.fill("#as-of", day.isoformat())
    ask(agent, FEE_QUESTION, audience="seller")
    draft = agent.input_value("#draft-text")
    assert f"주문하신 {day.month}월 {day.day}일 기준 수수료는 9%예요." in draft.split("\n\n")[0]
    assert "5%" not in draft and "7%" not in draft
    screenshot(agent, "console-as-of")
