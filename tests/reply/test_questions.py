"""Splitting a customer's message into the questions it asks."""

from __future__ import annotations

import pytest

from suggester.reply.questions import MAX_QUESTIONS, split_questions


def texts(message: str) -> list[str]:
    return [q.text for q in split_questions(message)]


@pytest.mark.parametrize(("message", "expected"), [
    ("1원 보냈다는데 숫자는 어디서 봐요?", ["1원 보냈다는데 숫자는 어디서 봐요?"]),
    ("수수료 몇퍼에요? 배송비에도 붙어요?", ["수수료 몇퍼에요?", "배송비에도 붙어요?"]),
    ("안심반품 신청하려는데 반품 메뉴가 어디에요? 그리고 수영복도 돼요?",
     ["안심반품 신청하려는데 반품 메뉴가 어디에요?", "수영복도 돼요?"]),
    # Joined by 그리고 inside one line, without a question mark.
    ("판매자가 카톡으로 계좌입금하면 깎아준대요 괜찮은거죠? 그리고 환불은 얼마나 걸려요",
     ["판매자가 카톡으로 계좌입금하면 깎아준대요 괜찮은거죠?", "환불은 얼마나 걸려요"]),
    # Two things asked in one request.
    ("택배비를 얼마로 해야되는지랑 며칠 안에 보내야 하는지 알려주세요",
     ["택배비를 얼마로 해야되는지", "며칠 안에 보내야 하는지 알려주세요"]),
])
def test_each_question_is_found_in_the_order_asked(message, expected):
    assert texts(message) == expected


def test_background_before_a_question_is_read_with_it():
    """"해킹당한 것 같아서 비번 바꿨어요." says why the next sentence asks."""
    questions = split_questions("해킹당한 것 같아서 비번 바꿨어요. 정산계좌는 왜 못 바꿔요?")
    assert len(questions) == 1
    assert questions[0].text.startswith("해킹당한") and questions[0].text.endswith("바꿔요?")
    assert questions[0].start == 0


def test_a_request_is_a_question_too():
    (question,) = split_questions("정산계좌 이걸로 바꿔주세요 국민 123456-01-234567")
    assert question.cue == "request"


def test_a_message_without_a_question_is_one_question():
    (question,) = split_questions("물건 잘 받았습니다 감사합니다")
    assert question.cue == "message" and question.text == "물건 잘 받았습니다 감사합니다"


def test_no_more_questions_than_the_draft_can_answer():
    message = " ".join(f"{n}번 질문은 언제 돼요?" for n in range(1, 7))
    assert len(split_questions(message)) == MAX_QUESTIONS


def test_each_question_knows_where_it_starts():
    message = "수수료 몇퍼에요? 배송비에도 붙어요?"
    for question in split_questions(message):
        assert message[question.start:].startswith(question.text)
