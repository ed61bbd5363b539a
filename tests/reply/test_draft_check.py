"""The LLM draft validator: hand-written good and bad drafts against numbered passages.

Pure functions: no model and no network. Each bad draft is refused with the reason an agent
would see; each good one passes.
"""

from __future__ import annotations

import pytest

from suggester.reply.draft_check import (
    Fact,
    ForbiddenText,
    check_draft,
    numeric_facts,
    split_sentences,
)

PASSAGES = [
    "반품이 승인되면 3영업일 안에 결제 수단으로 환불돼요. 카드사에 따라 3~5영업일이 더 걸릴 수 "
    "있어요.",
    "단순 변심 반품은 왕복 배송비 6,000원을 구매자가 부담해요. 판매 수수료는 판매 금액의 5%예요.",
    "구매 확정은 배송 완료 후 7일이 지나면 자동으로 돼요.",
]
MEMO = ("[내부] 환불 지연 민원이 반복되면 결제팀 슬랙 채널로 주문번호를 넘기고 "
        "보상 포인트 2,000점까지 재량으로 지급 가능")
INTERNAL = ForbiddenText([MEMO], PASSAGES)


def check(text: str, **kwargs):
    return check_draft(text, PASSAGES, internal=INTERNAL, **kwargs)


@pytest.mark.parametrize("text", [
    "문의 주셔서 감사해요. 반품이 승인되면 3영업일 안에 환불돼요[1]. 카드사에 따라 3~5영업일이 "
    "더 걸릴 수 있어요[1].",
    # Citation after the full stop, two citations at once, a list item.
    "반품 배송비는 6,000원이에요.[2] 구매 확정은 배송 완료 후 7일 뒤 자동으로 돼요.[3]\n\n"
    "- 환불은 승인 후 3영업일 안에 돼요[1][2]\n더 궁금하신 점은 말씀해 주세요.",
    # 6천 원 = 6,000원, 5프로 = 5%, 일주일 = 7일 is not claimed (1주 is its own unit).
    "왕복 배송비 6천 원은 구매자 부담이에요[2]. 판매 수수료는 5프로예요[1, 2].",
    # A sentence without numbers may go uncited (greetings, closings).
    "안녕하세요, 리클로짓 고객센터예요. 환불은 결제 수단으로 돼요[1].",
])
def test_good_drafts_pass(text):
    result = check(text)
    assert result.ok, result.detail
    assert result.reason == ""


@pytest.mark.parametrize(("text", "reason", "words"), [
    ("환불은 3영업일 안에 돼요[4].", "invalid_citation", "[4]"),
    ("환불은 3영업일 안에 돼요[0].", "invalid_citation", "[0]"),
    # An invented period: 2영업일 is not in [1].
    ("반품이 승인되면 2영업일 안에 환불돼요[1].", "unsupported_number", "2영업일"),
    # A period with the wrong unit: [1] says 영업일, not 일.
    ("반품이 승인되면 3일 안에 환불돼요[1].", "unsupported_number", "3일"),
    # An invented fee, and a true fee cited to the wrong passage.
    ("반품 배송비는 3,000원이에요[2].", "unsupported_number", "3000원"),
    ("판매 수수료는 5%예요[3].", "unsupported_number", "5%"),
    ("환불 수수료 1만 원이 있어요[1].", "unsupported_number", "10000원"),
    # A number with no citation in its sentence, even when the draft cites elsewhere.
    ("환불은 3영업일 안에 돼요. 결제 수단으로 돌려드려요[1].", "uncited_number", "3영업일"),
    ("환불은 이틀 안에 돼요[1].", "unsupported_number", "2일"),
    # The memo's words, though the draft cites correctly.
    ("환불이 늦어져 죄송해요[1]. 결제팀 슬랙 채널로 주문번호를 넘겨 드릴게요.",
     "internal_text", "슬랙"),
    ("반품이 승인되면 결제 수단으로 환불돼요.", "no_citation", "no sentence cites"),
    ("", "empty", "no text"),
    ("Your refund will arrive soon [1].", "not_korean", "Hangul"),
])
def test_bad_drafts_are_refused_with_the_reason(text, reason, words):
    result = check(text)
    assert not result.ok
    assert reason in [p.code for p in result.problems], result.detail
    assert words in result.detail


def test_the_first_problem_is_the_reason_and_every_problem_is_listed():
    result = check("환불은 2영업일 안에 돼요[1]. 결제팀 슬랙 채널로 주문번호를 넘길게요[9].")
    assert result.reason == "invalid_citation"
    assert {p.code for p in result.problems} == {"invalid_citation", "internal_text",
                                                 "unsupported_number"}


def test_numbers_the_agent_typed_may_be_repeated():
    text = "주문번호 20240512-7781 건의 환불은 3영업일 안에 돼요[1]."
    assert check(text).reason == "unsupported_number"
    assert check(text, known=["20240512-7781"]).ok


def test_text_the_articles_say_publicly_is_not_a_memo_leak():
    internal = ForbiddenText(["반품이 승인되면 3영업일 안에 결제 수단으로 환불돼요. 슬랙으로 공유"],
                            PASSAGES)
    assert check_draft("반품이 승인되면 3영업일 안에 결제 수단으로 환불돼요[1].", PASSAGES,
                       internal=internal).ok


@pytest.mark.parametrize(("text", "facts"), [
    ("3영업일", [("3", "영업일")]),
    ("3~5 영업일", [("3", "영업일"), ("5", "영업일")]),
    ("1,000원과 1만 원, 5천원", [("1000", "원"), ("10000", "원"), ("5000", "원")]),
    ("5%와 5 퍼센트, 1.5프로", [("5", "%"), ("5", "%"), ("1.5", "%")]),
    ("24시간 안에, 한 달 뒤", [("24", "시간"), ("1", "개월")]),
    ("13일", [("13", "일")]),
])
def test_numeric_facts_read_korean_amounts_and_periods(text, facts):
    assert numeric_facts(text) == [Fact(value=v, unit=u) for v, u in facts]


def test_sentences_keep_their_citations_paragraphs_and_list_items():
    sentences = split_sentences("안녕하세요. 3영업일이 걸려요.[1]\n\n- 배송비 6,000원[2][3]\n"
                                "감사합니다.")
    assert [(s.text, s.citations, s.item, s.paragraph) for s in sentences] == [
        ("안녕하세요.", (), False, 0), ("3영업일이 걸려요.", (1,), False, 0),
        ("배송비 6,000원", (2, 3), True, 1), ("감사합니다.", (), False, 1)]


def test_a_draft_that_echoes_the_prompt_is_refused():
    rules = ("2. [자료]에 있는 내용만 말합니다. 정책이나 사실을 말하는 문장 끝에는 "
             "근거 자료 번호를 [1]처럼 붙입니다.")
    prompt = ForbiddenText([rules, "[문의 분석]\n유형: 반품·환불 / 고객: 구매자 / 긴급도: 보통"],
                           PASSAGES)
    echoed = "[자료]에 있는 내용만 말합니다. 정책이나 사실을 말하는 문장 끝에는 번호를 붙여요[1]."
    result = check_draft(echoed, PASSAGES, prompt=prompt)
    assert result.reason == "prompt_echo"
    assert check_draft("반품이 승인되면 결제 수단으로 환불돼요[1].", PASSAGES, prompt=prompt).ok
