"""Grounded drafts: scripts, placeholders, register per channel, citations, no internal text."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

import pytest

from suggester.reply import compose
from suggester.reply.compose import REPEATED, Budgets, Composer, Known, owes_empathy
from suggester.reply.textsim import bigram_share
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


@pytest.fixture(scope="module")
def meaning_composer(shipped_settings, shipped_retriever):
    """The service's composer: words, and e5 vectors of the KB's sentences and questions."""
    chunks = list(shipped_retriever.snapshot().chunks.values())
    indexer = Indexer(shipped_settings, embedder=shipped_retriever.embedder)
    return Composer(chunks, tokenizer=shipped_retriever.tokenizer,
                    chunk_tokens=indexer.tokens_for(chunks),
                    text_vectors=lambda texts, role: indexer.text_vectors(texts, role=role))


def draft_for(composer, retriever, inquiry, **options):
    """The draft for `inquiry`, retrieved as the service would (the composer hears it too)."""
    return composer.compose(retriever.search(inquiry, audience=options.pop("audience", None)),
                            inquiry=inquiry, **options)


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


def test_a_second_question_is_answered_from_its_own_article(shipped_suggester):
    inquiry = "판매자가 카톡으로 계좌입금하면 깎아준대요 괜찮은거죠? 그리고 환불은 얼마나 걸려요"
    draft = shipped_suggester.suggest(inquiry, audience="buyer", log=False).draft
    cited = {c.article_id for c in draft.citations}
    assert cited & {"off-platform-payment", "off-platform-fraud-victim"}  # the first question
    assert "refund-timing" in cited  # ... and the second, from its own article
    refund = next(c.number for c in draft.citations if c.article_id == "refund-timing")
    assert any(refund in s.citations and "영업일" in s.text for s in draft.sentences)
    assert len(draft.text) <= Budgets().for_channel("chat", 2)


def test_one_question_gets_a_short_draft_that_answers_first(asking_composer,
                                                           shipped_retriever):
    inquiry = "1원 보냈다는데 숫자는 어디서 봐요?"
    draft = draft_for(asking_composer, shipped_retriever, inquiry, audience="seller")
    assert len(draft.text) <= Budgets().chat
    answer = draft.sentences[1:3]  # the first two sentences after the opening
    assert any("입금자명에 표시된 숫자 4자리" in s.text for s in answer), draft.text
    assert all(s.citations for s in answer)


@pytest.mark.parametrize(("inquiry", "audience"), [
    ("수수료 얼마예요?", "seller"),
    ("반품 메뉴가 어디에 있어요ㅠㅠ", "buyer"),  # crying on a how-to question is not anger
])
def test_a_neutral_how_to_question_is_thanked_not_apologised_to(asking_composer,
                                                               shipped_retriever, inquiry,
                                                               audience):
    sentiment = "frustrated" if "ㅠ" in inquiry else "calm"  # what the analyzer says
    draft = draft_for(asking_composer, shipped_retriever, inquiry, audience=audience,
                      sentiment=sentiment)
    assert "죄송" not in draft.text and "사과" not in draft.text
    assert draft.sentences[0].text == "{고객명}님, 문의 주셔서 감사해요."


@pytest.mark.parametrize(("inquiry", "grounded"), [
    ("환불 대체 언제 되냐고요", True),
    # Its nearest article is repeated-contact's, below the confidence: a holding reply, which
    # must not thank an angry customer either.
    ("몇 번을 말해요 환불 대체 언제 되냐고요", False),
])
def test_an_angry_customer_gets_empathy_once_and_no_thanks_after_it(asking_composer,
                                                                   shipped_retriever, inquiry,
                                                                   grounded):
    draft = draft_for(asking_composer, shipped_retriever, inquiry, audience="buyer",
                      sentiment="angry",
                      known=Known(customer_name="김민지"))
    assert draft.grounded is grounded
    assert draft.sentences[0].text == "김민지님, 불편을 드려 정말 죄송해요."
    assert not draft.sentences[0].citations
    assert draft.text.count("죄송") == 1 and "감사" not in draft.text
    assert draft.text.count("김민지") == 1  # the name once, in the opening


def test_waiting_long_is_met_with_empathy_crying_alone_is_not():
    assert owes_empathy("frustrated", "아직도 안 왔어요 언제까지 기다려요")
    assert not owes_empathy("frustrated", "반품 메뉴 어디에요ㅠㅠ")
    assert owes_empathy("angry", "ㅡㅡ")
    assert not owes_empathy("calm", "배송 언제 와요?")


@pytest.mark.parametrize("inquiry", [
    "판매자가 카톡으로 계좌이체 하면 싸게 준대요",
    "수수료 몇퍼에요? 배송비에도 붙어요?",
    "안심반품 신청하려는데 반품 메뉴가 어디에요? 그리고 수영복도 돼요?",
    "제 가방 가품 판정 받았는데 정품 맞아요 이의제기 어떻게 해요",
])
def test_optional_sentences_never_repeat_the_draft(asking_composer, shipped_retriever, inquiry):
    draft = draft_for(asking_composer, shipped_retriever, inquiry)
    assert draft.optional, "relevant sentences over the budget are offered to the agent"
    texts = [o.text for o in draft.optional]
    assert len(set(texts)) == len(texts)
    for sentence in texts:
        assert sentence not in draft.text
        assert bigram_share(sentence, draft.text) < REPEATED, sentence
    numbers = {c.chunk_id: c.number for c in draft.citations}
    for optional in draft.optional:  # a cited passage keeps its number, a new one gets its own
        if optional.source.chunk_id in numbers:
            assert optional.source.number == numbers[optional.source.chunk_id]
        else:
            assert optional.source.number > len(draft.citations)
    as_json = draft.to_dict()["optional_sentences"]
    assert as_json[0]["text"] == texts[0] and as_json[0]["citation"]["article_id"]


def test_board_replies_are_formal_with_greeting_and_closing(composer, shipped_retriever):
    draft = draft_for(composer, shipped_retriever, "환불 언제 돼요", channel="board")
    # One polite line greets and thanks, then the answer: a longer preamble pushed it down.
    greeting = draft.sentences[0]
    assert greeting.text.startswith("안녕하세요, ") and "감사합니다." in greeting.text
    assert len(greeting.text) <= 40 and not greeting.citations
    assert draft.sentences[1].citations
    assert draft.text.rstrip().endswith("감사합니다.")
    assert "니다." in draft.text and "해요." not in draft.text


def test_phone_scripts_read_aloud(composer, shipped_retriever):
    draft = draft_for(composer, shipped_retriever, "카드 환불은 며칠 걸려요", channel="phone")
    greeting = draft.sentences[0]
    assert greeting.text.startswith("안녕하세요, ") and len(greeting.text) <= 40
    assert draft.sentences[1].citations  # the answer right after one line of greeting
    assert "~" not in draft.text and ">" not in draft.text


def test_no_confident_passage_gives_a_holding_reply(composer, shipped_retriever):
    retrieval = shipped_retriever.search("강아지 사료 추천해 주세요")
    draft = composer.compose(retrieval, known=Known(customer_name="김민지"))
    assert not draft.grounded and draft.reason
    assert "확인 후 안내드리겠습니다" in draft.text
    assert draft.citations == []
    # The agent is told which of the customer's words no published passage uses, then the
    # confidence that fell short.
    assert retrieval.unseen_words == ["강아지", "사료", "추천"]
    assert re.fullmatch(r"'강아지', '사료', '추천'은 게시 문서 어디에도 없는 말이고, 가장 가까운 "
                        r"문서도 근거 신뢰도가 0\.\d{3}로 기준보다 낮습니다\.",
                        draft.to_dict()["reason_ko"])


def test_a_held_draft_with_every_word_in_the_kb_gives_the_confidence_alone(composer,
                                                                            shipped_retriever):
    retrieval = shipped_retriever.search("강아지 사료 추천해 주세요")
    known_words = replace(retrieval, unseen_words=[])
    reason = composer.compose(known_words).to_dict()["reason_ko"]
    assert re.fullmatch(r"가장 가까운 문서도 근거 신뢰도가 0\.\d{3}로 기준보다 낮습니다\.", reason)
    one_word = composer.compose(replace(retrieval, unseen_words=["사료"])).to_dict()["reason_ko"]
    assert one_word.startswith("'사료'는 게시 문서 어디에도 없는 말이고, ")  # no final consonant


def test_a_service_the_kb_does_not_offer_is_held_and_the_agent_is_told_which(
        composer, shipped_retriever):
    retrieval = shipped_retriever.search("일본에 사는 친구한테 해외 배송으로 보내 주실 수 있나요?")
    assert retrieval.reason_ko  # shipping-methods-fees declares 해외 배송 not offered
    draft = composer.compose(retrieval)
    assert not draft.grounded and draft.citations == []
    assert "해외 배송" in draft.to_dict()["reason_ko"]
    assert "해외 배송" not in draft.text  # the customer gets the holding reply, not the note


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


@pytest.mark.parametrize("channel", ["chat", "board", "phone"])
def test_drafts_have_no_bullet_lists_only_whole_sentences(asking_composer, shipped_retriever,
                                                         channel):
    inquiry = "판매자가 카톡으로 계좌이체 하면 싸게 준대요"
    draft = draft_for(asking_composer, shipped_retriever, inquiry, audience="buyer",
                      channel=channel)
    assert "\n- " not in draft.text and not draft.text.startswith("- ")
    for sentence in draft.sentences:
        assert not sentence.item and re.search(r"[.!?요다][)\]]?$", sentence.text), sentence.text


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


def test_the_sentence_that_answers_the_customers_words_comes_first(asking_composer,
                                                                    shipped_retriever):
    inquiry = "카카오페이로 결제했는데 환불 언제되여"
    retrieval = shipped_retriever.search(inquiry, audience="buyer")
    asked = asking_composer.compose(retrieval, inquiry=inquiry)
    answer = asked.sentences[1]  # right after the opening
    assert answer.citations and "즉시~1영업일" in answer.text
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
    assert len(calls) == 1  # the inquiry, once; no article sentence again


def test_a_rule_said_again_in_other_words_is_left_out(meaning_composer, shipped_retriever):
    inquiry = "판매 수수료가 얼마예요?"
    draft = draft_for(meaning_composer, shipped_retriever, inquiry, audience="seller",
                      embed=shipped_retriever.embedder.query_vector)
    assert "5%" in draft.text and "500원" in draft.text
    # One sentence of the two that say shipping fees carry no commission (e5 cosine 0.955).
    assert not ("배송비에는 수수료가 붙지 않으며" in draft.text and
                "배송비는 수수료 계산에서 제외돼요" in draft.text)


def test_a_time_of_day_said_once_is_not_said_again(meaning_composer, shipped_retriever):
    """"16:00 이후에 변경하면 …" and "16:00 이후나 주말·공휴일에 변경하면 …" state one cutoff; the
    time is the fact, not the particle after it."""
    inquiry = "1원 보냈다는데 숫자는 어디서 봐요?"
    draft = draft_for(meaning_composer, shipped_retriever, inquiry,
                      embed=shipped_retriever.embedder.query_vector)
    assert "숫자 4자리" in draft.text
    assert draft.text.count("16:00") <= 1


def test_the_date_the_rule_applies_follows_the_opening_on_every_channel(asking_composer,
                                                                       shipped_retriever):
    inquiry = "판매 수수료가 얼마예요?"
    for channel, rule in (("chat", "주문하신 11월 30일 기준 수수료는 5%예요."),
                          ("board", "주문하신 11월 30일 기준 수수료는 5%입니다.")):
        draft = draft_for(asking_composer, shipped_retriever, inquiry, audience="seller",
                          channel=channel, as_of=dt.date(2026, 11, 30))
        texts = [s.text for s in draft.sentences]
        at = texts.index(rule)
        assert "님" in texts[at - 1] and not draft.sentences[at - 1].citations  # the opening
        assert draft.sentences[at].citations  # cites the passage it takes the 5% from
        assert at == 1  # a board reply's greeting is part of its one-line opening


def test_a_list_items_later_sentence_never_goes_out_without_the_case_it_holds_in(
        asking_composer, shipped_retriever):
    # disclosed-defect-claim: "- 안심반품 상품이라면 …. 반품 배송비는 월 2회까지 리클로짓이
    # 부담해요." The second sentence alone promises free returns to every buyer.
    draft = draft_for(asking_composer, shipped_retriever,
                      "하자 없다고 했는데 얼룩이 있네요 반품하고 싶어요")
    said = draft.text + " ".join(o.text for o in draft.optional)
    promise = "반품 배송비는 월 2회까지 리클로짓이 부담해요."
    assert promise in said
    case = "안심반품 상품이라면 배송완료 후 3일 안에 단순 변심으로 반품할 수 있어요."
    assert case in said and said.index(case) < said.index(promise)


def test_a_sentence_leans_on_the_case_its_item_names_or_the_one_it_goes_on_from():
    leads = compose._leads(
        "- 안심반품 상품이라면 3일 안에 반품할 수 있어요. 반품 배송비는 리클로짓이 부담해요.\n"
        "- 옷은 평평한 곳에서 재 주세요. 같은 항목을 같은 방식으로 재야 해요.\n"
        "앱을 최신 버전으로 업데이트해 보세요. 그래도 안 되면 1:1 문의로 보내 주세요.\n"
        "카드 취소는 3~5영업일이 걸려요. 이 기간이 지나도 들어오지 않으면 다시 말씀해 주세요.")
    assert leads == {"반품 배송비는 리클로짓이 부담해요.":
                     "안심반품 상품이라면 3일 안에 반품할 수 있어요.",
                     "그래도 안 되면 1:1 문의로 보내 주세요.":
                     "앱을 최신 버전으로 업데이트해 보세요.",
                     # "이 기간" names the period the sentence before states
                     "이 기간이 지나도 들어오지 않으면 다시 말씀해 주세요.":
                     "카드 취소는 3~5영업일이 걸려요."}
