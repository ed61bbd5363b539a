"""Dense vectors from an OpenAI-compatible `/v1/embeddings` endpoint (`openai:NAME`).

vLLM, Ollama, TEI, llama.cpp's server or a hosted API: LlamaIndex's `OpenAILikeEmbedding`
speaks to all of them. The prompts are the model's own (settings embed_query_prompt and
embed_document_prompt), because an endpoint does not say which it was trained with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from suggester.errors import SettingsError

BATCH_SIZE = 32
TIMEOUT_SECONDS = 60.0


class EndpointEmbedding:
    """An embedding endpoint with the indexer's and retriever's interface."""

    def __init__(self, *, model_name: str, base_url: str, api_key: str = "",
                 query_prompt: str = "", document_prompt: str = "") -> None:
        from llama_index.embeddings.openai_like import OpenAILikeEmbedding

        self.model_name = model_name
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        # Local servers need no key, but the OpenAI client refuses an empty one.
        self._client = OpenAILikeEmbedding(model_name=model_name, api_base=base_url,
                                           api_key=api_key or "none", timeout=TIMEOUT_SECONDS,
                                           embed_batch_size=BATCH_SIZE)

    def query_vector(self, text: str) -> np.ndarray:
        """The query's unit vector, with the query prompt."""
        vector = self._answer(self._client.get_query_embedding, self.query_prompt + text)
        return _unit(np.asarray([vector], dtype=np.float32))[0]

    def passage_vectors(self, texts: Sequence[str],
                        progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed passages in batches; `progress(n)` is told after each batch."""
        out = []
        for start in range(0, len(texts), BATCH_SIZE):
            batch = [self.document_prompt + t for t in texts[start:start + BATCH_SIZE]]
            out.append(np.asarray(self._answer(self._client.get_text_embedding_batch, batch),
                                  dtype=np.float32))
            if progress:
                progress(len(batch))
        return _unit(np.vstack(out)) if out else np.zeros((0, 0), dtype=np.float32)

    def _answer(self, call: Callable[[Any], Any], texts: Any) -> Any:
        """The endpoint's answer, or a SettingsError that says what it answered instead of
        one list of numbers per text (LlamaIndex checks the shape)."""
        from pydantic import ValidationError

        try:
            return call(texts)
        except ValidationError as exc:
            raise SettingsError(
                f"the embedding endpoint for {self.model_name!r} did not answer one list of "
                "numbers per text. A server without pooling answers a vector per token: start "
                "llama.cpp's llama-server with `--pooling mean` (llama-cpp-python's server "
                "cannot pool a model whose GGUF declares no pooling), or use an embedding "
                f"model ({exc.error_count()} values of the answer were not numbers)") from exc


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Unit length, as Chroma's cosine space and the e5 vectors have."""
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
