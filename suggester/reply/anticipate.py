"""Anticipated inquiries: up to three follow-up questions with grounded answers.

Candidates come, in this order, from the matched article's `## 예상 문의`, the other matched
articles', the matched article's `related` articles', and articles that other customers' inquiries
cited together with it (co-occurrence in the suggestion log). A question is dropped when the
draft already answers it or when the customer has just asked it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from suggester.knowledge.chunks import Chunk
from suggester.reply.draft import Draft
from suggester.reply.textsim import bigram_share
from suggester.search.retrieve import RetrievalResult

LIMIT = 3
PER_ARTICLE = 2
ALREADY_ASKED = 0.5     # share of the question's character bigrams found in the inquiry
ALREADY_ANSWERED = 0.6  # share of the answer's character bigrams found in the draft


@dataclass(frozen=True, kw_only=True)
class Anticipated:
    question: str
    answer: str
    chunk: Chunk
    source: str  # matched | related | asked-together

    def to_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {"question": self.question, "answer": self.answer, "source": self.source,
                "citation": {"chunk_id": c.id, "article_id": c.article_id, "title": c.title,
                             "section": c.section, "version": c.version}}


def split_question(chunk: Chunk) -> tuple[str, str]:
    """('질문', '답') from a question chunk's text 'Q. 질문\\n답'."""
    first, _, rest = chunk.text.partition("\n")
    return first.removeprefix("Q.").strip(), rest.strip()


class Anticipator:
    def __init__(self, chunks: Iterable[Chunk]) -> None:
        self._questions: dict[str, list[Chunk]] = {}
        self._related: dict[str, list[str]] = {}
        for chunk in chunks:
            if chunk.kind == "question" and not chunk.internal:
                self._questions.setdefault(chunk.article_id, []).append(chunk)
            if chunk.related and chunk.article_id not in self._related:
                self._related[chunk.article_id] = [r for r in chunk.related.split(",") if r]

    def anticipate(self, inquiry: str, retrieval: RetrievalResult, draft: Draft, *,
                   asked_together: Mapping[str, Counter[str]] | None = None,
                   allowed: Iterable[str] | None = None) -> list[Anticipated]:
        """Up to LIMIT follow-ups; `allowed` limits articles to those servable to this customer."""
        if not draft.grounded or not retrieval.passages:
            return []
        primary = retrieval.passages[0].article_id
        matched = list(dict.fromkeys(p.article_id for p in retrieval.passages))[:3]
        counts = (asked_together or {}).get(primary, Counter())
        # Most asked first; equal counts by article id, not by which was asked first.
        together = sorted(counts, key=lambda a: (-counts[a], a))[:3]
        sources = [(a, "matched") for a in matched]
        sources += [(a, "related") for a in self._related.get(primary, [])]
        sources += [(a, "asked-together") for a in together]
        permitted = set(allowed) if allowed is not None else None
        cited = {c.chunk_id for c in draft.citations}
        picked: list[Anticipated] = []
        seen_articles: Counter[str] = Counter()
        for article_id, source in dict.fromkeys(sources):
            if permitted is not None and article_id not in permitted:
                continue
            for chunk in self._questions.get(article_id, []):
                if len(picked) == LIMIT:
                    return picked
                if seen_articles[article_id] >= PER_ARTICLE or chunk.id in cited:
                    continue
                question, answer = split_question(chunk)
                if bigram_share(question, inquiry) >= ALREADY_ASKED \
                        or bigram_share(answer, draft.text) >= ALREADY_ANSWERED:
                    continue
                if any(p.question == question for p in picked):
                    continue
                picked.append(Anticipated(question=question, answer=answer, chunk=chunk,
                                          source=source))
                seen_articles[article_id] += 1
        return picked
