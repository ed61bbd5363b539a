"""EmbeddingGemma (or any ONNX sentence-embedding model) served through onnxruntime.

The directory holds what `make install-gemma` builds (scripts/export_embeddinggemma.py):
`model.onnx`, one graph from token ids to the final sentence embedding; `tokenizer.json` for
the `tokenizers` library; and `suggester-model.json` with the prompts, the special ids around a
text and the token window. A directory with only `model.onnx` (a graph returning the sentence
embedding, or token embeddings that are mean-pooled here) and `tokenizer.json` works too. No
torch at serve time: onnxruntime and tokenizers already come with chromadb.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

MANIFEST = "suggester-model.json"  # written by scripts/export_embeddinggemma.py
BATCH_SIZE = 8
DEFAULT_MAX_TOKENS = 512


class OnnxEmbedding:
    """Thread-safe sentence embedder over one onnxruntime session."""

    def __init__(self, directory: Path, *, query_prompt: str = "",
                 document_prompt: str = "") -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        from suggester.search.onnx_e5 import session_options

        manifest = _manifest(directory)
        self.model_name = str(manifest.get("name", directory.name))
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self._prefix: list[int] = list(manifest.get("prefix_ids", []))
        self._suffix: list[int] = list(manifest.get("suffix_ids", []))
        self._max_tokens = int(manifest.get("max_tokens", DEFAULT_MAX_TOKENS))
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        # A plain tokenizer.json adds its own special tokens; a manifest lists them instead.
        self._add_special = "prefix_ids" not in manifest
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        # e5's session options: no spin-waiting threads (under load they doubled the median
        # query, 154 → 91 ms on this shared machine), no arena holding the largest batch.
        self._session = onnxruntime.InferenceSession(
            str(directory / "model.onnx"), session_options(onnxruntime),
            providers=["CPUExecutionProvider"])
        self._pooled = self._session.get_outputs()[0].name == "sentence_embedding"
        self.dimensions = int(manifest.get("dimensions") or
                              self._session.get_outputs()[0].shape[-1])
        self._lock = threading.Lock()

    def token_ids(self, text: str) -> list[int]:
        """The ids the model sees for `text` (prompt included), cut to its window."""
        ids = self._tokenizer.encode(text, add_special_tokens=self._add_special).ids
        room = self._max_tokens - len(self._prefix) - len(self._suffix)
        return self._prefix + ids[:room] + self._suffix

    def query_vector(self, text: str) -> np.ndarray:
        """The query's unit vector, with the model's query prompt."""
        return self._embed([self.query_prompt + text])[0]

    def passage_vectors(self, texts: Sequence[str],
                        progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed passages with the document prompt; `progress(n)` is told after each batch."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        rows = [self.token_ids(self.document_prompt + t) for t in texts]
        # Batches of similar length pad less: the order is restored at the end.
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        out = np.zeros((len(rows), self.dimensions), dtype=np.float32)
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            out[batch] = self._run([rows[i] for i in batch])
            if progress:
                progress(len(batch))
        return out

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self._run([self.token_ids(t) for t in texts])

    def _run(self, rows: list[list[int]]) -> np.ndarray:
        ids, mask = padded(rows)
        feeds = {"input_ids": ids, "attention_mask": mask}
        wanted = {i.name for i in self._session.get_inputs()}
        if "token_type_ids" in wanted:
            feeds["token_type_ids"] = np.zeros_like(ids)
        with self._lock:
            output = self._session.run(None, {k: v for k, v in feeds.items() if k in wanted})[0]
        if not self._pooled:  # token embeddings: mean over the real tokens
            weights = mask[..., None].astype(np.float32)
            output = (output * weights).sum(axis=1) / weights.sum(axis=1)
        output = np.asarray(output, dtype=np.float32)
        return output / np.maximum(np.linalg.norm(output, axis=1, keepdims=True), 1e-12)


def padded(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids padded on the right into one batch, and the mask of the real tokens.

    The export script checks the ONNX graph on batches made here, so serving pads the same way.
    """
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return ids, mask


def _manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
