"""Split a customer's message into the questions it asks.

A chat message mixes background ("해킹당한 것 같아서 비번 바꿨어요") with questions ("정산계좌는
왜 막혀있어요?") and requests ("며칠 안에 보내야 하는지 알려주세요"). The draft answers the
questions, one answer each, so they are found first: sentences and the clauses joined by
그리고/근데/또, kept when they carry a question cue (`?`, 나요/까요/되나요/어디/언제/얼마/어떻게…)
or a request (알려주세요, 확인해 주세요). A message with no cue at all is one question: the whole
message. Clauses too short to stand alone (a bare "왜요?") join the sentence before them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Sentence ends (keeping the '?' with its sentence) and the connectives that open a second
# question inside one sentence.
_SENTENCE_END = re.compile(r"(?<=[?!.])\s*|\n+|(?<=[요죠까])\s+(?=\S{2})")
_CONNECTIVE = re.compile(r"(?:^|\s+)(?:그리고|근데|그런데|또|아니면|그럼|글구|그리구|혹시)\s+"
                         r"|(?<=지)(?:랑|하고|와|도)\s+")
_QUESTION_CUE = re.compile(
    r"\?|나요|까요|되나|되요|돼요\??$|될까|건가|걸까|는지|ㄴ지|인지|은지|을지|일지|"
    r"언제|어디|얼마|몇|어떻게|어떡|어케|뭐|무엇|무슨|왜|누가|누구|어느|"
    r"가능|괜찮|되죠|맞죠|거죠|나요|죠\??$")
_REQUEST_CUE = re.compile(
    r"(알려|가르쳐|확인해|안내해|처리해|도와|해결해|바꿔|취소해|환불해)\s*(주세요|줘요|주실|"
    r"주시|줘|달라)|부탁|원해요|싶어요|싶은데")
# Morphemes that make a sentence a question but say nothing of its topic: rare in the KB's
# prose, so their IDF is high, and "어디서 봐요?" would match every "어디서 보나요?".
QUESTION_WORDS = frozenset({
    "어디", "언제", "얼마", "얼마나", "몇", "어떻게", "어떡하", "왜", "무엇", "뭐", "무슨", "누구",
    "어느", "보", "되", "하", "있", "없", "가능", "알려주", "알리", "주"})
MIN_QUESTION_CHARS = 6
MAX_QUESTIONS = 3


@dataclass(frozen=True, kw_only=True)
class Question:
    """One thing the customer asks, as they wrote it, and where it starts in the message."""

    text: str
    start: int
    cue: str  # "question", "request" or "message" (no cue: the whole message)


def split_questions(message: str) -> list[Question]:
    """The questions of `message` in the order asked (at least one, at most MAX_QUESTIONS)."""
    clauses = _clauses(message)
    asked = [(text, start, kind) for text, start in clauses
             if (kind := _cue(text)) is not None]
    if not asked:
        return [Question(text=message.strip(), start=0, cue="message")]
    # A question leans on the background before it: "정산계좌도 바꾸려는데 변경이 안돼요 왜
    # 막혀있어요?" asks about the account change, so a cue-less clause right before a question
    # is read with it.
    questions = [Question(text=text, start=start, cue=kind)
                 for text, start, kind in _with_context(clauses, asked)]
    return questions[:MAX_QUESTIONS]


def _with_context(clauses: list[tuple[str, int]],
                         asked: list[tuple[str, int, str]]) -> list[tuple[str, int, str]]:
    """Each asked clause with the cue-less clause right before it, when there is one."""
    asked_starts = {start for _, start, _ in asked}
    out = []
    for position, (text, start) in enumerate(clauses):
        if start not in asked_starts:
            continue
        kind = next(k for _, s, k in asked if s == start)
        if position and clauses[position - 1][1] not in asked_starts:
            before, before_start = clauses[position - 1]
            text, start = f"{before} {text}", before_start
        out.append((text, start, kind))
    return out


def _clauses(message: str) -> list[tuple[str, int]]:
    """(clause, start) pairs; a clause shorter than MIN_QUESTION_CHARS joins the one before."""
    pieces: list[tuple[str, int]] = []
    for sentence, start in _split(message, _SENTENCE_END, 0):
        pieces += _split(sentence, _CONNECTIVE, start)
    merged: list[tuple[str, int]] = []
    for text, start in pieces:
        if merged and len(text) < MIN_QUESTION_CHARS:
            merged[-1] = (f"{merged[-1][0]} {text}", merged[-1][1])
        else:
            merged.append((text, start))
    return merged


def _split(text: str, pattern: re.Pattern[str], offset: int) -> list[tuple[str, int]]:
    parts, position = [], 0
    for match in [*pattern.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[position:end]
        if piece.strip():
            parts.append((piece.strip(), offset + position + len(piece) - len(piece.lstrip())))
        if match:
            position = match.end()
    return parts


def _cue(clause: str) -> str | None:
    if _QUESTION_CUE.search(clause):
        return "question"
    if _REQUEST_CUE.search(clause):
        return "request"
    return None

