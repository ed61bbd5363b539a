"""Run the golden set through the four retrieval systems and the suggestion service; score it.

Each inquiry is embedded once (and cached on disk by its text, like passages are) and that
vector is given to every system. The suggestion service, when `suggester.service` exists,
drafts a reply per inquiry without being told the audience, so audience inference is measured
too. Every figure is kept per item as well, so a regression can be traced to the items that
broke. `suggester eval`, CI and `make bench` all call `run_eval`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from suggester.errors import InputError
from suggester.evaluation import checks
from suggester.evaluation.golden import GOLDEN_DIR, GoldenItem, load_golden, validate_golden
from suggester.evaluation.metrics import mean, retrieval_scores
from suggester.knowledge.chunks import Chunk, chunk_article
from suggester.search.cache import ContentCache
from suggester.search.index import Indexer, read_generation
from suggester.search.models import resolve_model, shared_embedder
from suggester.search.retrieve import SYSTEMS, RetrievalResult, Retriever
from suggester.settings import Settings

RETRIEVAL_METRICS = ("hit@1", "hit@5", "recall@5", "mrr", "ndcg@5")
NO_CATEGORY = "(none)"
TOP_SHOWN = 10
# The ranking agents actually see: hybrid with the guessed audience preferred and the
# analyzer's types re-ranking ties (service.Suggester.suggest). A row of its own, so a change
# that helps the plain hybrid but hurts what is served shows up.
SERVED = "served"


@dataclass(frozen=True, kw_only=True)
class Query:
    """One retrieval question: the golden set's and the external benchmarks' common shape."""

    id: str
    text: str
    relevant: list[str]
    category: str
    answerable: bool = True


@dataclass(kw_only=True)
class EvalReport:
    name: str
    split: str
    systems: list[str]
    retrieval: dict[str, dict[str, Any]]
    no_answer: dict[str, Any] | None
    suggestions: dict[str, Any]
    ragas: dict[str, Any]
    items: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    llm: dict[str, Any] = field(default_factory=dict)  # LLM drafting: accepted / rejected
    # The KB's own anticipated questions through the suggester (suggester/routes.py): a figure
    # no golden item chose, so a change that routes customers worse shows here too.
    kb_questions: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, float | None]:
        """Every headline figure under a dotted name: what thresholds.toml refers to."""
        figures: dict[str, float | None] = {}
        for system, result in self.retrieval.items():
            for metric, value in result["overall"].items():
                figures[f"retrieval.{system}.{metric}"] = value
        for key in ("precision", "recall", "f1"):
            figures[f"no_answer.{key}"] = (self.no_answer or {}).get(key)
        s = self.suggestions
        if "skipped" not in s:
            for key in ("type_accuracy", "type_macro_f1", "audience_accuracy",
                        "urgency_accuracy", "must_include_coverage",
                        "must_not_include_violations", "internal_leaks"):
                figures[f"suggestions.{key}"] = s.get(key)
            for key, value in s.get("draft_shape", {}).items():
                if key not in ("chat_drafts", "multi_type_items"):
                    figures[f"suggestions.{key}"] = value
            figures["suggestions.flag_precision"] = s["flags"]["overall"]["precision"]
            figures["suggestions.flag_recall"] = s["flags"]["overall"]["recall"]
            figures["suggestions.no_answer_precision"] = s["no_answer"]["precision"]
            figures["suggestions.no_answer_recall"] = s["no_answer"]["recall"]
            corrections = s.get("corrections") or {}
            for key in ("before", "after"):
                if key in corrections:
                    figures[f"suggestions.type_accuracy_{key}_corrections"] = corrections[key]
        for name, result in self.ragas.items():
            figures[f"ragas.{name}"] = result.get("value")
        if "rejection_rate" in self.llm:
            figures["llm.rejection_rate"] = self.llm["rejection_rate"]
        if "own_article_first" in self.kb_questions:
            figures["kb_questions.own_article_first"] = self.kb_questions["own_article_first"]
        return figures

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "split": self.split, "systems": self.systems,
                "meta": self.meta, "figures": self.figures(), "retrieval": self.retrieval,
                "no_answer": self.no_answer, "suggestions": self.suggestions,
                "ragas": self.ragas, "llm": self.llm, "kb_questions": self.kb_questions}


# -- the golden set -----------------------------------------------------------------------------

def run_eval(settings: Settings, split: str = "test", systems: Iterable[str] = SYSTEMS, *,
             limit: int | None = None, golden_dir: Path = GOLDEN_DIR, k: int = 5,
             suggestions: bool = True, corrections: bool = True, ragas: bool = True,
             progress: bool = True, sync: bool = False) -> EvalReport:
    """Evaluate one golden split ('dev', 'test' or 'all') against the index in `settings`."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    systems = select_systems(systems)
    items = load_golden(split, golden_dir)
    if limit:
        items = items[:limit]
    if not items:
        raise InputError(f"the golden split {split!r} has no items")
    articles, kb_chunks = _read_kb(settings)
    problems = validate_golden(items, articles)
    if problems:
        raise InputError("the golden set is invalid: " + "; ".join(problems[:5])
                         + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    if sync:
        Indexer(settings).sync()
    clock = time.perf_counter()
    embedder = KnownVectors(shared_embedder(settings))
    embedder.add(query_vectors(settings, embedder, [i.inquiry for i in items], progress))
    timings["embed_s"] = time.perf_counter() - clock
    retriever = Retriever(settings, embedder=cast(Any, embedder))

    service, service_note = load_service() if suggestions else (None, "not requested")
    suggester = make_suggester(service, settings, retriever) if service else None
    leaks = checks.LeakDetector([c.text for c in kb_chunks if c.internal],
                                [c.text for c in kb_chunks if not c.internal])
    records, hybrid, drafts = [], [], []
    clock = time.perf_counter()
    for item in progress_bar(items, "eval", progress):
        query = _golden_query(item)
        record, results = search_all(retriever, query, systems,
                                     embedder.query_vector(item.inquiry), k)
        record.update(split=item.id.split("-")[0], inquiry=item.inquiry)
        record["hybrid"] = {"grounded": results["hybrid"].grounded,
                            "confidence": round(results["hybrid"].confidence, 4),
                            "passages": [p.chunk.id for p in results["hybrid"].passages]}
        suggestion = None
        if suggester is not None:
            began = time.perf_counter()
            suggestion = suggester.suggest(item.inquiry, channel=item.channel, k=k, log=False)
            record["suggestion"] = checks.check_item(item, suggestion, leaks)
            record["retrieval"][SERVED] = _retrieval_entry(query, suggestion.retrieval)
            record["suggestion"]["ms"] = round((time.perf_counter() - began) * 1000, 1)
            # Not with an LLM drafting: each item would wait for a second model call.
            if item.grounded and item.relevant and not settings.llm_configured:
                record["suggestion"]["golden_first"] = checks.included_facts(
                    item, _golden_first_draft(suggester, item, suggestion, k))
            attempt = getattr(suggestion.draft, "llm", None)
            if attempt is not None:
                record["suggestion"]["llm"] = attempt.to_dict()
        records.append(record)
        hybrid.append(results["hybrid"])
        drafts.append(suggestion)
    timings["items_s"] = time.perf_counter() - clock

    suggestion_summary: dict[str, Any] = {"skipped": service_note}
    kb_questions: dict[str, Any] = {}
    if suggester is not None:
        suggestion_summary = checks.summarise(items, [r["suggestion"] for r in records])
        clock = time.perf_counter()
        kb_questions = kb_question_routes(settings, suggester, embedder, progress)
        timings["kb_questions_s"] = time.perf_counter() - clock
        if corrections:
            clock = time.perf_counter()
            suggestion_summary["corrections"] = _corrections(
                service, retriever, embedder, items, records, golden_dir, k, progress)
            timings["corrections_s"] = time.perf_counter() - clock

    ragas_summary: dict[str, Any] = {}
    if ragas:
        clock = time.perf_counter()
        ragas_summary = _score_ragas(items, hybrid, drafts, records, kb_chunks, settings)
        timings["ragas_s"] = time.perf_counter() - clock

    queries = [_golden_query(i) for i in items]
    meta = run_meta(settings, started, timings, queries, k)
    meta.update(service=service_note if suggester is None else "suggester.service",
                llm_endpoint=settings.llm_configured, leak_fingerprints=len(leaks))
    if settings.llm_configured:
        meta["llm_model"] = settings.llm_model
    return EvalReport(
        name=f"golden/{split}", split=split, systems=systems,
        retrieval=summarise_retrieval(queries, records,
                                      [*systems, SERVED] if suggester is not None else systems),
        no_answer=no_answer_scores(queries, hybrid), suggestions=suggestion_summary,
        ragas=ragas_summary, items=records, meta=meta,
        llm=llm_drafting_summary(settings, drafts), kb_questions=kb_questions)


def _golden_first_draft(suggester: Any, item: GoldenItem, served: Any, k: int) -> str:
    """The draft an agent gets by choosing the item's first golden article ("draft from this
    one instead"); the served one when it already follows that article, grounded, or when the
    article is not among the candidates (an agent could not choose it either)."""
    golden = item.relevant[0]
    if served.draft.grounded and served.retrieval.articles[:1] == [golden]:
        return served.draft.text or ""
    try:
        chosen = suggester.suggest(item.inquiry, channel=item.channel, k=k, log=False,
                                   article_id=golden)
    except InputError:
        return served.draft.text or ""
    return chosen.draft.text or ""


def kb_question_routes(settings: Settings, suggester: Any, embedder: KnownVectors,
                       progress: bool) -> dict[str, Any]:
    """How many of the KB's anticipated questions find their own article first."""
    from suggester.routes import anticipated_questions, misrouted_questions, question_text

    questions = anticipated_questions(suggester.retriever.snapshot().chunks.values())
    embedder.add(query_vectors(settings, embedder, [question_text(c) for c in questions],
                               progress))
    routes, checked = misrouted_questions(suggester, settings.kb_dir, progress=progress)
    if not checked:
        return {}
    return {"checked": checked, "own_article_first": round(1 - len(routes) / checked, 4),
            "elsewhere": [{"article": r.article_id, "line": r.line, "question": r.question,
                           "first": r.first} for r in routes]}


def llm_drafting_summary(settings: Settings, drafts: Sequence[Any]) -> dict[str, Any]:
    """How often the validator refused the LLM's drafts, why, and how long they took."""
    if not settings.llm_configured:
        return {"skipped": "skipped (no LLM configured)"}
    attempts = [a for d in drafts if d is not None
                and (a := getattr(d.draft, "llm", None)) is not None]
    asked = [a for a in attempts if a.status != "skipped"]
    if not asked:
        return {"skipped": "skipped (no grounded draft was sent to the LLM)"}
    rejected = [a for a in asked if a.status == "rejected"]
    latencies = sorted(a.latency_ms for a in asked)
    return {"model": settings.llm_model, "asked": len(asked),
            "accepted": len(asked) - len(rejected), "rejected": len(rejected),
            "rejection_rate": len(rejected) / len(asked),
            "not_grounded": len(attempts) - len(asked),
            "reasons": dict(Counter(a.reason for a in rejected).most_common()),
            "latency_ms": {"p50": round(float(np.percentile(latencies, 50)), 1),
                           "p95": round(float(np.percentile(latencies, 95)), 1)}}


def select_systems(systems: Iterable[str]) -> list[str]:
    """The requested systems in the benchmark's order; hybrid always runs (gate, ragas)."""
    wanted = {s.strip() for s in systems if s.strip()} | {"hybrid"}
    unknown = wanted - set(SYSTEMS)
    if unknown:
        raise InputError(f"unknown retrieval system(s) {', '.join(sorted(unknown))}: "
                         f"use {', '.join(SYSTEMS)}")
    return [s for s in SYSTEMS if s in wanted]


class KnownVectors:
    """An embedder that answers queries it has vectors for, and asks the model otherwise.

    Given to the Retriever (and so to the service), it lets every system and the suggestion
    use the one vector computed (or cached) per inquiry.
    """

    def __init__(self, embedder: Any) -> None:
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}

    def add(self, vectors: dict[str, np.ndarray]) -> None:
        self._vectors.update(vectors)

    def query_vector(self, text: str) -> np.ndarray:
        vector = self._vectors.get(text)
        return self._embedder.query_vector(text) if vector is None else vector

    def __getattr__(self, name: str) -> Any:
        return getattr(self._embedder, name)


def make_suggester(service: Any, settings: Settings, retriever: Retriever,
                   store: Any = None) -> Any:
    """The service, sharing our retriever when its constructor takes one."""
    if "retriever" in inspect.signature(service).parameters:
        return service(settings, store=store, retriever=retriever)
    return service(settings, store=store)


def load_service() -> tuple[Any, str]:
    """The `Suggester` class, or None and why not (the service may not be written yet)."""
    try:
        from suggester import service
    except ModuleNotFoundError as exc:
        if exc.name != "suggester.service":
            raise
        return None, "skipped (suggester.service is not available yet)"
    return service.Suggester, "suggester.service"


def _golden_query(item: GoldenItem) -> Query:
    category = item.expected_types[0] if item.expected_types else NO_CATEGORY
    return Query(id=item.id, text=item.inquiry, relevant=item.relevant, category=category,
                 answerable=item.grounded)


def _read_kb(settings: Settings) -> tuple[set[str], list[Chunk]]:
    """Article ids and every chunk (internal ones too) of every article in the KB folder."""
    from suggester.knowledge.lint import lint_kb

    report = lint_kb(settings.kb_dir)
    return ({a.id for a in report.articles},
            [c for a in report.articles for c in chunk_article(a)])


def _score_ragas(items: list[GoldenItem], hybrid: list[RetrievalResult], drafts: list[Any],
                 records: list[dict[str, Any]], kb_chunks: list[Chunk],
                 settings: Settings | None = None) -> dict[str, Any]:
    """Score the ragas metrics; per-item scores go into the item records."""
    from suggester.evaluation import ragas_metrics

    chunk_text = {c.id: c.text for c in kb_chunks}
    samples = [_ragas_sample(i, h, d, chunk_text)
               for i, h, d in zip(items, hybrid, drafts, strict=True)]
    per_item, summary = ragas_metrics.score_samples(samples, settings)
    for record in records:
        if per_item.get(record["id"]):
            record["ragas"] = per_item[record["id"]]
    return summary


def _ragas_sample(item: GoldenItem, hybrid: RetrievalResult, suggestion: Any,
                  chunk_text: dict[str, str]) -> Any:
    from suggester.evaluation.ragas_metrics import RagasSample

    response = cited = None
    if suggestion is not None:
        draft = suggestion.draft
        response = draft.text or ""
        shown = {p.chunk.id: p.chunk.text for p in getattr(suggestion, "passages", [])}
        cited = [shown.get(c.chunk_id) or chunk_text.get(c.chunk_id, "")
                 for c in draft.citations]
    return RagasSample(item_id=item.id, user_input=item.inquiry,
                       reference=item.reference_reply, relevant=item.relevant,
                       retrieved_ids=list(dict.fromkeys(p.article_id for p in hybrid.passages)),
                       retrieved_texts=[p.chunk.text for p in hybrid.passages],
                       response=response, cited_texts=cited, answerable=item.grounded)


def _corrections(service: Any, retriever: Retriever, embedder: KnownVectors,
                 items: list[GoldenItem],
                 records: list[dict[str, Any]], golden_dir: Path, k: int,
                 progress: bool) -> dict[str, Any]:
    """Type accuracy on the test items before and after learning the dev items' types."""
    tests = [(i, r) for i, r in zip(items, records, strict=True)
             if r["split"] == "test" and i.grounded]
    if not tests:
        return {"skipped": "only measured on test items (the corrections come from dev)"}
    teach = [i for i in load_golden("dev", golden_dir) if i.expected_types]
    embedder.add(query_vectors(retriever.settings, embedder, [i.inquiry for i in teach],
                               progress))
    before = mean([float(r["suggestion"]["type_correct"]) for _, r in tests])
    with tempfile.TemporaryDirectory(prefix="suggester-eval-") as folder:
        suggester, how = _taught(service, retriever, teach, Path(folder))
        correct = []
        for item, record in progress_bar(tests, "after corrections", progress):
            analysis = suggester.suggest(item.inquiry, channel=item.channel, k=k,
                                         log=False).analysis
            types = [t.category for t in analysis.inquiry_types]
            record["suggestion"]["types_after_corrections"] = types
            correct.append(float(bool(types) and types[0] in item.expected_types))
        store = getattr(suggester, "store", None)
        if store is not None and hasattr(store, "close"):
            store.close()
    return {"before": before, "after": mean(correct), "n": len(tests), "taught": len(teach),
            "via": how}


def _taught(service: Any, retriever: Retriever, teach: list[GoldenItem],
            folder: Path) -> tuple[Any, str]:
    """A service that has learned the types of `teach`, as agents' corrections would teach it."""
    from suggester.records.store import Store

    store = Store(folder / "corrections.sqlite3")
    for item in teach:
        suggestion_id = store.log_suggestion(
            inquiry=item.inquiry, channel=item.channel, audience=item.audience, analysis={},
            passages=[], grounded=item.grounded, draft_text="")
        store.record_feedback(suggestion_id, verdict="rejected",
                              corrected_types=item.expected_types)
    # Only the analysis is measured here: drafting with an LLM again would only cost time.
    settings = replace(retriever.settings, llm_base_url="")
    suggester = make_suggester(service, settings, retriever, store)
    analyzer = getattr(suggester, "analyzer", None)
    if analyzer is not None and getattr(analyzer, "corrections", None) == 0:
        # The service did not read the store's corrections at start: teach the analyzer.
        for item in teach:
            analyzer.learn(item.inquiry, item.expected_types)
        return suggester, "analyzer.learn"
    return suggester, "store corrections"


# -- retrieval, shared with the external benchmarks ---------------------------------------------

def query_vectors(settings: Settings, embedder: Any, texts: Sequence[str],
                  progress: bool = False) -> dict[str, np.ndarray]:
    """Query vectors of `texts`, from the content cache when they were embedded before."""
    keys = {hashlib.sha256(t.encode("utf-8")).hexdigest(): t for t in dict.fromkeys(texts)}
    # Query vectors are not passage vectors: a key of their own, per model.
    query_model = f"{resolve_model(settings).cache_key}:query"
    cache = ContentCache(settings.cache_path)
    try:
        found = cache.vectors(query_model, keys)
        missing = [h for h in keys if h not in found]
        fresh = {h: embedder.query_vector(keys[h])
                 for h in progress_bar(missing, "embedding queries", progress)}
        if fresh:
            cache.put_vectors(query_model, fresh)
        found.update(fresh)
    finally:
        cache.close()
    return {text: found[h] for h, text in keys.items()}


def search_all(retriever: Retriever, query: Query, systems: Sequence[str],
               vector: np.ndarray, k: int = 5) -> tuple[dict[str, Any], dict[str, Any]]:
    """One query through every system: its per-item record and the raw results."""
    record: dict[str, Any] = {"id": query.id, "category": query.category,
                              "answerable": query.answerable, "relevant": query.relevant,
                              "retrieval": {}}
    results = {}
    for system in systems:
        result = retriever.search(query.text, k=k, system=system, query_vector=vector)
        record["retrieval"][system] = _retrieval_entry(query, result)
        results[system] = result
    return record, results


def _retrieval_entry(query: Query, retrieval: RetrievalResult) -> dict[str, Any]:
    """One system's ranking of one query: its top articles and, when answerable, its scores."""
    ranked = retrieval.article_ids()
    entry: dict[str, Any] = {"top": ranked[:TOP_SHOWN]}
    if query.answerable:
        entry.update(retrieval_scores(ranked, query.relevant))
    return entry


def summarise_retrieval(queries: Sequence[Query], records: Sequence[dict[str, Any]],
                        systems: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Mean scores per system, overall and per category, over answerable queries."""
    summary = {}
    for system in systems:
        scored = [(q.category, r["retrieval"][system]) for q, r in zip(queries, records,
                                                                       strict=True)
                  if q.answerable]
        by_category: dict[str, list[dict[str, float]]] = defaultdict(list)
        for category, entry in scored:
            by_category[category].append(entry)
        summary[system] = {
            "n": len(scored),
            "overall": _means([e for _, e in scored]),
            "by_category": {c: {**_means(entries), "n": len(entries)}
                            for c, entries in sorted(by_category.items())},
        }
    return summary


def _means(entries: Sequence[dict[str, float]]) -> dict[str, float]:
    return {m: mean([e[m] for e in entries]) for m in RETRIEVAL_METRICS}


def no_answer_scores(queries: Sequence[Query],
                     hybrid: Sequence[RetrievalResult]) -> dict[str, Any] | None:
    """Precision/recall of refusing (grounded = False) on the items the KB does not cover."""
    if all(q.answerable for q in queries):
        return None
    scores = checks.precision_recall([not r.grounded for r in hybrid],
                                     [not q.answerable for q in queries])
    scores["refused_answerable"] = [q.id for q, r in zip(queries, hybrid, strict=True)
                                    if q.answerable and not r.grounded]
    scores["answered_negatives"] = [q.id for q, r in zip(queries, hybrid, strict=True)
                                    if not q.answerable and r.grounded]
    return scores


def run_meta(settings: Settings, started: float, timings: dict[str, float],
          queries: Sequence[Query], k: int) -> dict[str, Any]:
    return {
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "runtime_s": round(time.perf_counter() - started, 2),
        "timings_s": {name: round(value, 2) for name, value in timings.items()},
        "items": len(queries), "answerable": sum(q.answerable for q in queries),
        "negatives": sum(not q.answerable for q in queries), "k": k,
        "index_generation": read_generation(settings), "kb_dir": str(settings.kb_dir),
        "embed_model": resolve_model(settings).name,
    }


def progress_bar(values: Sequence[Any], label: str, enabled: bool) -> Iterable[Any]:
    if not enabled or not values:
        return values
    from tqdm import tqdm

    return tqdm(values, desc=label, unit="item", leave=False)

