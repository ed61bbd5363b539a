"""Name what fails in an inquiry (결제 오류, 로그인, 앱 튕김, 사진 업로드…); tell outages apart.

An incident groups the inquiries that describe one failure. The cues name a failure, not a
topic: "결제 방법이 궁금해요" mentions payment but reports nothing broken, so it never joins a
payment incident or receives its holding reply. Like the analyzer's cue rules, these describe
how customers write, not which article answers; the articles stay in the KB.
"""

from __future__ import annotations

import re

from suggester.knowledge.articles import any_of
from suggester.reply.analyze import Analysis

OUTAGE_FLAG = "outage"
OUTAGE_TYPE = "장애·긴급"
OTHER_SYMPTOM = "기타 장애"  # outage-like, but no symptom named
_FAILS = r"(오류|에러|실패|안\s*(돼|되|넘어|떠|열)|못\s*하|멈|먹통|튕)"


def _then(words: int) -> str:
    """The rest of a word, then up to `words` more words, before the failure word.

    Each further word must follow whitespace: `\\S*\\s*(\\S+\\s*){0,3}` said the same but could
    split one long run of letters in every way, O(n^4): 400 letters after "결제" took 43 s.
    """
    return rf"\S{{0,30}}(?:\s+\S{{1,30}}){{0,{words}}}\s*"


# First match wins: a payment page that crashes the app is a payment failure to the customer.
SYMPTOMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("결제 오류", any_of(rf"(결제|카드|승인|페이){_then(3)}{_FAILS}",
                        r"결제\s*(창|화면|버튼)", r"(이중|중복)\s*결제")),
    ("로그인", any_of(rf"(로그인|로그\s*인|인증\s*번호|본인\s*인증){_then(3)}"
                      rf"({_FAILS}|풀려|안\s*와|오지)", r"로그아웃\s*(이|돼|되)")),
    ("사진 업로드", any_of(rf"(사진|이미지|업로드|첨부){_then(3)}{_FAILS}")),
    ("채팅", any_of(rf"(채팅|메시지|메세지){_then(3)}({_FAILS}|안\s*(가|보내))")),
    ("앱 튕김", any_of(r"튕", r"강제\s*종료", rf"(앱|어플){_then(2)}(꺼|멈|크래시|종료)")),
    ("접속 불가", any_of(rf"접속{_then(2)}(안|불가|못|오류|에러)", r"먹통",
                        r"서버\s*(가|이)?\s*(다운|터|죽|오류)", r"(하얀|흰|빈)\s*화면",
                        r"(점검\s*중|서버\s*점검)",
                        r"(사이트|홈페이지|앱|어플)\S*\s*안\s*(열|켜|들어)")),
)


def symptom_of(text: str) -> str | None:
    """The failure the text reports, by its symptom name; None when it reports none."""
    return next((name for name, cue in SYMPTOMS if cue.search(text)), None)


def is_outage(analysis: Analysis) -> bool:
    """Whether the analyzer calls the inquiry an outage (the flag, or the type first)."""
    return OUTAGE_FLAG in analysis.flags or analysis.primary_type == OUTAGE_TYPE
