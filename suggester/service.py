"""One `Suggester` object: the single path from a customer's message to a suggestion.

The CLI, the Flask API, the console and the evaluation all call `Suggester.suggest`, so what CI
measures is what agents get. Per request the inquiry is embedded once; the vector serves both
dense retrieval and the analyzer's learned corrections.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from suggester.errors import InputError
from suggester.knowledge.chunks import Chunk
from suggester.operations.features import FEATURE_TYPE, FeatureDesk, announced
from suggester.operations.incidents import IncidentDesk
from suggester.records.store import CorrectionMark, Store
from suggester.reply.analyze import Analysis, Analyzer, infer_audience
from suggester.reply.anticipate import Anticipated, Anticipator
from suggester.reply.compose import CHANNELS, Budgets, Composer, Known, as_of_marker
from suggester.reply.draft import Draft
from suggester.reply.draft_check import ForbiddenText
from suggester.reply.tone import to_formal
from suggester.search.dense import unit
from suggester.search.index import Indexer
from suggester.search.retrieve import Filters, Passage, RetrievalResult, Retriever, _Snapshot
from suggester.settings import Settings

if TYPE_CHECKING:
    from suggester.records.incidents import Incident
    from suggester.reply.llm import LLMDrafter

log = logging.getLogger(__name__)
# Situations where we owe the customer an apology whatever their tone.
COMPANY_FAULT_FLAGS = frozenset({"outage"})
COMPANY_FAULT_TYPES = frozenset({"장애·긴급"})
MAX_K = 20
CORRECTIONS_POLL_S = 2.0  # how stale another worker's view of the corrections may be
SERVABLE_REMEMBERED = 16  # (side, day) article sets kept per index generation


@dataclass(kw_only=True)
class Suggestion:
    id: str
    inquiry: str
    channel: str
    analysis: Analysis
    retrieval: RetrievalResult
    draft: Draft
    anticipated: list[Anticipated]
    timings_ms: dict[str, float] = field(default_factory=dict)
    generation: int = 0
    chosen_by_agent: bool = False  # the agent picked the article the draft follows
    incident: dict[str, Any] | None = None  # the incident the inquiry reports, if any
    as_of: dt.date | None = None  # the order or event date the rules were chosen for
    scheduled: list[dict[str, str]] = field(default_factory=list)  # switch-overs ahead

    @property
    def passages(self) -> list[Passage]:
        return self.retrieval.passages

    @property
    def internal_notes(self) -> list[Passage]:
        return self.retrieval.internal

    def to_dict(self, *, internal: bool = True) -> dict[str, Any]:
        """The JSON of the API; `internal=False` leaves out every internal text (internal notes,
        internal passages, escalation rules) for callers outside the CX team."""
        analysis = self.analysis.to_dict()
        if not internal:
            for flag in analysis["risk_flags"]:
                flag["escalation"] = None
        return {
            "suggestion_id": self.id,
            "analysis": analysis,
            "passages": [p.to_dict() for p in self.passages if internal or not p.chunk.internal],
            "draft": self.draft.to_dict(),
            "anticipated": [a.to_dict() for a in self.anticipated],
            "internal_notes": [p.to_dict() for p in self.internal_notes] if internal else [],
            "retrieval": {"grounded": self.retrieval.grounded,
                          "confidence": round(self.retrieval.confidence, 4),
                          "reason": self.retrieval.reason,
                          "unseen_words": list(self.retrieval.unseen_words)},
            # Other articles the agent may draft from instead (`article_id` in the request).
            "alternatives": [{"article_id": p.article_id, "title": p.chunk.title,
                              "category": p.chunk.category, "section": p.chunk.section,
                              "score": round(p.score, 6)}
                             for p in self.retrieval.alternatives()],
            "chosen_by_agent": self.chosen_by_agent,
            "incident": self.incident,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            # Internal only: agents see that a cited rule changes soon; never in the draft.
            "scheduled_changes": self.scheduled if internal else [],
            "index_generation": self.generation,
            "warnings": list(self.retrieval.warnings),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


def _relearn(analyzer: Analyzer, store: Store, inquiry: str) -> None:
    """Forget what the analyzer learnt for `inquiry`; learn its corrections still standing."""
    analyzer.forget(inquiry)
    for correction in store.corrections(inquiry=inquiry):
        analyzer.learn(correction.inquiry_masked, correction.corrected_types)


def validate_inquiry(inquiry: Any, max_chars: int) -> str:
    if not isinstance(inquiry, str):
        raise InputError("inquiry must be a string", code="invalid_inquiry",
                         korean="문의 내용은 문자열이어야 합니다.")
    if not inquiry.strip():
        raise InputError("inquiry is empty", code="empty_inquiry",
                         korean="문의 내용이 비어 있습니다. 고객의 메시지를 붙여 넣어 주세요.")
    if len(inquiry) > max_chars:
        raise InputError(f"inquiry is {len(inquiry):,} characters; the limit is {max_chars:,}",
                         code="inquiry_too_long",
                         korean=f"문의 내용이 너무 깁니다({len(inquiry):,}자). "
                                f"{max_chars:,}자 이하로 줄여 주세요.")
    return inquiry


class Suggester:
    """Analyse, retrieve, compose and anticipate; log each suggestion when a store is given."""

    def __init__(self, settings: Settings, *, store: Store | None = None,
                 retriever: Retriever | None = None) -> None:
        self.settings = settings
        self.store = store
        self.retriever = retriever or Retriever(settings)
        self._lock = threading.Lock()
        self._generation = -1
        self._composer: Composer | None = None
        self._anticipator: Anticipator | None = None
        self._analyzer: Analyzer | None = None
        self._correction_mark = CorrectionMark()
        self._next_corrections_poll = 0.0
        self._asked_together: dict[str, Counter[str]] = defaultdict(Counter)
        self._servable: dict[tuple[int, str, dt.date], set[str]] = {}
        # Optional LLM drafting (suggester/reply/llm.py): None keeps the composer's draft.
        self._llm: LLMDrafter | None = None
        if settings.llm_configured:
            from suggester.reply.llm import LLMDrafter

            self._llm = LLMDrafter(settings)
        self._chunks: dict[str, Chunk] = {}
        self._internal_text: ForbiddenText | None = None
        self._sentence_cache: dict[str, Any] = {}  # the composer's, by chunk content hash
        # Incidents raised from the inquiries (suggester/operations); they need the database.
        self.incidents = IncidentDesk(settings, store) if store is not None else None
        self.features = FeatureDesk(store, similarity=settings.feature_similarity) \
            if store is not None else None
        if store is not None:
            for record in store.recent_suggestions(limit=5000):
                self._remember_together([p.get("article_id", "") for p in record.passages])

    # -- the components follow the index generation -------------------------------------------

    def _components(self) -> tuple[Composer, Anticipator, Analyzer, _Snapshot]:
        with self._lock:
            # Taken under the lock, so the components returned were built from this very
            # snapshot and a response never mixes two versions of an article (the load test
            # caught scripts of one version cited next to passages of the next).
            snapshot = self.retriever.snapshot()
            if snapshot.generation != self._generation:
                chunks = list(snapshot.chunks.values())
                # The content cache: cached tokens make this 10 ms instead of 2.4 s of Kiwi
                # per generation, and the composer's sentence vectors are read through it.
                indexer = Indexer(self.settings, embedder=self.retriever.embedder)
                tokens = indexer.tokens_for(chunks)
                # Sentences of unchanged chunks keep their tokens across generations.
                live = {c.content_hash for c in chunks}
                self._sentence_cache = {h: v for h, v in self._sentence_cache.items()
                                        if h in live}
                self._composer = Composer(chunks, tokenizer=self.retriever.tokenizer,
                                          chunk_tokens=tokens,
                                          sentence_cache=self._sentence_cache,
                                          text_vectors=lambda texts, role: indexer.text_vectors(
                                              texts, role=role),
                                          budgets=_budgets(self.settings))
                self._anticipator = Anticipator(chunks)
                if self._analyzer is None:
                    # The mark first: a correction made meanwhile is learned twice, not never.
                    if self.store is not None:
                        self._correction_mark = self.store.correction_mark()
                    corrections = self.store.corrections() if self.store else []
                    self._analyzer = Analyzer(tokenizer=self.retriever.tokenizer,
                                              embedder=self.retriever.embedder, chunks=chunks,
                                              corrections=[(c[0], c[1]) for c in corrections],
                                              chunk_tokens=tokens)
                else:
                    self._analyzer.reload_chunks(chunks, tokens)
                if self._llm is not None:  # what the LLM drafts are checked against
                    self._chunks = dict(snapshot.chunks)
                    self._internal_text = ForbiddenText(
                        [c.text for c in chunks if c.internal],
                        [c.text for c in chunks if not c.internal])
                self._generation = snapshot.generation
            assert self._composer and self._anticipator and self._analyzer
            return self._composer, self._anticipator, self._analyzer, snapshot

    def warm_up(self) -> None:
        """Load now what the first suggestion would wait for (the first agent waited 2.8 s):
        the models and the index, the first Chroma query (~0.5 s), Kiwi (~2 s, shared with
        the board register) and the articles' tokenised sentences. Not a whole suggestion:
        with an LLM configured it would call the LLM."""
        composer, _, _, snapshot = self._components()
        self.retriever.search("배송은 언제 오나요?", snapshot=snapshot)
        to_formal("확인해 드릴게요.")
        composer.prepare()  # each article's first draft waited ~20 ms for Kiwi

    @property
    def analyzer(self) -> Analyzer:
        return self._components()[2]

    # -- suggestions ----------------------------------------------------------------------------

    def suggest(self, inquiry: Any, *, audience: str | None = None, channel: str = "chat",
                customer_name: str | None = None, order_id: str | None = None, k: int = 5,
                log: bool = True, article_id: str | None = None,
                on_token: Callable[[str], None] | None = None,
                as_of: dt.date | None = None) -> Suggestion:
        """The whole suggestion for one customer message (`on_token` streams an LLM draft).

        `article_id` drafts from that article instead of the first one (an agent's choice
        among `alternatives`); `as_of` (the order or event date) serves the rules in effect
        that day and says so in the draft."""
        started = time.perf_counter()
        inquiry = validate_inquiry(inquiry, self.settings.max_inquiry_chars)
        audience = _check_choice("audience", audience, ("buyer", "seller", "unknown"))
        channel = _check_choice("channel", channel, CHANNELS) or "chat"
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise InputError(f"k must be a whole number from 1 to {MAX_K}", code="invalid_k",
                             korean=f"k는 1부터 {MAX_K} 사이의 정수여야 합니다.")
        composer, anticipator, analyzer, snapshot = self._components()
        self._follow_corrections(analyzer)
        generation = snapshot.generation
        timings: dict[str, float] = {}
        day = as_of or dt.date.today()
        side, analysis, retrieval, vector = self._rank(inquiry, audience, k, analyzer,
                                                       snapshot, timings, day)
        if article_id is not None:
            retrieval = retrieval.choosing(article_id, k=k)
        mark = time.perf_counter()
        embed = self._question_embedder(inquiry, vector)
        apologise = bool(COMPANY_FAULT_FLAGS & set(analysis.flags)) or \
            analysis.primary_type in COMPANY_FAULT_TYPES
        draft = composer.compose(retrieval, channel=channel, sentiment=analysis.sentiment,
                                 apologise=apologise,
                                 known=Known(customer_name=customer_name, order_id=order_id),
                                 inquiry=inquiry, embed=embed, as_of=as_of,
                                 search=self._clause_search(snapshot, k, audience, side, day,
                                                            embed))
        anticipated = anticipator.anticipate(
            inquiry, retrieval, draft, asked_together=self._asked_together,
            allowed=self._servable_articles(side, snapshot, day))
        timings["compose_ms"] = _since(mark)
        if self._llm is not None:
            mark = time.perf_counter()
            draft = self._llm.rewrite(
                draft, retrieval=retrieval, analysis=analysis, chunks=self._chunks,
                internal=self._internal_text, on_token=on_token,
                known=[v for v in (customer_name, order_id) if v], inquiry=inquiry,
                keep=[as_of_marker(as_of)] if as_of and as_of_marker(as_of) in draft.text
                else [])
            timings["llm_ms"] = _since(mark)
        incident = self._incident_of(inquiry, analysis)
        if incident is not None:
            draft = self.incidents.draft(  # type: ignore[union-attr]
                incident, snapshot.chunks.values(), channel=channel,
                values=Known(customer_name=customer_name, order_id=order_id).values()) or draft
        feature = self._feature_request(vector, analysis)
        if feature is not None and (line := FeatureDesk.announcement(feature[1])):
            draft = announced(draft, line)
        timings["total_ms"] = _since(started)
        suggestion = Suggestion(id=uuid.uuid4().hex, inquiry=inquiry, channel=channel,
                                analysis=analysis, retrieval=retrieval, draft=draft,
                                anticipated=anticipated, timings_ms=timings,
                                generation=generation, chosen_by_agent=article_id is not None,
                                as_of=as_of, scheduled=scheduled_changes(
                                    snapshot, [c.article_id for c in draft.citations], day))
        if log and self.store is not None:
            suggestion.id = self.store.log_suggestion(
                inquiry=inquiry, channel=channel, audience=analysis.audience,
                analysis=analysis.to_dict(), passages=_cited(suggestion),
                grounded=draft.grounded, draft_text=draft.text, timings=timings,
                drafter={"source": draft.source,
                         "llm": draft.llm.to_dict() if draft.llm else None})
            self._observe_incident(suggestion)
            if feature is not None:
                self._observe_feature(suggestion, *feature)
        suggestion.incident = incident.to_dict() if incident is not None else None
        self._remember_together([c.article_id for c in draft.citations])
        return suggestion

    def rank(self, inquiry: str, *, audience: str | None = None,
             k: int = 5) -> tuple[Analysis, RetrievalResult]:
        """The analysis and the ranking a suggestion would use, without drafting, follow-ups,
        an LLM call or a log entry (what `suggester routes` needs of 221 questions)."""
        _, _, analyzer, snapshot = self._components()
        _, analysis, retrieval, _ = self._rank(inquiry, audience, k, analyzer, snapshot, {},
                                               dt.date.today())
        return analysis, retrieval

    def _rank(self, inquiry: str, audience: str | None, k: int, analyzer: Analyzer,
              snapshot: _Snapshot, timings: dict[str, float],
              day: dt.date) -> tuple[str, Analysis, RetrievalResult, Any]:
        """The side the articles are preferred for (known, or guessed from the words), the
        analysis, the re-ranked retrieval and the inquiry's query vector."""
        known = audience if audience in ("buyer", "seller") else None
        side = known or infer_audience(inquiry)
        mark = time.perf_counter()
        vector = self.retriever.embedder.query_vector(inquiry)
        timings["embed_ms"] = _since(mark)
        retrieval = self.retriever.search(inquiry, k=k, query_vector=vector, snapshot=snapshot,
                                          audience=known, prefer_audience=side, today=day)
        timings.update(retrieval.timings_ms)
        mark = time.perf_counter()
        analysis = analyzer.analyze(inquiry, audience=audience, query_vector=vector,
                                    retrieval=retrieval)
        # The analyzer also hears cue words, flags and agents' corrections: its types settle
        # ties between articles (dev golden set: MRR 0.869 → 0.878, hit@1 0.78 → 0.80).
        # A raised risk flag names the policy that applies: its article goes first, and counts
        # as grounded even when the wording is far from it (오픈카톡에서 흥정하자는데).
        flagged = analyzer.flagged_articles(analysis.flags)
        retrieval = retrieval.reranked({t.category: t.confidence
                                        for t in analysis.inquiry_types}, k=k,
                                       flagged=flagged).grounded_by(flagged)
        timings["analyze_ms"] = _since(mark)
        return side, analysis, retrieval, vector

    def _clause_search(self, snapshot: _Snapshot, k: int, audience: str | None, side: str,
                       day: dt.date, embed: Callable[[str], Any]) -> Callable[[str],
                                                                      RetrievalResult]:
        """The composer's retrieval for one question on its own, as the message's was made
        (same snapshot, audience, day), with the question's vector made once."""
        known = audience if audience in ("buyer", "seller") else None

        def search(text: str) -> RetrievalResult:
            return self.retriever.search(text, k=k, snapshot=snapshot, query_vector=embed(text),
                                         audience=known, prefer_audience=side, today=day)

        return search

    def _question_embedder(self, inquiry: str, vector: Any) -> Callable[[str], Any]:
        """The composer's e5 for the questions of `inquiry`: a question that is the whole
        message has its vector already; a clause of it is embedded once, on its own."""
        known = {inquiry.strip(): vector}

        def embed(text: str) -> Any:
            if text.strip() not in known:
                known[text.strip()] = self.retriever.embedder.query_vector(text)
            return known[text.strip()]

        return embed

    def record_feedback(self, suggestion_id: str, *, verdict: str, final_text: str | None = None,
                        corrected_types: list[str] | tuple[str, ...] = (),
                        author: str | None = None) -> int:
        """Store the verdict of `author`; a type correction teaches the analyzer at once."""
        store = self._feedback_store()
        feedback_id = store.record_feedback(suggestion_id, verdict=verdict,
                                            final_text=final_text,
                                            corrected_types=list(corrected_types),
                                            author=author)
        if corrected_types:
            record = store.get_suggestion(suggestion_id)
            self.analyzer.learn(record.inquiry_masked, list(corrected_types))
        return feedback_id

    def undo_correction(self, feedback_id: int, *, by: str) -> None:
        """Undo a type correction: the analyzer forgets it at once, and falls back on an
        earlier correction of the same inquiry if one is left."""
        store = self._feedback_store()
        undone = store.undo_correction(feedback_id, by=by)
        inquiry = store.get_suggestion(undone.suggestion_id).inquiry_masked
        _relearn(self.analyzer, store, inquiry)

    def _follow_corrections(self, analyzer: Analyzer) -> None:
        """Learn and forget what other processes' agents and editors corrected or undid.

        A correction teaches the analyzer of the process that received it at once; the other
        gunicorn workers and hosts catch up here, at most `CORRECTIONS_POLL_S` later.
        """
        now = time.monotonic()
        if self.store is None or now < self._next_corrections_poll:
            return
        self._next_corrections_poll = now + CORRECTIONS_POLL_S
        mark = self.store.correction_mark()
        if mark == self._correction_mark:
            return
        for inquiry in self.store.inquiries_corrected_since(self._correction_mark):
            _relearn(analyzer, self.store, inquiry)
        self._correction_mark = mark

    def _feedback_store(self) -> Store:
        if self.store is None:
            raise InputError("feedback needs a database", code="no_store",
                             korean="피드백을 저장할 데이터베이스가 설정되지 않았습니다.")
        return self.store

    # -- incidents (suggester/operations/incidents.py) ------------------------------------------

    def _incident_of(self, inquiry: str, analysis: Analysis) -> Incident | None:
        """The incident this inquiry reports; a database fault must not cost the suggestion."""
        if self.incidents is None:
            return None
        try:
            return self.incidents.matching(inquiry, analysis)
        except Exception:
            log.exception("incidents: could not look up the current incidents")
            return None

    def _observe_incident(self, suggestion: Suggestion) -> None:
        if self.incidents is None:
            return
        try:
            self.incidents.observe(suggestion.id, suggestion.inquiry, suggestion.analysis)
        except Exception:
            log.exception("incidents: could not count suggestion %s", suggestion.id)

    # -- feature requests (suggester/operations/features.py) -----------------------------------

    def _feature_request(self, vector: Any, analysis: Analysis) -> tuple[Any, Any] | None:
        """For a feature request (기능제안): its unit vector (the search's own query vector,
        not embedded again) and the nearest request group, None when there is none yet."""
        if self.features is None or analysis.primary_type != FEATURE_TYPE:
            return None
        vector = unit(vector, np.float32)  # stored as the group's centroid, as before
        try:
            return vector, self.features.nearest(vector)[0]
        except Exception:  # a request left ungrouped beats a duplicate group
            log.exception("features: could not look up the request groups")
            return None

    def _observe_feature(self, suggestion: Suggestion, vector: Any, group: Any) -> None:
        try:
            self.features.observe(  # type: ignore[union-attr]
                suggestion.id, suggestion.inquiry, vector, group)
        except Exception:
            log.exception("features: could not group suggestion %s", suggestion.id)

    def _servable_articles(self, side: str, snapshot: _Snapshot, day: dt.date) -> set[str]:
        """Articles this side may be shown on `day`; computed once per generation, side and
        day rather than over every chunk on every request."""
        key = (snapshot.generation, side, day)
        allowed = self._servable.get(key)
        if allowed is None:
            filters = Filters(audience=side if side in ("buyer", "seller") else None)
            allowed = {c.article_id for c in snapshot.chunks.values()
                       if filters.allows(c, key[2])}
            # Swapped whole, never edited in place: other threads may be reading the old one.
            # Kept: this generation's last few (side, day) pairs; `as_of` may name any day.
            kept = [(k, v) for k, v in self._servable.items() if k[0] == key[0]]
            self._servable = {**dict(kept[-SERVABLE_REMEMBERED:]), key: allowed}
        return allowed

    def _remember_together(self, article_ids: list[str]) -> None:
        distinct = [a for a in dict.fromkeys(article_ids) if a]
        for article in distinct:
            for other in distinct:
                if other != article:
                    self._asked_together[article][other] += 1


def scheduled_changes(snapshot: _Snapshot, article_ids: list[str],
                      day: dt.date) -> list[dict[str, str]]:
    """Cited articles that a published successor replaces after `day`, with a note for agents."""
    changes: dict[str, dict[str, str]] = {}
    for chunk in snapshot.chunks.values():
        if chunk.article_id in article_ids and chunk.article_id not in changes \
                and chunk.successor and chunk.retired_from > day.isoformat():
            successor = next((c for c in snapshot.chunks.values()
                              if c.article_id == chunk.successor), None)
            title = successor.title if successor else chunk.successor
            when = dt.date.fromisoformat(chunk.retired_from)
            changes[chunk.article_id] = {
                "article_id": chunk.article_id, "successor_id": chunk.successor,
                "successor_title": title, "effective_from": chunk.retired_from,
                "note": f"정책 변경 예정: {when.month}월 {when.day}일부터 '{title}' 문서가 "
                        f"'{chunk.title}' 대신 적용돼요."}
    return list(changes.values())


def _budgets(settings: Settings) -> Budgets:
    return Budgets(chat=settings.draft_chars_chat,
                   per_question=settings.draft_chars_per_question,
                   board=settings.draft_chars_board, phone=settings.draft_chars_phone)


def _cited(suggestion: Suggestion) -> list[dict[str, Any]]:
    return [{"article_id": c.article_id, "version": c.version, "chunk_id": c.chunk_id,
             "section": c.section} for c in suggestion.draft.citations]


def _check_choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value in (None, ""):
        return None
    if value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}",
                         code=f"invalid_{name}",
                         korean=f"{name} 값은 {', '.join(allowed)} 중 하나여야 합니다.")
    return value


def _since(mark: float) -> float:
    return (time.perf_counter() - mark) * 1000
