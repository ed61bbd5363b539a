"""ragas 0.4 metrics on the hybrid system, made safe for Korean, and the LLM-judged ones.

Without an LLM:

* ID-based context precision / recall (`IDBasedContextPrecision`, `IDBasedContextRecall`):
  the article ids of the hybrid top-k passages against the golden `relevant` ids.
* Non-LLM context recall (`NonLLMContextRecall`) of the reference reply's sentences in the
  retrieved passages. ragas compares with a normalised Levenshtein similarity over whole
  strings, which is character-based (so Korean is safe) but scores a 40-character sentence
  against a 400-character passage near 0 whatever they say; we pass a partial alignment
  instead (`KoreanPartialSimilarity`: the best-matching window, characters, no spaces).
* chrF between the draft and the reference reply (`CHRFScore`, sacrebleu's character n-gram
  F-score; word-based scores such as ROUGE tokenise on [a-z0-9]+ and see no Korean at all).
* Numeric faithfulness (`NumericFaithfulness`, ours, on ragas' metric interface): every draft
  sentence that states a number (days, hours, amounts, %, cm…) must have each of its numbers,
  with its unit, in the passages the draft cites.

With an LLM configured (`SUGGESTER_LLM_BASE_URL` and `SUGGESTER_LLM_MODEL` in the settings,
the endpoint that drafts replies) ragas' LLM-judged faithfulness and answer relevancy are
added, judged by that same endpoint; without one they are reported as skipped, never
estimated.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from suggester.evaluation.checks import sentences
from suggester.evaluation.metrics import mean

if TYPE_CHECKING:
    from suggester.settings import Settings

# ragas reports usage to its authors unless told not to; an evaluation must not phone home.
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

NO_LLM = "skipped (no LLM configured)"
# A judgement is not on an agent's clock, and a local server answers one request at a time
# while we send LLM_CONCURRENCY: give the judge far more time than a draft gets.
JUDGE_TIMEOUT_S = 300.0
JUDGE_MAX_TOKENS = 1024  # a verdict is short; a small model that rambles is cut off
# ragas' default: a reference sentence counts when > 0.5. On dev, reference sentences score
# above it against their own article's passages 65% of the time, against another's 4%.
CONTEXT_RECALL_THRESHOLD = 0.5
LLM_CONCURRENCY = 4

_UNITS = (r"영업일|일|시간|분|초|개월|달|주|년|원|만\s*원|천\s*원|%|퍼센트|회|번|건|개|점|"
          r"cm|mm|kg|g|세|등급|차")
_NUMBER = re.compile(rf"[±+]?\d[\d,]*(?:\.\d+)?\s*(?:{_UNITS})?")


@dataclass(frozen=True, kw_only=True)
class RagasSample:
    """What the ragas metrics read for one golden item."""

    item_id: str
    user_input: str
    reference: str
    relevant: list[str]
    retrieved_ids: list[str]
    retrieved_texts: list[str]
    response: str | None = None      # the draft, when suggestions ran
    cited_texts: list[str] | None = None
    answerable: bool = True


def numeric_facts(sentence: str) -> list[str]:
    """The numbers a sentence states, each with its unit, spaces removed."""
    return ["".join(m.group().split()).rstrip(",") for m in _NUMBER.finditer(sentence)]


def _contains_fact(fact: str, text: str) -> bool:
    # A number must not match inside a longer one: "3일" is not in "13일", "3" not in "30".
    after = r"(?![\d,.])" if fact[-1].isdigit() else ""
    return re.search(rf"(?<![\d,.]){re.escape(fact)}{after}", text) is not None


def numeric_support(response: str, contexts: Sequence[str]) -> tuple[int, int, list[str]]:
    """(supported, stated, unsupported sentences) for the number-stating draft sentences."""
    source = "".join("".join(c.split()) for c in contexts)
    stated = supported = 0
    unsupported = []
    for sentence in sentences(response):
        facts = numeric_facts(sentence)
        if not facts:
            continue
        stated += 1
        if all(_contains_fact(fact, source) for fact in facts):
            supported += 1
        else:
            unsupported.append(sentence)
    return supported, stated, unsupported


def partial_similarity(reference: str, response: str) -> float:
    """Similarity of the shorter text to its best-matching window in the longer one (0–1)."""
    from rapidfuzz import fuzz

    a, b = "".join(reference.split()), "".join(response.split())
    if not a or not b:
        return 0.0
    return fuzz.partial_ratio(a, b) / 100.0


def _metric_classes() -> dict[str, Any]:
    """Import ragas lazily (3 s) and build our two metric classes on its interfaces."""
    with warnings.catch_warnings():
        # ragas 0.4.3 points these at ragas.metrics.collections, which does not have them.
        warnings.simplefilter("ignore", DeprecationWarning)
        from ragas.metrics import (
            IDBasedContextPrecision,
            IDBasedContextRecall,
            NonLLMContextRecall,
            NonLLMStringSimilarity,
        )
    from ragas.metrics.collections import CHRFScore
    from ragas.metrics.collections.base import BaseMetric
    from ragas.metrics.result import MetricResult

    class KoreanPartialSimilarity(NonLLMStringSimilarity):
        """ragas' string similarity with a character-level partial alignment."""

        async def _single_turn_ascore(self, sample: Any, callbacks: Any) -> float:
            return partial_similarity(sample.reference or "", sample.response or "")

    class NumericFaithfulness(BaseMetric):
        """Share of number-stating draft sentences whose numbers the cited passages hold."""

        def __init__(self, name: str = "numeric_faithfulness", **kwargs: Any) -> None:
            super().__init__(name=name, **kwargs)

        async def ascore(self, response: str, retrieved_contexts: list[str]) -> Any:
            supported, stated, unsupported = numeric_support(response, retrieved_contexts)
            if not stated:
                return MetricResult(value=math.nan, reason="no sentence states a number")
            reason = "; ".join(unsupported) if unsupported else f"{stated}/{stated} supported"
            return MetricResult(value=supported / stated, reason=reason)

    return {
        "id_precision": IDBasedContextPrecision(), "id_recall": IDBasedContextRecall(),
        "context_recall": NonLLMContextRecall(
            _distance_measure=KoreanPartialSimilarity(), threshold=CONTEXT_RECALL_THRESHOLD),
        "chrf": CHRFScore(), "numeric": NumericFaithfulness(),
    }


def _llm_metrics(settings: Settings) -> dict[str, Any]:
    from openai import AsyncOpenAI
    from ragas.llms import llm_factory
    from ragas.metrics.collections import AnswerRelevancy, Faithfulness

    client = AsyncOpenAI(base_url=settings.llm_base_url.rstrip("/"),
                         api_key=settings.llm_api_key or "unused", max_retries=0,
                         timeout=max(JUDGE_TIMEOUT_S, settings.llm_timeout))
    llm = llm_factory(settings.llm_model, client=client, max_tokens=JUDGE_MAX_TOKENS)
    return {"faithfulness": Faithfulness(llm=llm),
            "answer_relevancy": AnswerRelevancy(llm=llm, embeddings=_e5_for_ragas(settings))}


def _e5_for_ragas(settings: Settings) -> Any:
    """Our e5 model behind ragas' embedding interface (answer relevancy compares questions)."""
    from ragas.embeddings.base import BaseRagasEmbedding

    from suggester.search.embedding import shared_embedder

    class E5ForRagas(BaseRagasEmbedding):
        def embed_text(self, text: str, **kwargs: Any) -> list[float]:
            return shared_embedder(settings).query_vector(text).tolist()

        async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
            return self.embed_text(text)

    return E5ForRagas()


def score_samples(samples: Sequence[RagasSample], settings: Settings | None = None,
                  ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per-item ragas scores (by item id) and the split's summary; the LLM-judged metrics
    only when `settings` configure an LLM."""
    try:
        metrics = _metric_classes()
    except ImportError as exc:  # sacrebleu / rapidfuzz are optional extras of ragas
        reason = f"skipped (missing package: {exc.name or exc})"
        return {}, {name: {"skipped": reason} for name in _NAMES}
    judge = settings if settings is not None and settings.llm_configured else None
    return asyncio.run(_score_all(samples, metrics, judge))


_NAMES = ("id_context_precision", "id_context_recall", "nonllm_context_recall", "chrf",
          "numeric_faithfulness", "faithfulness", "answer_relevancy")


async def _score_all(samples: Sequence[RagasSample], metrics: dict[str, Any],
                     judge: Settings | None = None,
                     ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    from ragas.dataset_schema import SingleTurnSample

    per_item: dict[str, dict[str, Any]] = {}
    for sample in samples:
        scores: dict[str, Any] = {}
        if sample.answerable:
            ids = SingleTurnSample(retrieved_context_ids=sample.retrieved_ids,
                                   reference_context_ids=sample.relevant)
            scores["id_context_precision"] = (
                await metrics["id_precision"].single_turn_ascore(ids)
                if sample.retrieved_ids else 0.0)
            scores["id_context_recall"] = await metrics["id_recall"].single_turn_ascore(ids)
            reference_sentences = [s for s in sentences(sample.reference) if len(s) >= 8]
            if reference_sentences and sample.retrieved_texts:
                scores["nonllm_context_recall"] = await metrics["context_recall"] \
                    .single_turn_ascore(SingleTurnSample(
                        retrieved_contexts=sample.retrieved_texts,
                        reference_contexts=reference_sentences))
            if sample.response is not None:
                result = await metrics["chrf"].ascore(reference=sample.reference,
                                                      response=sample.response)
                scores["chrf"] = result.value
        if sample.response and sample.cited_texts:
            result = await metrics["numeric"].ascore(response=sample.response,
                                                     retrieved_contexts=sample.cited_texts)
            scores["numeric_faithfulness"] = result.value
            if result.value < 1:
                scores["numeric_unsupported"] = result.reason
        per_item[sample.item_id] = {k: _clean(v) for k, v in scores.items()}
    summary = {name: _mean_of(per_item, name) for name in _NAMES[:5]}
    if not any(s.response is not None for s in samples):
        reason = "skipped (no drafts: suggester.service is not available)"
        summary["chrf"] = summary["numeric_faithfulness"] = {"skipped": reason}
    if judge is not None:
        summary.update(await _score_llm(samples, per_item, judge))
    else:
        summary["faithfulness"] = summary["answer_relevancy"] = {"skipped": NO_LLM}
    return per_item, summary


async def _score_llm(samples: Sequence[RagasSample], per_item: dict[str, dict[str, Any]],
                     settings: Settings) -> dict[str, Any]:
    judged = [s for s in samples if s.response and s.answerable]
    if not judged:
        reason = "skipped (no drafts to judge)"
        return {"faithfulness": {"skipped": reason}, "answer_relevancy": {"skipped": reason}}
    metrics = _llm_metrics(settings)
    gate = asyncio.Semaphore(LLM_CONCURRENCY)

    async def judge(sample: RagasSample) -> None:
        async with gate:
            contexts = sample.cited_texts or sample.retrieved_texts
            scores = per_item.setdefault(sample.item_id, {})
            # Each metric on its own: a judge that fails one may still manage the other.
            calls = {"faithfulness": lambda: metrics["faithfulness"].ascore(
                         user_input=sample.user_input, response=sample.response,
                         retrieved_contexts=contexts),
                     "answer_relevancy": lambda: metrics["answer_relevancy"].ascore(
                         user_input=sample.user_input, response=sample.response)}
            for name, call in calls.items():
                try:
                    scores[name] = _clean((await call()).value)
                except Exception as exc:  # noqa: BLE001 - a failed judgement is reported
                    message = " ".join(f"{type(exc).__name__}: {exc}".split())
                    scores[f"{name}_error"] = message[:300]

    await asyncio.gather(*(judge(s) for s in judged))
    summary = {}
    for name in ("faithfulness", "answer_relevancy"):
        result = summary[name] = _mean_of(per_item, name)
        errors = [per_item[s.item_id][f"{name}_error"] for s in judged
                  if f"{name}_error" in per_item.get(s.item_id, {})]
        if errors:  # say why, so a weak or slow judge is visible
            result["errors"] = len(errors)
            if "skipped" in result:
                result["skipped"] += f" ({len(errors)} judge errors; first: {errors[0][:100]})"
    return summary


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return float(value) if isinstance(value, int | float) else value


def _mean_of(per_item: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    values = [s[name] for s in per_item.values() if isinstance(s.get(name), float)]
    if not values:
        return {"skipped": "no item could be scored"}
    return {"value": mean(values), "n": len(values)}
