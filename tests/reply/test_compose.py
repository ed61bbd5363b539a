"""Grounded drafts: scripts, placeholders, register per channel, citations, no internal text."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from suggester.reply.compose import Composer, Known
from suggester.reply.tone import for_reading_aloud, to_formal
from suggester.search.index import Indexer


@pytest.fixture(scope="module")
def composer(shipped_retriever):
    return Composer(shipped_retriever.snapshot().chunks.values())


@pytest.fixture(scope="module")
def asking_composer(shipped_settings, shipped_retriever):
    """A composer that also hears the inquiry's words, as the service builds it."""
    chunks = list(shipped_retriever.snapshot().chunks.values())
    return Composer(chunks, tokenizer=shipped_retriever.tokenizer,
                    chunk_tokens=Indexer(shipped_settings).tokens_for(chunks))


def draft_for(composer, retriever, inquiry, **options):
    return composer.compose(retriever.search(inquiry, audience=options.pop("audience", None)),
                            **options)


def test_the_best_articles_script_is_the_backbone(composer, shipped_retriever):
    draft = draft_for(composer, shipped_retriever, "판매자가 계좌로 직접 입금하래요",
                      audience="buyer")
    assert draft.grounded
    assert draft.citations[0].article_id == "off-platform-payment"
    assert draft.citations[0].section == "응대 예시"
    assert "안전결제" in draft.text


def test_known_values_fill_placeholders_and_unknown_ones_stay_visible(composer,
                                                                     shipped_retriever):
    retrieval = shipped_retriever.search("택배가 일주일째 조회가 안 되고 멈춰 있어요",
                                         audience="buyer")
    filled = composer.compose(retrieval, known=Known(customer_name="김민지",
                                                     order_id="R2026112300123"))
    assert filled.text.startswith("김민지님") and "{고객명}" not in filled.text
    assert "R2026112300123" in filled.text and "{주문번호}" not in filled.text
    blank = composer.compose(retrieval)
    assert "{고객명}" in blank.text and "{고객명}" in blank.unfilled


def test_placeholder_values_cannot_inject_markup(composer, shipped_retriever):
    retrieval = shipped_retriever.search("환불 언제 돼요", audience="buyer")
    draft = composer.compose(retrieval, known=Known(customer_name="<b>{주문번호}</b>"))
    assert "<" not in draft.text and "{주문번호}" not in draft.text.split("님")[0]


def test_every_sentence_from_a_passage_is_cited(composer, shipped_retriever):
    draft = draft_for(composer, shipped_retriever, "정산은 언제 들어와요? 수수료는 얼마예요?",
                      audience="seller")
    numbers = {c.number for c in draft.citations}
    policy_sentences = [s for s in draft.sentences if re.search(r"\d", s.text)]
    assert policy_sentences and all(s.citations for s in policy_sentences)
    assert {n for s in draft.sentences for n in s.citations} == numbers
    assert "[1]" in draft.cited_text and "[1]" not in draft.text


def test_a_second_question_adds_facts_from_its_own_article(composer, shipped_retriever):
    retrieval = shipped_retriever.search("배송이 너무 늦는데 이거 취소하면 쿠폰은 돌려받아요?",
                                         audience="buyer")
    draft = composer.compose(retrieval, inquiry_types=["배송", "쿠폰·포인트"])
    assert len({c.article_id for c in draft.citations}) >= 2
    assert any(c.article_id.startswith("coupon") for c in draft.citations)


def test_board_replies_are_formal_with_greeting_and_closing(composer, shipped_retriever):
    draft = draft_for(composer, shipped_retriever, "환불 언제 돼요", channel="board")
    assert draft.text.startswith("안녕하세요, 리클로짓 고객센터입니다.")
    assert draft.text.rstrip().endswith("감사합니다.")
    assert "니다." in draft.text and "해요." not in draft.text


def test_phone_scripts_read_aloud(composer, shipped_retriever):
    draft = draft_for(composer, shipped_retriever, "카드 환불은 며칠 걸려요", channel="phone")
    assert draft.text.startswith("안녕하세요, 리클로짓 고객센터 상담원입니다.")
    assert "~" not in draft.text and ">" not in draft.text


def test_an_upset_customer_gets_an_apology_first(composer, shipped_retriever):
    retrieval = shipped_retriever.search("수수료 얼마예요", audience="seller")
    calm = composer.compose(retrieval, sentiment="calm")
    angry = composer.compose(retrieval, sentiment="angry")
    assert "죄송" not in calm.text
    assert angry.sentences[0].text == "불편을 드려 정말 죄송해요."
    assert not angry.sentences[0].citations


def test_no_confident_passage_gives_a_holding_reply(composer, shipped_retriever):
    retrieval = shipped_retriever.search("강아지 사료 추천해 주세요")
    draft = composer.compose(retrieval, known=Known(customer_name="김민지"))
    assert not draft.grounded and draft.reason
    assert "확인 후 안내드리겠습니다" in draft.text
    assert draft.citations == []
    assert re.fullmatch(r"가장 가까운 문서도 근거 신뢰도가 0\.\d{3}로 기준보다 낮습니다\.",
                        draft.to_dict()["reason_ko"])


def test_an_article_without_a_reply_script_gives_a_holding_reply_and_says_why(
        shipped_retriever):
    chunks = [c for c in shipped_retriever.snapshot().chunks.values()
              if not (c.article_id == "off-platform-payment" and c.kind == "script")]
    retrieval = shipped_retriever.search("판매자가 계좌로 직접 입금하래요", audience="buyer")
    assert retrieval.grounded and retrieval.passages[0].article_id == "off-platform-payment"
    draft = Composer(chunks).compose(retrieval)
    assert not draft.grounded and draft.citations == []
    assert draft.reason == "article off-platform-payment has no reply script"
    assert "응대 예시가 없어" in draft.to_dict()["reason_ko"]


def test_internal_sections_never_reach_the_draft(composer, shipped_retriever):
    internal = [c for c in shipped_retriever.snapshot().chunks.values() if c.internal]
    for chunk in internal[:40]:
        retrieval = shipped_retriever.search(chunk.text[:200])
        draft = composer.compose(retrieval)
        for line in chunk.text.split("\n"):
            line = line.strip("- ").strip()
            if len(line) >= 12:
                assert line not in draft.text, (chunk.id, line)


@pytest.mark.parametrize(("informal", "formal"), [
    ("전액 환불돼요.", "전액 환불됩니다."),
    ("판매자 부담이에요.", "판매자 부담입니다."),
    ("수수료는 5%예요.", "수수료는 5%입니다."),
    ("결과를 알려 드릴게요.", "결과를 알려 드리겠습니다."),
    ("문제 신고로 접수해 주세요.", "문제 신고로 접수해 주시기 바랍니다."),
    ("3영업일 안에 발송해야 해요.", "3영업일 안에 발송해야 합니다."),
    ("감사합니다.", "감사합니다."),
])
def test_formal_register_changes_only_the_ending(informal, formal):
    assert to_formal(informal) == formal


def test_reading_aloud_spells_out_ranges_and_menus():
    spoken = for_reading_aloud("3~5영업일, 마이 > 주문내역, 5%")
    assert spoken == "3에서 5영업일, 마이, 주문내역, 5퍼센트"


def test_facts_are_whole_sentences_or_list_items_on_their_own_line(composer, shipped_retriever):
    retrieval = shipped_retriever.search("판매자가 카톡으로 계좌이체 하면 싸게 준대요",
                                         audience="buyer")
    draft = composer.compose(retrieval)
    for sentence in draft.sentences:
        assert sentence.item or re.search(r"[.!?요다][)\]]?$", sentence.text), sentence.text
    for sentence in (s for s in draft.sentences if s.item):
        assert f"\n- {sentence.text}" in draft.text


def test_a_fact_that_restates_the_script_in_other_words_is_left_out(composer,
                                                                    shipped_retriever):
    draft = draft_for(composer, shipped_retriever,
                      "받았는데 설명엔 하자없다더니 얼룩이 있어요 반품하고 싶어요",
                      audience="buyer")
    assert draft.citations[0].article_id == "disclosed-defect-claim"
    assert "상태 상이에 해당하지 않아요" in draft.text  # the script says it once ...
    restated = ("판매자가 등록 사진에 보여 주었거나 설명에 적어 둔 하자는 "
                "상태 상이에 해당하지 않아요.")
    assert restated not in draft.text  # ... and the rule that says it again is not added


def test_the_articles_sentence_that_answers_the_customers_words_is_added(asking_composer,
                                                                        shipped_retriever):
    inquiry = "카카오페이로 결제했는데 환불 언제되여"
    retrieval = shipped_retriever.search(inquiry, audience="buyer")
    asked = asking_composer.compose(retrieval, inquiry=inquiry)
    without_words = asking_composer.compose(retrieval)
    answer = next(s for s in asked.sentences if "카카오페이" in s.text)
    assert answer.citations and "즉시~1영업일" in answer.text
    assert "카카오페이" not in without_words.text
    assert asked.citations[0].article_id == retrieval.passages[0].article_id


def test_text_that_speaks_of_the_customer_never_reaches_a_draft(shipped_settings,
                                                                shipped_retriever):
    inquiry = "카카오페이로 결제했는데 환불 언제되여"
    retrieval = shipped_retriever.search(inquiry, audience="buyer")
    primary = retrieval.passages[0].article_id
    guidance = "고객이 카카오페이 환불에 항의해도 기준은 7영업일로 같아요."
    chunks = [replace(c, text=f"{guidance}\n{c.text}")
              if c.article_id == primary and c.kind in ("summary", "policy") else c
              for c in shipped_retriever.snapshot().chunks.values()]
    composer = Composer(chunks, tokenizer=shipped_retriever.tokenizer,
                        chunk_tokens=Indexer(shipped_settings).tokens_for(chunks))
    draft = composer.compose(retrieval, inquiry=inquiry)
    assert draft.grounded and "고객이" not in draft.text and "7영업일로" not in draft.text


def test_tokenised_sentences_are_shared_by_the_next_generations_composer(shipped_settings,
                                                                         shipped_retriever):
    calls = []

    def counting(text):
        calls.append(text)
        return shipped_retriever.tokenizer(text)

    chunks = list(shipped_retriever.snapshot().chunks.values())
    tokens = Indexer(shipped_settings).tokens_for(chunks)
    cache = {}
    Composer(chunks, tokenizer=counting, chunk_tokens=tokens, sentence_cache=cache).prepare()
    assert calls and cache  # every article's fact sentences, tokenised once
    calls.clear()
    after_publish = Composer(chunks, tokenizer=counting, chunk_tokens=tokens,
                             sentence_cache=cache)
    inquiry = "카카오페이로 결제했는데 환불 언제되여"
    after_publish.compose(shipped_retriever.search(inquiry, audience="buyer"), inquiry=inquiry)
    assert len(calls) == 2  # the inquiry and the draft so far; no article sentence again
