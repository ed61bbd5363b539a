"""Where the KB's own anticipated questions lead: a check for policy editors.

Every `## 예상 문의` question goes through the suggester as a customer's message would (so the
analyzer's types and risk flags re-rank as they do for agents). When another article comes
first, customers who ask that question get the other article's policy: the editor moves
the question, sharpens it, or accepts that the other article answers it better. Measured on the
shipped KB (2026-11-24), each with its own audience: 66 of 221 questions found another article
first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from suggester.knowledge.articles import QUESTION_PREFIX, find_article_path
from suggester.knowledge.chunks import Chunk
from suggester.service import Suggester


@dataclass(frozen=True, kw_only=True)
class Route:
    """One anticipated question whose own article is not the first answer."""

    article_id: str
    path: Path | None
    line: int
    question: str
    first: str               # the article a customer asking this gets
    own_rank: int | None     # 1-based rank of the question's own article; None: not found

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.path else f"{self.article_id}:{self.line}"
        rank = f"ranks {self.own_rank}" if self.own_rank else "is not among the results"
        return f"{where}: \"{self.question}\" is answered first by {self.first} (its own " \
               f"article {rank})"


def question_text(chunk: Chunk) -> str:
    """The question of an anticipated-question chunk, as its heading states it."""
    return QUESTION_PREFIX.sub("", chunk.section.split(" > ")[-1].strip()).strip()


def anticipated_questions(chunks: Iterable[Chunk]) -> list[Chunk]:
    return sorted((c for c in chunks if c.kind == "question" and not c.internal
                   and question_text(c)), key=lambda c: (c.article_id, c.line_start))


def misrouted_questions(suggester: Suggester, kb_dir: Path, *, article_id: str | None = None,
                        progress: bool = False) -> tuple[list[Route], int]:
    """The anticipated questions another article answers first, and how many were checked."""
    snapshot = suggester.retriever.snapshot()
    questions = [c for c in anticipated_questions(snapshot.chunks.values())
                 if article_id in (None, c.article_id)]
    routes = []
    for chunk in _progress(questions, progress):
        # The question's own audience, as the agent would choose it in the console.
        audience = chunk.audience if chunk.audience != "all" else None
        _, retrieval = suggester.rank(question_text(chunk), audience=audience)
        articles = retrieval.articles
        if articles and articles[0] != chunk.article_id:
            own = articles.index(chunk.article_id) + 1 if chunk.article_id in articles else None
            routes.append(Route(article_id=chunk.article_id,
                                path=find_article_path(kb_dir, chunk.article_id),
                                line=chunk.line_start, question=question_text(chunk),
                                first=articles[0], own_rank=own))
    return routes, len(questions)


def _progress(questions: list[Chunk], enabled: bool) -> Iterable[Chunk]:
    if not enabled:
        return questions
    from tqdm import tqdm

    return tqdm(questions, desc="anticipated questions", unit="q", leave=False)
