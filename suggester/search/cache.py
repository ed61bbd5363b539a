"""A disk cache keyed by content hash, so unchanged text is never embedded or tokenized twice.

Embedding dominates indexing time (~23 ms a passage here), so every vector is kept by the hash
of the text it came from and the model that made it; BM25 tokens likewise by tokenizer version.
One SQLite file; safe to delete (it only costs time to rebuild).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL, hash TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, hash));
CREATE TABLE IF NOT EXISTS tokens (
    tokenizer TEXT NOT NULL, hash TEXT NOT NULL, tokens TEXT NOT NULL,
    PRIMARY KEY (tokenizer, hash));
"""


# Tokens are small and asked for again at every re-index (the BM25 index is rebuilt whole), so
# each process also keeps the ones it has seen: a one-article publish then reads no rows.
_TOKEN_MEMO: dict[tuple[str, str], list[str]] = {}


class ContentCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def vectors(self, model: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        rows = self._select("SELECT hash, vector FROM vectors WHERE model = ? AND hash IN ",
                            model, hashes)
        return {h: np.frombuffer(blob, dtype=np.float32) for h, blob in rows}

    def put_vectors(self, model: str, items: dict[str, np.ndarray]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                [(model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items()],
            )

    def tokens(self, tokenizer: str, hashes: Iterable[str]) -> dict[str, list[str]]:
        wanted = list(dict.fromkeys(hashes))
        found = {h: _TOKEN_MEMO[(tokenizer, h)] for h in wanted if (tokenizer, h) in _TOKEN_MEMO}
        missing = [h for h in wanted if h not in found]
        if missing:
            rows = self._select("SELECT hash, tokens FROM tokens WHERE tokenizer = ? AND "
                                "hash IN ", tokenizer, missing)
            loaded = {h: json.loads(text) for h, text in rows}
            _TOKEN_MEMO.update(((tokenizer, h), t) for h, t in loaded.items())
            found.update(loaded)
        return found

    def put_tokens(self, tokenizer: str, items: dict[str, list[str]]) -> None:
        _TOKEN_MEMO.update(((tokenizer, h), t) for h, t in items.items())
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO tokens VALUES (?, ?, ?)",
                [(tokenizer, h, json.dumps(t, ensure_ascii=False)) for h, t in items.items()],
            )

    def _select(self, sql: str, key: str, hashes: Iterable[str]) -> list[tuple]:
        hashes = list(dict.fromkeys(hashes))
        rows: list[tuple] = []
        for start in range(0, len(hashes), 500):  # stay under SQLite's variable limit
            batch = hashes[start:start + 500]
            marks = ",".join("?" * len(batch))
            rows += self._db.execute(f"{sql}({marks})", (key, *batch)).fetchall()
        return rows
