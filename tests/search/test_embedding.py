"""The e5 embedder: query vectors come from one model window, however long the message."""

from __future__ import annotations

import numpy as np

from suggester.search.embedding import MAX_QUERY_TOKENS, shared_embedder


def test_a_long_query_is_embedded_from_its_first_window():
    # Found by fuzzing /api/suggest: 4,000 emoji were eight windows and up to a minute of work.
    embedder = shared_embedder()
    count = embedder._model.token_count  # type: ignore[attr-defined]
    text = "😀" * 4000
    window = embedder._first_window(text)
    assert text.startswith(window) and count(window, True) <= MAX_QUERY_TOKENS
    assert count(text[:len(window) + 1], True) > MAX_QUERY_TOKENS
    assert np.allclose(embedder.query_vector(text), embedder.query_vector(window))


def test_a_short_query_is_embedded_whole():
    embedder = shared_embedder()
    assert embedder._first_window("환불 언제 돼요?") == "환불 언제 돼요?"
