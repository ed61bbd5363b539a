"""Turn a knowledge-gap group into a draft article: the questions customers asked, the replies
agents actually sent.

The article is a draft (never served, never published on its own): its `## 예상 문의` holds the
customers' questions (masked, as logged), and its `## 응대 예시` starts from the reply agents
sent (feedback `final_text`) when there is one. What no one has written yet is marked for the
editor, so the draft lints (with warnings) and the editor fills it in before publishing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

MAX_QUESTIONS = 8
TO_WRITE = "(작성 필요)"
_BRACES = re.compile(r"[{}]")  # a stray brace would read as a broken placeholder
_HEADING = re.compile(r"^#+\s*", re.MULTILINE)  # a reply's '#' line must not open a section


@dataclass(frozen=True, kw_only=True)
class AskedAndAnswered:
    question: str        # masked, as logged
    reply: str | None    # what the agent sent, when they recorded it


def gap_body(items: Sequence[AskedAndAnswered], *, summary_hint: str) -> str:
    """The Markdown body (after the front matter) of a draft built from a gap group."""
    distinct = list({_one_line(i.question): i for i in items if i.question.strip()}.values())
    chosen = distinct[:MAX_QUESTIONS]
    sent = next((i.reply for i in chosen if i.reply), None) or \
        next((i.reply for i in items if i.reply), None)
    script = _clean(sent) if sent else f"{TO_WRITE} 상담원이 보낸 답변이 아직 없어요."
    lines = ["## 요약", f"{TO_WRITE} {summary_hint}", "", "## 안내", TO_WRITE, "",
             "## 응대 예시", script, "", "## 예상 문의"]
    for item in chosen:
        lines += [f"### Q. {_one_line(item.question)}",
                  _clean(item.reply) if item.reply else TO_WRITE, ""]
    lines += ["## 내부 메모",
              f"- 지식 공백에서 만든 초안: 근거 문서 없이 답한 문의 {len(items)}건. 게시 전에 "
              "요약·안내를 채우고 응대 예시를 정책에 맞게 고쳐 주세요.", ""]
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return _BRACES.sub("", " ".join(text.split()))[:200]


def _clean(text: str) -> str:
    return _HEADING.sub("", _BRACES.sub("", text.strip()))
