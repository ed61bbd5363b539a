"""A draft's value types, shared by the composer and the LLM drafter (neither imports the other).

`Draft` is what the customer may read (`text`) and what the agent sees (`cited_text`, the
citations and, when a model was asked, what became of its attempt).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from suggester.reply.draft_check import REASONS_KO

PLACEHOLDER = re.compile(r"\{([^{}\n]+)\}")  # {고객명}: filled when the agent knows it


@dataclass(frozen=True, kw_only=True)
class Citation:
    number: int
    chunk_id: str
    article_id: str
    title: str
    section: str
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "chunk_id": self.chunk_id, "article_id": self.article_id,
                "title": self.title, "section": self.section, "version": self.version}


@dataclass(frozen=True, kw_only=True)
class Sentence:
    text: str
    citations: tuple[int, ...] = ()
    item: bool = False  # a list item of its passage: shown on its own line


@dataclass(frozen=True, kw_only=True)
class OptionalSentence:
    """A relevant sentence the draft had no room for: the agent may add it (with its source)."""

    text: str
    source: Citation  # its number is the draft's for this passage, or the next free one

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "citation": self.source.to_dict()}


def renumbered(optional: Sequence[OptionalSentence],
               citations: Sequence[Citation]) -> list[OptionalSentence]:
    """Optional sentences numbered for another draft: its number for a passage it cites, the
    next free ones for the others."""
    numbers = {c.chunk_id: c.number for c in citations}
    out = []
    for sentence in optional:
        chunk_id = sentence.source.chunk_id
        numbers.setdefault(chunk_id, len(numbers) + 1)
        out.append(replace(sentence, source=replace(sentence.source, number=numbers[chunk_id])))
    return out



def _join(paragraph: list[Sentence], cited: bool) -> str:
    out = ""
    for sentence in paragraph:
        text = sentence.text + ("".join(f"[{n}]" for n in sentence.citations) if cited else "")
        if sentence.item:
            out += ("\n" if out else "") + "- " + text
        else:
            out += (" " if out else "") + text
    return out


@dataclass(kw_only=True)
class Draft:
    channel: str
    grounded: bool
    reason: str
    sentences: list[Sentence]
    citations: list[Citation]
    paragraphs: list[list[Sentence]] = field(default_factory=list)
    unfilled: list[str] = field(default_factory=list)
    reason_ko: str = ""  # the reason as agents read it in the console
    source: str = "composer"  # who wrote it: "composer" or "llm" (see suggester/reply/llm.py)
    llm: LLMAttempt | None = None  # the LLM's attempt, when one is configured
    # "함께 안내할 만한 내용": relevant sentences over the channel's length budget.
    optional: list[OptionalSentence] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The reply as the customer will read it: no citation marks."""
        return "\n\n".join(_join(p, cited=False) for p in self.paragraphs)

    @property
    def cited_text(self) -> str:
        """The reply with [n] after each sentence that states a policy (for agents)."""
        return "\n\n".join(_join(p, cited=True) for p in self.paragraphs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text, "cited_text": self.cited_text, "grounded": self.grounded,
            "reason": self.reason, "reason_ko": self.reason_ko, "channel": self.channel,
            "citations": [c.to_dict() for c in self.citations],
            "sentences": [{"text": s.text, "citations": list(s.citations), "item": s.item}
                          for s in self.sentences],
            "unfilled_placeholders": self.unfilled,
            "source": self.source, "llm": self.llm.to_dict() if self.llm else None,
            "optional_sentences": [o.to_dict() for o in self.optional],
        }


@dataclass(frozen=True, kw_only=True)
class LLMAttempt:
    """What happened when the model was asked: accepted, rejected (and why) or skipped."""

    status: str            # "accepted" | "rejected" | "skipped"
    reason: str = ""       # a draft_check code, "timeout", "error" or "not_grounded"
    detail: str = ""
    latency_ms: float = 0.0
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason,
                "reason_ko": REASONS_KO.get(self.reason, ""), "detail": self.detail,
                "latency_ms": round(self.latency_ms, 1), "model": self.model}
