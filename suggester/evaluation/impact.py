"""Preview what publishing an article would change in agents' suggestions.

The golden inquiries and the most recent logged ones (already masked) are answered twice: by
the served index and by a shadow index — a copy of the KB with the article's new version,
indexed into a temporary folder with the shared vector cache, so only the changed chunks are
embedded and nothing is written to the served index. An inquiry is listed when its first
article, the facts of its draft (numbers with their units) or its grounded status change.
The gate's retrieval and draft figures are measured on the golden test items before and after,
against the floors of eval/thresholds.toml.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from suggester.errors import InputError
from suggester.evaluation.gate import THRESHOLDS_PATH, GateFailure, check_gate, load_thresholds
from suggester.evaluation.golden import GOLDEN_DIR, GoldenItem, load_golden
from suggester.evaluation.metrics import mean
from suggester.evaluation.runner import KnownVectors, query_vectors
from suggester.knowledge.articles import find_article_path, parse_article
from suggester.records.store import Store
from suggester.search.index import Indexer
from suggester.search.retrieve import Retriever
from suggester.service import Suggester, Suggestion
from suggester.settings import Settings

Progress = Callable[[int, int], None]
# Figures the preview measures, named as in eval/thresholds.toml so their floors apply.
FIGURES = ("retrieval.served.hit@5", "retrieval.served.mrr", "suggestions.must_include_coverage",
           "no_answer.recall")
_FACT = re.compile(r"\d[\d,]*(?:\.\d+)?\s?(?:영업일|일|시간|분|원|%|P|포인트|cm|개월|회|점)")


@dataclass(frozen=True, kw_only=True)
class Inquiry:
    text: str
    audience: str | None
    source: str  # "golden" or "logged"
    golden: GoldenItem | None = None


@dataclass(frozen=True, kw_only=True)
class Answer:
    """What an agent would see for one inquiry, reduced to what the preview compares."""

    first_article: str
    facts: tuple[str, ...]
    grounded: bool
    draft: str

    @classmethod
    def of(cls, suggestion: Suggestion) -> Answer:
        ids = suggestion.retrieval.article_ids()
        text = suggestion.draft.text
        return cls(first_article=ids[0] if ids else "", facts=draft_facts(text),
                   grounded=suggestion.draft.grounded, draft=text)


@dataclass(frozen=True, kw_only=True)
class Change:
    inquiry: Inquiry
    before: Answer
    after: Answer

    @property
    def what(self) -> list[str]:
        """Which of the compared parts changed, in Korean for the editor."""
        parts = []
        if self.before.first_article != self.after.first_article:
            parts.append("첫 문서")
        if self.before.facts != self.after.facts:
            parts.append("답변의 수치")
        if self.before.grounded != self.after.grounded:
            parts.append("근거 여부")
        return parts

    def to_dict(self) -> dict[str, Any]:
        return {"inquiry": self.inquiry.text, "source": self.inquiry.source,
                "audience": self.inquiry.audience, "changed": self.what,
                "before": _answer_dict(self.before), "after": _answer_dict(self.after)}


@dataclass(kw_only=True)
class ImpactReport:
    article_id: str
    inquiries: int
    changes: list[Change] = field(default_factory=list)
    figures_before: dict[str, float | None] = field(default_factory=dict)
    figures_after: dict[str, float | None] = field(default_factory=dict)
    failures_after: list[GateFailure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def warnings(self) -> list[str]:
        """Floors the new version would break (that the served version keeps)."""
        return [str(failure) for failure in self.failures_after]

    def to_dict(self) -> dict[str, Any]:
        return {"article_id": self.article_id, "inquiries": self.inquiries,
                "changes": [c.to_dict() for c in self.changes],
                "figures": {name: {"before": _rounded(self.figures_before.get(name)),
                                   "after": _rounded(self.figures_after.get(name))}
                            for name in FIGURES},
                "warnings": self.warnings, "seconds": round(self.seconds, 2)}

    def summary(self) -> str:
        return (f"{len(self.changes)} of {self.inquiries} inquiries change; "
                f"{len(self.warnings)} gate floors broken; {self.seconds:.1f} s")


def _answer_dict(answer: Answer) -> dict[str, Any]:
    return {"first_article": answer.first_article, "facts": list(answer.facts),
            "grounded": answer.grounded, "draft": answer.draft}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def draft_facts(text: str) -> tuple[str, ...]:
    """The numbers with units a draft states (7일, 3영업일, 5%, 9,900원), in order, unique."""
    seen: dict[str, None] = {}
    for match in _FACT.finditer(text):
        seen.setdefault(re.sub(r"[\s,]", "", match.group(0)), None)
    return tuple(seen)


def gather_inquiries(settings: Settings, store: Store | None, *,
                     golden_dir: Path = GOLDEN_DIR) -> list[Inquiry]:
    """The golden inquiries, then the most recent logged ones (masked), without repeats."""
    inquiries: list[Inquiry] = []
    seen: set[str] = set()
    if golden_dir.is_dir():
        for item in load_golden("all", golden_dir):
            seen.add(item.inquiry)
            inquiries.append(Inquiry(text=item.inquiry, audience=_side(item.audience),
                                     source="golden", golden=item))
    limit = settings.impact_recent_inquiries
    if store is not None and limit > 0:
        for record in store.recent_suggestions(limit=limit):
            if record.inquiry_masked not in seen:
                seen.add(record.inquiry_masked)
                inquiries.append(Inquiry(text=record.inquiry_masked,
                                         audience=_side(record.audience), source="logged"))
    return inquiries


def _side(audience: str) -> str | None:
    return audience if audience in ("buyer", "seller") else None


def preview_impact(settings: Settings, source: str, *, article_id: str | None = None,
                   models: Retriever | None = None, store: Store | None = None,
                   inquiries: list[Inquiry] | None = None, progress: Progress | None = None,
                   thresholds_path: Path = THRESHOLDS_PATH) -> ImpactReport:
    """Answer every inquiry before and after `source` is published; list what changes.

    `models` lends its embedder and tokenizer (the app's retriever: no second model load)."""
    started = time.perf_counter()
    models = models or Retriever(settings)
    inquiries = inquiries if inquiries is not None else gather_inquiries(settings, store)
    # Each inquiry is embedded once (or read from the vector cache) for both indexes.
    embedder = KnownVectors(models.embedder)
    embedder.add(query_vectors(settings, models.embedder, [i.text for i in inquiries]))
    # Both suggesters tokenise each inquiry and the same passages: the tokenizer remembers
    # its recent texts, so Kiwi answers each once (it was 10 of 21 s for 300 inquiries).
    tokenizer = models.tokenizer
    served = Suggester(settings, retriever=Retriever(settings, embedder=embedder,
                                                     tokenizer=tokenizer))
    with shadow_index(settings, source, article_id=article_id, embedder=embedder,
                      tokenizer=tokenizer) as (shadow, new_id):
        report = ImpactReport(article_id=new_id, inquiries=len(inquiries))
        pairs: list[tuple[Inquiry, Suggestion, Suggestion]] = []
        for number, inquiry in enumerate(inquiries, start=1):
            before = served.suggest(inquiry.text, audience=inquiry.audience, log=False)
            after = shadow.suggest(inquiry.text, audience=inquiry.audience, log=False)
            pairs.append((inquiry, before, after))
            if progress:
                progress(number, len(inquiries))
    for inquiry, before, after in pairs:
        change = Change(inquiry=inquiry, before=Answer.of(before), after=Answer.of(after))
        if change.what:
            report.changes.append(change)
    golden = [(i, b, a) for i, b, a in pairs if i.golden and i.golden.id.startswith("test")] \
        or [(i, b, a) for i, b, a in pairs if i.golden]
    report.figures_before = gate_figures([(i.golden, b) for i, b, _ in golden if i.golden])
    report.figures_after = gate_figures([(i.golden, a) for i, _, a in golden if i.golden])
    thresholds = [t for t in load_thresholds(thresholds_path) if t.metric in FIGURES] \
        if thresholds_path.exists() else []
    broken_before = {f.threshold.metric for f in check_gate(report.figures_before, thresholds)}
    report.failures_after = [f for f in check_gate(report.figures_after, thresholds)
                             if f.threshold.metric not in broken_before]
    report.seconds = time.perf_counter() - started
    return report


def gate_figures(answers: list[tuple[GoldenItem, Suggestion]]) -> dict[str, float | None]:
    """The preview's share of the gate's figures over golden items and their suggestions."""
    answerable = [(item, s) for item, s in answers if item.grounded and item.relevant]
    ranks = [_rank(item.relevant, s.retrieval.article_ids()) for item, s in answerable]
    wanted = [(phrase, s.draft.text) for item, s in answerable for phrase in item.must_include]
    unanswerable = [s for item, s in answers if not item.grounded]
    return {
        "retrieval.served.hit@5": _mean([1.0 if r and r <= 5 else 0.0 for r in ranks]),
        "retrieval.served.mrr": _mean([1.0 / r if r else 0.0 for r in ranks]),
        "suggestions.must_include_coverage": _mean([1.0 if p in t else 0.0 for p, t in wanted]),
        "no_answer.recall": _mean([0.0 if s.retrieval.grounded else 1.0 for s in unanswerable]),
    }


def _rank(relevant: list[str], ranked: list[str]) -> int | None:
    return next((n for n, article in enumerate(ranked, start=1) if article in relevant), None)


def _mean(values: list[float]) -> float | None:
    return mean(values) if values else None  # None: not measured, which the gate reports


@contextmanager
def shadow_index(settings: Settings, source: str, *, article_id: str | None, embedder: Any,
                 tokenizer: Any) -> Iterator[tuple[Suggester, str]]:
    """A suggester over the KB with `source` in place of its article, in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="suggester-impact-") as folder:
        root = Path(folder)
        kb_dir = root / "kb"
        shutil.copytree(settings.kb_dir, kb_dir)
        article = parse_article(source, kb_dir / "draft.md")
        new_id = article_id or article.id
        existing = find_article_path(kb_dir, new_id)
        if existing is None and article.type not in ("policy", "faq", "exception"):
            raise InputError(f"cannot place article '{new_id}': its type {article.type!r} is "
                             "not policy, faq or exception")
        target = existing or kb_dir / article.type / f"{new_id}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
        # Vectors come from the served cache: only this article's changed chunks are embedded.
        shadow = replace(settings, kb_dir=kb_dir, data_dir=root / "data", chroma_host="",
                         cache_dir=settings.cache_path.parent, database=root / "unused.sqlite3")
        Indexer(shadow, embedder=embedder, tokenizer=tokenizer).sync()
        yield Suggester(shadow, retriever=Retriever(shadow, embedder=embedder,
                                                     tokenizer=tokenizer)), new_id
