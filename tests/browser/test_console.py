"""An agent's day in the console, in a real browser: suggest, correct, copy, record."""

from __future__ import annotations

import re

import pytest

from browser.browser_support import AGENT, LiveServer, log_in, screenshot

pytestmark = pytest.mark.browser

DELAYED_ORDER = "주문한 지 일주일이 넘었는데 아직도 발송이 안 됐어요. 언제 보내 주시나요?"
OFF_PLATFORM = "판매자가 카톡으로 계좌이체 하면 5천원 깎아준대요. 그렇게 해도 되나요?"
OUT_OF_SCOPE = "오늘 서울 날씨 어때요? 우산 챙겨야 하나요?"
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
RED = "rgb(196, 22, 28)"  # --danger in app.css


def ask(page, inquiry: str, *, audience: str = "", name: str = "") -> str:
    """Type an inquiry, submit with Ctrl+Enter, wait for the result; return the suggestion id."""
    page.goto("/")
    page.fill("#inquiry", inquiry)
    if audience:
        page.check(f"input[name=audience][value={audience}]")
    if name:
        page.fill("#customer-name", name)
    page.focus("#inquiry")
    page.keyboard.press("Control+Enter")
    # A selector, not wait_for_function: the strict CSP forbids the eval that one needs.
    page.wait_for_selector("#result[data-suggestion-id]", timeout=60_000)
    return page.get_attribute("#result", "data-suggestion-id")


def test_agent_gets_corrects_copies_and_records(page, live_server: LiveServer):
    log_in(page, live_server)
    suggestion_id = ask(page, DELAYED_ORDER, audience="buyer", name="김하늘")

    chips = page.locator("#type-chips .type-chip")
    assert chips.count() >= 1
    draft = page.input_value("#draft-text")
    assert draft.startswith("김하늘님") and "[1]" not in draft
    assert page.locator("#citation-chips .citation-chip").count() >= 1
    assert page.locator("#cited-text .ref").count() >= 1
    assert page.inner_text("#audience").startswith("구매자")
    assert "처리 시간" in page.inner_text("#timings")

    # A citation chip opens its passage, and the article opens beside the draft.
    page.click("#citation-chips .citation-chip >> nth=0")
    assert page.locator(".citation-detail .passage").inner_text().strip()
    page.click(".citation-detail button:has-text('문서 전체 보기')")
    page.wait_for_selector("#article-panel .article-section.focused")
    page.keyboard.press("Escape")
    assert page.locator("#article-panel").is_hidden()

    # The agent corrects the type: the correction is stored at once.
    page.select_option("#type-add", "주문취소")
    page.click("#types-save")
    page.wait_for_selector("#types-status:has-text('저장했습니다')")
    corrected = live_server.store.feedback_for(suggestion_id)[-1].corrected_types
    assert "주문취소" in corrected

    # Ctrl+Shift+C copies the customer-ready text, without citation marks.
    page.click("#draft-text")
    page.keyboard.press("Control+Shift+C")
    page.wait_for_selector("#toast:has-text('복사')")
    assert page.evaluate("navigator.clipboard.readText()") == draft

    # 수정 후 사용 records the edited text.
    edited = draft + "\n\n오늘 중으로 판매자에게 다시 확인해 드릴게요."
    page.fill("#draft-text", edited)
    page.click("button[data-verdict=edited]")
    page.wait_for_selector("#verdict-status:has-text('수정 후 사용')")
    last = live_server.store.feedback_for(suggestion_id)[-1]
    assert last.verdict == "edited" and last.final_text == edited
    assert last.author == AGENT[0]  # the console's session signs what it sends
    assert any("주문취소" in c.corrected_types for c in live_server.store.corrections())
    screenshot(page, "console-result")


def test_the_agent_drafts_from_another_candidate_article(page, live_server: LiveServer):
    log_in(page, live_server)
    first_id = ask(page, DELAYED_ORDER, audience="buyer")
    first_article = page.get_attribute("#citation-chips .citation-chip >> nth=0", "data-article")
    alternative = page.locator("#alternatives .alternative >> nth=0")
    title = alternative.locator("button.link").inner_text()
    assert page.locator("#chosen-note").is_hidden()
    alternative.locator("button:has-text('이 문서로 초안 작성')").click()
    page.wait_for_selector(f"#result:not([data-suggestion-id='{first_id}'])")
    # The new draft follows the chosen article, and says the agent chose it.
    assert page.locator("#chosen-note").is_visible()
    chip = page.locator("#citation-chips .citation-chip >> nth=0")
    assert title in chip.inner_text()
    assert chip.get_attribute("data-article") != first_article
    screenshot(page, "console-alternative")


def test_sentences_over_the_budget_are_offered_and_added_with_one_click(page, live_server):
    log_in(page, live_server)
    ask(page, OFF_PLATFORM, audience="buyer")
    panel = page.locator("#optional-sentences")
    assert panel.is_visible() and "함께 안내할 만한 내용" in panel.inner_text()
    first = panel.locator(".optional-sentence >> nth=0")
    sentence = first.locator("p").inner_text()
    before = page.input_value("#draft-text")
    assert sentence and sentence not in before  # never a repeat of the draft
    assert re.match(r"\[\d+\] ", first.locator("button.link").inner_text())  # its source
    first.locator("button:has-text('추가')").click()
    after = page.input_value("#draft-text")
    assert after.startswith(before.rstrip()) and after.endswith(sentence)
    assert first.locator("button:has-text('추가됨')").is_disabled()
    screenshot(page, "console-optional-sentences")


def test_off_platform_payment_raises_the_red_flag(page, live_server: LiveServer):
    log_in(page, live_server)
    ask(page, OFF_PLATFORM)
    flag = page.locator(".flag[data-flag=off_platform]")
    flag.wait_for()
    assert "flag-danger" in flag.get_attribute("class")
    assert flag.evaluate("node => getComputedStyle(node).borderTopColor") == RED
    assert "계좌이체" in page.locator(".evidence-quote mark").all_inner_texts()
    assert "안전거래팀" in flag.locator(".escalation").inner_text()
    # The rule's article opens with its internal sections marked as such.
    flag.locator("button:has-text('규칙 문서 보기')").click()
    focused = page.locator("#article-panel .article-section.focused")
    focused.wait_for()
    assert "internal" in focused.get_attribute("class")
    assert "내부 전용" in focused.locator(".internal-badge").inner_text()
    screenshot(page, "console-article-panel")
    page.keyboard.press("Escape")
    screenshot(page, "console-flag")


def test_out_of_scope_inquiry_warns_not_grounded(page, live_server: LiveServer):
    log_in(page, live_server)
    ask(page, OUT_OF_SCOPE)
    warning = page.locator("#not-grounded")
    assert warning.is_visible()
    assert "근거 문서 없음 — 확인 후 안내 / 에스컬레이션" in warning.inner_text()
    # The reason is told in Korean: the customer's words no published passage uses, then the
    # confidence that fell short.
    assert re.search(r"사유: '서울', '날씨', '우산'은 게시 문서 어디에도 없는 말이고, .*근거 "
                     r"신뢰도가 0\.\d{3}로 기준보다 낮습니다",
                     page.inner_text("#not-grounded-reason"))
    # The types shown are the nearest passages' guess, and say so.
    assert page.inner_text("#types-status") == "추정 — 근거 문서 없음"
    screenshot(page, "console-not-grounded")


def test_markup_in_an_inquiry_stays_text(page, live_server: LiveServer, problems):
    log_in(page, live_server)
    # The off-platform cue makes the console quote the inquiry back with its evidence marked.
    ask(page, XSS + " 계좌이체로 보내면 할인해 준대요")
    quote = page.locator(".evidence-quote")
    assert XSS in quote.inner_text()
    assert page.locator("#result img, #result script").count() == 0
    page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert problems.dialogs == []


def test_copy_falls_back_when_the_clipboard_api_is_missing(page, live_server: LiveServer):
    # Served over plain http on a LAN address, the page has no navigator.clipboard.
    page.add_init_script("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    log_in(page, live_server)
    ask(page, DELAYED_ORDER)
    page.click("#copy-draft")
    page.wait_for_selector("#toast:has-text('복사')")
    assert "복사하지 못했습니다" not in page.inner_text("#toast")
    reader = page.context.new_page()
    reader.goto("/")
    assert reader.evaluate("navigator.clipboard.readText()") == page.input_value("#draft-text")


def test_a_visitor_who_is_not_signed_in_gets_nothing_from_the_api(page, live_server):
    for path in ("/api/suggest", "/api/feedback"):
        response = page.request.post(f"{live_server.url}{path}", data={"inquiry": OFF_PLATFORM})
        assert response.status == 401 and response.json()["message_ko"]
    assert page.request.get(f"{live_server.url}/api/articles/off-platform-payment").status == 401
    assert page.request.get(f"{live_server.url}/api/health").status == 200
    page.goto("/")
    assert page.url.startswith(f"{live_server.url}/login")
