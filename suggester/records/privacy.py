"""Find and mask personal data in Korean chat text before it is stored or shown in reports.

Detected, each replaced by a typed token so the reader still sees what kind of data was there:

    phone    [전화번호]      010-1234-5678, 01012345678, +82 10-1234-5678, 02-123-4567, 0507-…
    account  [계좌번호]      hyphen- or space-grouped (10–14 digits) or bare 10–14 digit runs,
                             only when a bank word (국민, 신한은행, 카카오뱅크, …) or 계좌/입금/
                             송금/이체/예금주 is within a few characters; the bank name stays
    rrn      [주민등록번호]  900101-1234567, 9001011234567, 900101-1******
    card     [카드번호]      1234-5678-9012-3456, 16 digits bare or space-grouped, Amex 4-6-5
    email    [이메일]
    address  [주소]          from the 시/도 (or a 구) through the building or lot number and any
                             동/호/층/building name that follows

Never masked, because agents need them to help the customer:

* Our order numbers: `R` + 13 digits anywhere (R2026112300123), and 8 digits-6 digits
  (20261123-000123, also without the hyphen) when the word 주문 comes just before.
* Tracking numbers: a 10–13 digit run (hyphens allowed) just after 운송장/송장, unless it looks
  like a mobile number or a 주민등록번호 — then leaking it would cost more than hiding it.
* Amounts (30,000원), dates (2026-11-23), times (14:30), counts (3영업일), company
  numbers (1588-1234): no detector matches them.

The detectors are regular expressions tuned on realistic chat sentences
(tests/records/test_privacy.py); they over-mask rather than under-mask where the two
conflict. `PersonalData.value` holds the original text: use it to decide, never to store or
log.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    PHONE = "phone"
    ACCOUNT = "account"
    RRN = "rrn"
    CARD = "card"
    EMAIL = "email"
    ADDRESS = "address"


Span = tuple[int, int]

TOKENS: dict[Kind, str] = {
    Kind.PHONE: "[전화번호]",
    Kind.ACCOUNT: "[계좌번호]",
    Kind.RRN: "[주민등록번호]",
    Kind.CARD: "[카드번호]",
    Kind.EMAIL: "[이메일]",
    Kind.ADDRESS: "[주소]",
}


@dataclass(frozen=True, kw_only=True)
class PersonalData:
    """One item of personal data: its kind and where it sits in the original text."""

    kind: Kind
    start: int
    end: int
    value: str

    @property
    def token(self) -> str:
        return TOKENS[self.kind]


@dataclass(frozen=True, kw_only=True)
class MaskResult:
    text: str
    found: list[PersonalData]

    @property
    def kinds(self) -> list[Kind]:
        """Each kind found, once, in order of first appearance."""
        return list(dict.fromkeys(item.kind for item in self.found))


def mask_personal_data(text: str) -> MaskResult:
    """Replace every item of personal data in `text` with its typed token."""
    found = contains_personal_data(text)
    parts: list[str] = []
    position = 0
    for item in found:
        parts += [text[position:item.start], item.token]
        position = item.end
    parts.append(text[position:])
    return MaskResult(text="".join(parts), found=found)


def contains_personal_data(text: str) -> list[PersonalData]:
    """Find the personal data in `text`, in order, without overlaps."""
    protected = [span for pattern in _PROTECTED for span in pattern(text)]
    candidates = [
        PersonalData(kind=kind, start=start, end=end, value=text[start:end])
        for kind, detect in _DETECTORS
        for start, end in detect(text)
        if not any(_overlaps((start, end), span) for span in protected)
    ]
    # Longest first: when an address or email swallows a number that another detector also
    # saw, masking the larger span hides both; ties go to the more specific detector.
    candidates.sort(key=lambda c: (c.start - c.end, _RANK[c.kind], c.start))
    accepted: list[PersonalData] = []
    for candidate in candidates:
        if not any(_overlaps((candidate.start, candidate.end), (a.start, a.end))
                   for a in accepted):
            accepted.append(candidate)
    return sorted(accepted, key=lambda item: item.start)


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


# A number glued to letters, digits or a hyphen is part of a longer code, not a number of its
# own; Korean particles glued to it ("010-1234-5678로") are normal and allowed.
_B = r"(?<![0-9A-Za-z_-])"
_E = r"(?![0-9A-Za-z_]|-\d)"

_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                    r"\.[A-Za-z]{2,}")

_RRN_BODY = r"\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?:-|\s?)[1-8](?:\d{6}|\*{6})"
_RRN = re.compile(_B + _RRN_BODY + r"(?![0-9A-Za-z_*]|-\d)")

_CARD = re.compile(
    _B + r"(?:\d{4}(?P<s>[- ]?)\d{4}(?P=s)\d{4}(?P=s)\d{4}|3[47]\d{2}(?P<a>[- ]?)\d{6}(?P=a)\d{5})"
    + _E
)

_SEP = r"[-. ]"
_COUNTRY = r"\+82[-. ]?(?:\(0\))?"
_MOBILE = re.compile(_B + rf"(?:{_COUNTRY}|0)1[016789]{_SEP}?\d{{3,4}}{_SEP}?\d{{4}}" + _E)
# Seoul 02, the provinces 031–064, internet phones 070 and safe numbers 0502–0508 need a
# separator after the area code: bare 9–10 digit runs starting with 0 are too often other codes.
_AREA = r"(?:2|3[1-3]|4[1-4]|5[1-5]|6[1-4]|70|50[2-8])"
_LANDLINE = re.compile(
    _B + rf"(?:{_COUNTRY}|\(?0){_AREA}(?:\)\s?|{_SEP})\d{{3,4}}{_SEP}\d{{4}}" + _E
)

_GROUPED = re.compile(_B + r"\d{2,7}(?P<s>[- ])\d{2,7}(?:(?P=s)\d{2,7}){0,2}" + _E)
_BARE = re.compile(_B + r"\d{10,14}" + _E)
_ACCOUNT_DIGITS = range(10, 15)
_BANK_WORDS = re.compile(
    r"은행|뱅크|계좌|예금주|입금|송금|이체|국민|KB|신한|우리|하나|농협|NH|기업|IBK|수협|신협|"
    r"우체국|새마을|카뱅|케뱅|토스|SC|제일|씨티|산업|저축|증권|금고",
    re.IGNORECASE,
)
_CONTEXT_BEFORE = 20
_CONTEXT_AFTER = 12

_SIDO = (
    r"(?:서울(?:특별시|시)?|(?:부산|대구|인천|광주|대전|울산)(?:광역시|시)?|경기도?"
    r"|강원(?:특별자치도|도)?|충청[남북]도|충[남북]|전북특별자치도|전라[남북]도|전[남북]"
    r"|경상[남북]도|경[남북]|제주(?:특별자치도|도|시)?)"
)
_SEJONG = r"세종(?:특별자치시|시)?"
_UNIT = r"[가-힣]{1,5}(?:시|군|구)"
# Starting without a 시/도 needs a real 구 name: one-syllable 구s are the five directions,
# so 친구, 출구 and 가구 do not start an address.
_GU = r"(?:[가-힣]{2,4}구|[중동서남북]구)"
_TOWN = r"[가-힣]{1,5}(?:읍|면)"
_LOT = r"[가-힣0-9]{1,8}(?:동|리|가)(?:\s+[가-힣0-9]{1,6}리)?"
_ROAD = r"[가-힣A-Za-z0-9]{1,15}(?:로|길)(?:\s*\d{1,4}번?길)?"
_NUMBER = (r"(?:산\s?)?\d{1,5}(?:-\d{1,5})?(?:번지)?(?![0-9])"
           r"(?!\s*(?:개|원|일|시|분|명|년|월|주|%|번째|회|차|건|장|벌))")
_BUILDING = r"(?:아파트|빌라|빌딩|오피스텔|맨션|타워|하우스|주택|타운|캐슬|상가)"
_DETAIL_ITEM = (
    r"(?:\([^()\n]{1,30}\)"
    r"|[가-힣A-Za-z0-9]{1,15}" + _BUILDING
    + r"|[가-힣A-Za-z]{2,15}(?=\s*(?:(?:\d{1,4}|[A-Za-z])\s?동|\d{1,5}\s?호))"
    r"|(?:\d{1,4}|[A-Za-z])\s?동|\d{1,5}\s?호|(?:지하\s?)?\d{1,3}\s?층)"
)
_ADDRESS = re.compile(
    rf"(?<![가-힣])(?:{_SIDO}(?:\s+{_UNIT}){{1,3}}|{_SEJONG}|{_GU})"
    rf"(?:\s+{_TOWN})?\s+(?:{_LOT}|{_ROAD})\s*{_NUMBER}"
    rf"(?:\s*,?\s*{_DETAIL_ITEM}){{0,5}}"
)

_ORDER_R = re.compile(r"(?<![0-9A-Za-z])R\d{13}(?![0-9])")
_ORDER_DIGITS = re.compile(r"주문[^\d\n]{0,10}?(?P<n>(?<!\d)\d{8}-?\d{6})(?![0-9]|-\d)")
_TRACKING = re.compile(r"송장[^\d\n]{0,10}?(?P<n>(?<!\d)\d[\d-]{8,16}\d)(?![0-9]|-\d)")

def _spans(pattern: re.Pattern[str]) -> Callable[[str], Iterator[Span]]:
    def find(text: str) -> Iterator[Span]:
        for match in pattern.finditer(text):
            yield match.span()

    return find


def _accounts(text: str) -> Iterator[Span]:
    for match in _GROUPED.finditer(text):
        groups = re.split(r"[- ]", match.group())
        # Space-separated groups may run into the next number ("110 123 456789 30000원"):
        # drop trailing groups until the digits fit an account.
        while len(groups) > 2 and sum(map(len, groups)) > _ACCOUNT_DIGITS[-1]:
            groups.pop()
        if sum(map(len, groups)) in _ACCOUNT_DIGITS:
            end = match.start() + len(match.group("s").join(groups))
            if _near_bank_word(text, match.start(), end):
                yield match.start(), end
    for match in _BARE.finditer(text):
        if _near_bank_word(text, *match.span()):
            yield match.span()


def _near_bank_word(text: str, start: int, end: int) -> bool:
    window = text[max(0, start - _CONTEXT_BEFORE):start] + " " + text[end:end + _CONTEXT_AFTER]
    return _BANK_WORDS.search(window) is not None


def _addresses(text: str) -> Iterator[Span]:
    for match in _ADDRESS.finditer(text):
        value = match.group()
        yield match.start(), match.start() + len(value.rstrip(" ,"))


def _order_numbers(text: str) -> Iterator[Span]:
    yield from _spans(_ORDER_R)(text)
    for match in _ORDER_DIGITS.finditer(text):
        yield match.span("n")


def _tracking_numbers(text: str) -> Iterator[Span]:
    for match in _TRACKING.finditer(text):
        number = match.group("n")
        digits = number.replace("-", "")
        if len(digits) not in range(10, 14):
            continue
        if _MOBILE.fullmatch(number) or _RRN.fullmatch(number):
            continue
        yield match.span("n")


# Order matters only for ties (same span): the more specific detector names the item.
_DETECTORS: tuple[tuple[Kind, Callable[[str], Iterator[Span]]], ...] = (
    (Kind.EMAIL, _spans(_EMAIL)),
    (Kind.RRN, _spans(_RRN)),
    (Kind.CARD, _spans(_CARD)),
    (Kind.PHONE, _spans(_MOBILE)),
    (Kind.PHONE, _spans(_LANDLINE)),
    (Kind.ACCOUNT, _accounts),
    (Kind.ADDRESS, _addresses),
)
_RANK = {kind: rank for rank, kind in enumerate(dict.fromkeys(k for k, _ in _DETECTORS))}
_PROTECTED: tuple[Callable[[str], Iterator[Span]], ...] = (_order_numbers, _tracking_numbers)
