"""Personal data masking on realistic chat sentences: what is masked, and what must stay."""

from __future__ import annotations

import pytest

from suggester.records.privacy import Kind, contains_personal_data, mask_personal_data

MASKED = [
    # phones
    ("연락처는 010-1234-5678입니다", "연락처는 [전화번호]입니다"),
    ("01012345678로 전화 부탁드려요", "[전화번호]로 전화 부탁드려요"),
    ("번호 010 1234 5678 이에요", "번호 [전화번호] 이에요"),
    ("해외라서 +82 10-1234-5678 로 연락주세요", "해외라서 [전화번호] 로 연락주세요"),
    ("+821012345678 카톡 가능해요", "[전화번호] 카톡 가능해요"),
    ("회사 02-123-4567, 집 031-1234-5678이에요", "회사 [전화번호], 집 [전화번호]이에요"),
    ("(02) 123-4567 로 전화주세요", "[전화번호] 로 전화주세요"),
    ("안심번호 0507-1234-5678 로 걸어도 되나요", "안심번호 [전화번호] 로 걸어도 되나요"),
    ("송장 옆에 010-9876-5432 적어주세요", "송장 옆에 [전화번호] 적어주세요"),
    # bank accounts
    ("국민 123456-01-234567로 환불해주세요", "국민 [계좌번호]로 환불해주세요"),
    ("신한은행 110-123-456789 예금주 본인입니다", "신한은행 [계좌번호] 예금주 본인입니다"),
    ("카카오뱅크 3333-01-1234567 로 넣어주세요", "카카오뱅크 [계좌번호] 로 넣어주세요"),
    ("환불 계좌는 우리 1002-123-456789 입니다", "환불 계좌는 우리 [계좌번호] 입니다"),
    ("계좌번호 110123456789 로 부탁드려요", "계좌번호 [계좌번호] 로 부탁드려요"),
    ("3333-01-1234567 (카카오뱅크) 여기로요", "[계좌번호] (카카오뱅크) 여기로요"),
    ("농협 301-1234-5678-11 로 입금 부탁", "농협 [계좌번호] 로 입금 부탁"),
    ("신한 110 123 456789 30000원 입금했어요", "신한 [계좌번호] 30000원 입금했어요"),
    # 주민등록번호
    ("주민번호 900101-1234567 보내야 하나요?", "주민번호 [주민등록번호] 보내야 하나요?"),
    ("9001011234567 이게 제 주민번호예요", "[주민등록번호] 이게 제 주민번호예요"),
    ("900101-2****** 까지만 적을게요", "[주민등록번호] 까지만 적을게요"),
    # email, card
    ("메일은 minji.kim+shop@naver.com 으로 주세요", "메일은 [이메일] 으로 주세요"),
    ("카드 1234-5678-9012-3456 으로 결제했어요", "카드 [카드번호] 으로 결제했어요"),
    ("1234 5678 9012 3456 카드 취소 되나요", "[카드번호] 카드 취소 되나요"),
    # addresses
    ("서울특별시 강남구 테헤란로 123으로 보내주세요", "[주소]으로 보내주세요"),
    ("경기도 성남시 분당구 판교역로 235, 101동 202호로 바꿔주세요", "[주소]로 바꿔주세요"),
    ("부산 해운대구 우동 1234-5 입니다", "[주소] 입니다"),
    ("주소 변경: 인천 연수구 송도동 24-5 송도더샵 102동 1504호", "주소 변경: [주소]"),
    ("대구 수성구 범어동 산 12-3번지로 회수 와주세요", "[주소]로 회수 와주세요"),
    ("서울 강남구 테헤란로7길 12 3층 사무실이에요", "[주소] 사무실이에요"),
    ("세종특별자치시 한누리대로 2130 으로요", "[주소] 으로요"),
    ("강남구 역삼동 123-45 래미안 101동 1203호", "[주소]"),
    # several at once
    ("010-1234-5678 / 서울 마포구 월드컵북로 396 / 국민 123456-01-234567",
     "[전화번호] / [주소] / 국민 [계좌번호]"),
]

NOT_MASKED = [
    "주문번호 20261123-000123 환불 계좌로 입금 언제 되나요",
    "주문번호: 20261123000123 계좌 환불 부탁드려요",
    "주문 번호는 20261123-000123, 20261123-000124 두 건이에요",
    "R2026112300123 주문 취소해주세요",
    "30,000원 환불 요청합니다",
    "합계 1,234,000원 입금했어요",
    "2026-11-23에 주문했어요",
    "2026.11.23 오후 2:30에 받았어요",
    "14:30에 연락주세요",
    "환불은 3영업일 내 처리됩니다",
    "운송장 번호 6012345678901 조회가 안돼요",
    "송장번호 1234-5678-9012 확인 부탁드려요",
    "우체국 택배 운송장 6865012345678 입니다",
    "고객센터 1588-1234 로 연락했어요",
    "사업자등록번호 123-45-67890 입니다",
    "생년월일 900101 입니다",
    "친구 선물로 2개 샀어요",
    "서울에서 부산으로 보냈는데 3일째 안 와요",
    "서울 강남구에 살아요",
    "상품 3개, 5만원이요",
]


@pytest.mark.parametrize(("text", "expected"), MASKED, ids=[t for t, _ in MASKED])
def test_masks_personal_data(text, expected):
    assert mask_personal_data(text).text == expected


@pytest.mark.parametrize("text", NOT_MASKED)
def test_leaves_order_numbers_amounts_dates_and_tracking_numbers(text):
    result = mask_personal_data(text)
    assert result.text == text
    assert result.found == []


def test_found_items_point_into_the_original_text():
    text = "연락처 010-1234-5678, 메일 a@b.com, 주소 부산 해운대구 우동 1234-5"
    found = mask_personal_data(text).found
    assert [item.kind for item in found] == [Kind.PHONE, Kind.EMAIL, Kind.ADDRESS]
    assert [item.value for item in found] == ["010-1234-5678", "a@b.com",
                                              "부산 해운대구 우동 1234-5"]
    for item in found:
        assert text[item.start:item.end] == item.value


def test_tokens_name_the_kind():
    result = mask_personal_data("900101-1234567 / 1234-5678-9012-3456 / x@y.kr")
    assert result.text == "[주민등록번호] / [카드번호] / [이메일]"
    assert result.kinds == [Kind.RRN, Kind.CARD, Kind.EMAIL]
    assert [item.token for item in result.found] == ["[주민등록번호]", "[카드번호]", "[이메일]"]


def test_the_same_number_takes_the_most_specific_kind():
    # 900101-1234567 also fits an account grouping (6-7) next to 계좌; it is an RRN first.
    assert mask_personal_data("계좌 말고 900101-1234567").text == "계좌 말고 [주민등록번호]"
    # 01012345678 next to 계좌 fits a bare account run; a phone number is the better name.
    assert mask_personal_data("토스 계좌 01012345678").text == "토스 계좌 [전화번호]"


def test_an_email_with_a_phone_number_inside_is_one_email():
    assert mask_personal_data("01012345678@naver.com 이요").text == "[이메일] 이요"


def test_a_number_without_a_bank_word_nearby_is_not_an_account():
    assert mask_personal_data("110-123-456789 이게 뭔가요").found == []
    assert mask_personal_data("신한 110-123-456789 이게 뭔가요").found[0].kind == Kind.ACCOUNT


def test_tracking_numbers_that_look_like_personal_data_are_masked():
    # Leaking a phone number or an RRN costs more than hiding a tracking number.
    assert mask_personal_data("운송장 번호 01012345678").text == "운송장 번호 [전화번호]"
    assert mask_personal_data("송장 9001011234567").text == "송장 [주민등록번호]"


def test_order_numbers_count_only_after_the_word_order():
    # 8-6 digits are protected after 주문 only; R + 13 digits everywhere.
    assert mask_personal_data("R2026112300123 계좌로 환불").found == []
    assert mask_personal_data("계좌 20261123000123").text == "계좌 [계좌번호]"


def test_masking_is_idempotent():
    once = mask_personal_data(MASKED[-1][0]).text
    assert mask_personal_data(once).text == once


def test_contains_personal_data_agrees_with_masking():
    for text, _ in MASKED:
        assert contains_personal_data(text) == mask_personal_data(text).found
    assert contains_personal_data("배송 언제 오나요?") == []
