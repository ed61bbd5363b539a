"""Channel register for Korean replies: chat 해요체, board 합니다체, phone read-aloud.

Articles are written in chat register (해요체). The board needs the formal 합니다체, which is a
change of the sentence-final ending only: Kiwi finds the final predicate and its ending, we swap
the ending and let Kiwi conjugate (되+어요 → 됩니다, 이+에요 → 입니다). A sentence we cannot
convert safely is kept as it is: a slightly informal sentence beats a broken one.
"""

from __future__ import annotations

import re

from suggester.search.lexical import shared_tokenizer

_FORMAL_ENDINGS = {"어요": "ᆸ니다", "아요": "ᆸ니다", "여요": "ᆸ니다", "에요": "ᆸ니다",
                   "예요": "ᆸ니다", "ᆯ게요": "겠습니다", "죠": "지요"}
_PREDICATE_TAGS = ("VV", "VA", "VX", "VCP", "VCN", "XSV", "XSA", "EP")
_REQUEST = re.compile(r"(주|하|보|해|내|하시|있으)세요([.!]?)$")
_RANGE = re.compile(r"\s*~\s*(?=\d)")

def to_formal(sentence: str) -> str:
    """해요체 → 합니다체 for one sentence; unchanged when the ending is not one we know."""
    stripped = sentence.rstrip()
    request = _REQUEST.search(stripped)
    if request:  # 확인해 주세요 → 확인해 주시기 바랍니다
        return stripped[: request.start()] + f"{request.group(1)}시기 바랍니다" + \
            (request.group(2) or ".")
    kiwi = shared_tokenizer()  # one Kiwi per process: each holds ~300 MiB
    tokens = kiwi.morphemes(stripped)
    ending = next((i for i in range(len(tokens) - 1, -1, -1) if tokens[i].tag == "EF"), None)
    if ending is None or tokens[ending].form not in _FORMAL_ENDINGS:
        return sentence
    first = ending
    while first > 0 and tokens[first - 1].tag.split("-")[0] in _PREDICATE_TAGS:
        first -= 1
    if first == ending:
        return sentence
    # Only the predicate is re-spelled; everything before it keeps its original spacing.
    start = tokens[first].start
    end = tokens[ending].start + tokens[ending].len
    morphemes = [(t.form, t.tag) for t in tokens[first:ending]]
    morphemes.append((_FORMAL_ENDINGS[tokens[ending].form], "EF"))
    predicate = kiwi.join(morphemes)
    return stripped[:start] + predicate + stripped[end:]


def for_reading_aloud(sentence: str) -> str:
    """Phone scripts: say ranges and symbols the way an agent would read them."""
    sentence = _RANGE.sub("에서 ", sentence).replace("~", " ")  # 3~5영업일 → 3에서 5영업일
    sentence = re.sub(r"\s*>\s*", ", ", sentence)  # menu paths: 마이 > 주문내역 → 마이, 주문내역
    return sentence.replace("%", "퍼센트").replace("·", ", ")
