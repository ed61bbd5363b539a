"""Hybrid retrieval: e5 vectors in Chroma + Kiwi BM25, fused, filtered, with a confidence.

Both retrievers return candidates over every stored chunk; filters (in effect today, audience,
category, customer-facing) are applied here in Python, which is ~20x cheaper than Chroma's
`where`. Fusion is reciprocal rank fusion; the confidence says whether the best passage is
good enough to ground a reply, so the drafter can refuse instead of guessing.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from suggester.chunks import Chunk
from suggester.embedding import E5Embedding, shared_embedder
from suggester.errors import InputError, SearchIndexError
from suggester.index import (
    generation_dir,
    load_chunks,
    open_chroma,
    open_collection,
    read_generation,
)
from suggester.lexical import KiwiTokenizer, LexicalIndex, shared_tokenizer, whitespace_tokens
from suggester.settings import Settings

SYSTEMS = ("bm25-whitespace", "bm25-kiwi", "dense", "hybrid")
CANDIDATES = 60
RRF_K = 60
AUDIENCES = ("buyer", "seller")


@dataclass(frozen=True, kw_only=True)
class Passage:
    chunk: Chunk
    score: float
    dense_rank: int | None = None
    lexical_rank: int | None = None
    dense_similarity: float | None = None
    lexical_score: float | None = None

    @property
    def article_id(self) -> str:
        return self.chunk.article_id

    def to_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "chunk_id": c.id, "article_id": c.article_id, "title": c.title,
            "section": c.section, "kind": c.kind, "text": c.text, "internal": c.internal,
            "audience": c.audience, "category": c.category, "version": c.version,
            "lines": [c.line_start, c.line_end], "score": round(self.score, 6),
            "ranks": {"dense": self.dense_rank, "bm25": self.lexical_rank},
            "dense_similarity": _round(self.dense_similarity),
            "bm25_score": _round(self.lexical_score),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass(kw_only=True)
class RetrievalResult:
    query: str
    system: str
    passages: list[Passage]
    internal: list[Passage]
    confidence: float
    grounded: bool
    reason: str
    timings_ms: dict[str, float] = field(default_factory=dict)

    def article_ids(self) -> list[str]:
        """Distinct articles in rank order."""
        return list(dict.fromkeys(p.article_id for p in self.passages))


@dataclass(frozen=True, kw_only=True)
class Filters:
    audience: str | None = None
    category: str | None = None
    today: dt.date | None = None
    customer_facing: bool = True

    def allows(self, chunk: Chunk, today: dt.date) -> bool:
        if chunk.status != "published" or not chunk.effective_from \
                or chunk.effective_from > today.isoformat():
            return False
        if self.customer_facing and chunk.internal:
            return False
        if self.audience in AUDIENCES and chunk.audience not in (self.audience, "all"):
            return False
        return not (self.category and chunk.category != self.category)


@dataclass(frozen=True)
class _Snapshot:
    """One generation of the index, loaded together so a query never mixes two."""

    generation: int
    chunks: dict[str, Chunk]
    lexical: LexicalIndex
    whitespace: LexicalIndex | None


class Retriever:
    """Load the index once; answer queries from any thread."""

    def __init__(self, settings: Settings, *, embedder: E5Embedding | None = None,
                 tokenizer: KiwiTokenizer | None = None, client: Any = None,
                 confidence_threshold: float = 0.5) -> None:
        self.settings = settings
        self.embedder = embedder or shared_embedder()
        self.tokenizer = tokenizer or shared_tokenizer()
        self._client = client
        self._collection: Any = None
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()
        self.confidence_threshold = confidence_threshold

    # -- loading ------------------------------------------------------------------------------

    def snapshot(self) -> _Snapshot:
        """The current generation, reloaded when `suggester index` or a publish made a new one."""
        generation = read_generation(self.settings)
        current = self._snapshot
        if current is not None and current.generation == generation:
            return current
        with self._lock:
            if self._snapshot is None or self._snapshot.generation != generation:
                self._snapshot = self._load(generation)
            return self._snapshot

    def _load(self, generation: int) -> _Snapshot:
        if not generation:
            raise SearchIndexError("the index is empty: run `suggester index` first "
                                   "(색인이 비어 있습니다 — `suggester index`를 실행하세요)")
        chunks = {c.id: c for c in load_chunks(self.settings, generation)}
        lexical = LexicalIndex.load(generation_dir(self.settings, generation))
        return _Snapshot(generation, chunks, lexical, None)

    def _whitespace_index(self, snapshot: _Snapshot) -> LexicalIndex:
        # Only the benchmark's baseline needs it, so it is built on first use.
        if snapshot.whitespace is None:
            ids = list(snapshot.chunks)
            index = LexicalIndex.build(ids, [whitespace_tokens(snapshot.chunks[i].embed_text)
                                             for i in ids])
            object.__setattr__(snapshot, "whitespace", index)
        assert snapshot.whitespace is not None
        return snapshot.whitespace

    def collection(self) -> Any:
        if self._collection is None:
            if self._client is None:
                self._client = open_chroma(self.settings)
            self._collection = open_collection(self._client, self.settings.collection)
        return self._collection

    # -- searching ----------------------------------------------------------------------------

    def search(self, query: str, *, k: int = 5, audience: str | None = None,
               category: str | None = None, system: str = "hybrid",
               today: dt.date | None = None, query_vector: np.ndarray | None = None,
               ) -> RetrievalResult:
        """Rank customer-facing passages for `query`; attach the top articles' internal notes."""
        if system not in SYSTEMS:
            raise InputError(f"unknown retrieval system {system!r}: use one of "
                             f"{', '.join(SYSTEMS)}")
        if not query.strip():
            raise InputError("the query is empty")
        timings: dict[str, float] = {}
        snapshot = self.snapshot()
        filters = Filters(audience=audience, category=category)
        day = today or dt.date.today()
        dense, lexical = self._candidates(query, system, snapshot, timings, query_vector)
        start = time.perf_counter()
        fused = _fuse(dense, lexical, system)
        passages = [p for p in fused if filters.allows(p.chunk, day)][:k]
        confidence = _confidence(passages, dense, lexical, system)
        grounded = bool(passages) and confidence >= self.confidence_threshold
        reason = "" if grounded else (
            "no published passage matches this inquiry" if not passages else
            f"best passage confidence {confidence:.2f} is below "
            f"{self.confidence_threshold:.2f}")
        internal = self._internal_notes(snapshot, passages, day)
        timings["fuse_ms"] = (time.perf_counter() - start) * 1000
        return RetrievalResult(query=query, system=system, passages=passages, internal=internal,
                               confidence=confidence, grounded=grounded, reason=reason,
                               timings_ms=timings)

    def _candidates(self, query: str, system: str, snapshot: _Snapshot,
                    timings: dict[str, float], query_vector: np.ndarray | None,
                    ) -> tuple[list[tuple[Chunk, float]], list[tuple[Chunk, float]]]:
        dense: list[tuple[Chunk, float]] = []
        lexical: list[tuple[Chunk, float]] = []
        if system in ("dense", "hybrid"):
            dense = _timed(timings, "dense_ms",
                           lambda: self._dense(query, snapshot, query_vector))
        if system in ("bm25-kiwi", "hybrid"):
            lexical = _timed(timings, "bm25_ms", lambda: _lexical(
                snapshot.lexical, self.tokenizer(query), snapshot))
        if system == "bm25-whitespace":
            lexical = _timed(timings, "bm25_ms", lambda: _lexical(
                self._whitespace_index(snapshot), whitespace_tokens(query), snapshot))
        return dense, lexical

    def _dense(self, query: str, snapshot: _Snapshot,
               query_vector: np.ndarray | None) -> list[tuple[Chunk, float]]:
        vector = self.embedder.query_vector(query) if query_vector is None else query_vector
        # Asking Chroma for distances only: documents and metadata are already in memory,
        # and fetching them costs ~16 ms a query (LlamaIndex's query always fetches them).
        found = self.collection().query(query_embeddings=[vector.tolist()],
                                        n_results=CANDIDATES, include=["distances"])
        results = []
        for chunk_id, distance in zip(found["ids"][0], found["distances"][0], strict=True):
            chunk = snapshot.chunks.get(chunk_id)
            if chunk is not None:
                results.append((chunk, 1.0 - float(distance)))  # cosine distance → similarity
        return results

    def _internal_notes(self, snapshot: _Snapshot, passages: list[Passage],
                        day: dt.date) -> list[Passage]:
        articles = list(dict.fromkeys(p.article_id for p in passages))
        agent_view = Filters(customer_facing=False)
        return [
            Passage(chunk=c, score=0.0)
            for article_id in articles
            for c in snapshot.chunks.values()
            if c.article_id == article_id and c.internal and agent_view.allows(c, day)
        ]


def _timed(timings: dict[str, float], name: str, work: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = work()
    timings[name] = (time.perf_counter() - start) * 1000
    return result


def _lexical(index: LexicalIndex, tokens: list[str],
             snapshot: _Snapshot) -> list[tuple[Chunk, float]]:
    return [(snapshot.chunks[i], score) for i, score in index.search(tokens, CANDIDATES)
            if i in snapshot.chunks]


def _fuse(dense: list[tuple[Chunk, float]], lexical: list[tuple[Chunk, float]],
          system: str) -> list[Passage]:
    """Reciprocal rank fusion; a single-retriever system keeps its own order."""
    entries: dict[str, dict[str, Any]] = {}
    for rank, (chunk, similarity) in enumerate(dense, start=1):
        entry = entries.setdefault(chunk.id, {"chunk": chunk})
        entry.update(dense_rank=rank, dense_similarity=similarity)
    for rank, (chunk, score) in enumerate(lexical, start=1):
        entry = entries.setdefault(chunk.id, {"chunk": chunk})
        entry.update(lexical_rank=rank, lexical_score=score)
    passages = []
    for entry in entries.values():
        if system == "hybrid":
            score = sum(1.0 / (RRF_K + entry[key]) for key in ("dense_rank", "lexical_rank")
                        if entry.get(key))
        elif system == "dense":
            score = entry["dense_similarity"]
        else:
            score = entry["lexical_score"]
        passages.append(Passage(score=score, **entry))
    passages.sort(key=lambda p: p.score, reverse=True)
    return passages


def _confidence(passages: list[Passage], dense: list[tuple[Chunk, float]],
                lexical: list[tuple[Chunk, float]], system: str) -> float:
    """How sure we are that the top passage answers the query, in [0, 1]."""
    if not passages:
        return 0.0
    top = passages[0]
    similarity = top.dense_similarity if top.dense_similarity is not None else (
        dense[0][1] if dense else 0.0)
    # e5 cosines bunch between ~0.75 (unrelated) and ~0.9 (same topic): stretch that band.
    dense_part = min(max((similarity - 0.78) / 0.1, 0.0), 1.0)
    if system in ("bm25-kiwi", "bm25-whitespace"):
        return min(top.score / 10.0, 1.0)
    return dense_part
