"""Korean tokenisation for BM25: content morphemes, particles and endings stripped."""

from __future__ import annotations

import pytest

from suggester.search.lexical import LexicalIndex, shared_tokenizer, whitespace_tokens


@pytest.fixture(scope="module")
def tokenize():
    return shared_tokenizer()


@pytest.mark.parametrize("word", ["환불은", "환불이", "환불을", "환불도", "환불이요"])
def test_particles_are_stripped(tokenize, word):
    assert "환불" in tokenize(word)


def test_unspaced_chat_text_is_split_into_words(tokenize):
    assert {"택배", "오"} <= set(tokenize("택배가안와요ㅠㅠ"))


def test_emoticons_and_punctuation_are_dropped(tokenize):
    assert tokenize("ㅠㅠ ㅋㅋㅋ !!??") == []


def test_numbers_keep_their_unit(tokenize):
    assert "3영업일" in tokenize("3영업일 안에 발송")


def test_a_batch_of_texts_gets_the_tokens_each_text_gets_alone(tokenize):
    # The index tokenises its chunks as one batch over Kiwi's workers; queries one by one.
    # Both must give the same tokens, or BM25 would match a query against other words.
    texts = ["반품 배송비는 월 2회까지 리클로짓이 부담해요.", "택배가안와요ㅠㅠ", "",
             "수수료 5프로 맞나요?", "ＡＢＣ 정품 인증서", "3영업일 안에 발송"] * 3
    assert tokenize.tokenize_many(texts) == [tokenize(text) for text in texts]
    assert tokenize.tokenize_many([]) == []


def test_a_remembered_text_gives_its_tokens_again_whatever_a_caller_did_with_them(tokenize):
    first = tokenize("반품 배송비는 누가 내나요")
    first.append("무료")  # a caller's own list: the next caller must not see this
    assert tokenize("반품 배송비는 누가 내나요") == first[:-1]
    # The tags asked for are part of what is remembered.
    assert tokenize.topic_words("반품 배송비는 누가 내나요") != first[:-1]


def test_whitespace_baseline_keeps_particles_attached():
    assert whitespace_tokens("환불은 언제 돼요?") == ["환불은", "언제", "돼요"]


def test_particle_variants_find_the_same_chunk(tokenize):
    index = LexicalIndex.build(["refund", "ship"],
                               [tokenize("환불은 3영업일 안에 완료돼요"),
                                tokenize("판매자는 결제 후 발송해야 해요")])
    for query in ("환불이 언제 되나요", "환불을 받고 싶어요", "환불은요?"):
        assert index.search(tokenize(query), 2)[0][0] == "refund"


def test_unseen_share_measures_words_the_index_never_uses(tokenize):
    index = LexicalIndex.build(["refund"], [tokenize("환불은 3영업일 안에 완료돼요")])
    assert index.unseen_share(tokenize("환불 완료")) == 0.0
    assert 0.0 < index.unseen_share(tokenize("환불 채용")) < 1.0
    assert index.unseen_share(tokenize("채용 공고")) == 1.0


def test_unseen_names_the_query_words_the_index_never_uses_in_their_order(tokenize):
    index = LexicalIndex.build(["refund"], [tokenize("환불은 3영업일 안에 완료돼요")])
    assert index.unseen(tokenize("채용 공고 환불 채용")) == ["채용", "공고"]
    assert index.unseen(tokenize("환불 완료")) == []


def test_covered_share_measures_the_query_words_given_chunks_use(tokenize):
    index = LexicalIndex.build(["refund", "ship"],
                               [tokenize("환불은 3영업일 안에 완료돼요"),
                                tokenize("판매자는 결제 후 발송해야 해요")])
    assert index.covered_share(tokenize("환불 완료"), {"refund"}) == 1.0
    assert index.covered_share(tokenize("환불 완료"), {"ship"}) == 0.0
    assert 0.0 < index.covered_share(tokenize("환불 발송"), {"refund"}) < 1.0
    # A word the KB never uses is a word the chunks cannot cover.
    assert index.covered_share(tokenize("환불 수선"), {"refund"}) < 1.0


def test_saved_index_answers_the_same(tokenize, tmp_path):
    index = LexicalIndex.build(["a", "b"], [tokenize("정산은 구매확정 다음 영업일"),
                                            tokenize("포인트는 1년 동안 유효")])
    index.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    assert loaded.search(tokenize("정산 언제"), 2) == index.search(tokenize("정산 언제"), 2)
