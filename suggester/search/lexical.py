"""Korean lexical retrieval: Kiwi morphemes into a bm25s index that is saved to disk.

Particles, endings and punctuation carry no topic, so only content morphemes are kept
(환불은 / 환불이 / 환불을 all become 환불). Kiwi splits unspaced chat text by itself
(택배가안와요 → 택배 / 안 / 오), which is the common spelling error in chat. A number
followed by its unit is also kept whole (3영업일), because policies are told apart by them.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path

import bm25s
import numpy as np

from suggester.search.precision import SCORE_DECIMALS

# bm25s sets its own logger to DEBUG when imported, so every index build printed a line
# wherever it was imported after the CLI had set the log level.
logging.getLogger("bm25s").setLevel(logging.WARNING)

TOKENIZER_VERSION = "kiwi-content-v3"  # v3: no multi-word dictionary
CONTENT_TAGS = frozenset({
    "NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "MAG", "XR", "SL", "SH", "SN", "W_URL",
    "W_EMAIL", "W_HASHTAG",
})
TOKENS_REMEMBERED = 1024  # texts (a few MiB): a suggestion tokenises about ten
_UNIT_TAGS = frozenset({"NNG", "NNB"})
TOPIC_TAGS = frozenset({"NNG", "NNP", "SL", "SH"})

# Customers' words for what the KB names otherwise. Applied to articles and queries alike, so
# it only ever joins spellings; kept to common chat vocabulary, never to match one inquiry.
CHAT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "짝퉁": ("가품",), "가짜": ("가품",), "이미테이션": ("가품",), "레플": ("가품",),
    "레플리카": ("가품",), "진품": ("정품",), "적립금": ("포인트",), "택배비": ("배송비",),
    "어플": ("앱",), "어플리케이션": ("앱",), "환급": ("환불",), "반송": ("반품",),
    "카톡": ("카카오톡",), "폰": ("휴대폰",), "핸드폰": ("휴대폰",), "배달": ("배송",),
    "잠수": ("연락", "두절"), "송금": ("이체",), "치수": ("사이즈",), "퍼센트": ("%",),
}
_WORD = re.compile(r"\w+")
_IDS_FILE = "chunk_ids.json"


class KiwiTokenizer:
    """Content morphemes of Korean text; thread-safe, loaded once per process."""

    version = TOKENIZER_VERSION

    def __init__(self) -> None:
        from kiwipiepy import Kiwi

        # Without the multi-word dictionary (Wikipedia's names of several words, such as
        # "데이비드 코퍼필드") Kiwi holds ~180 MiB less, and every KB passage and golden
        # inquiry gets the same tokens.
        self._kiwi = Kiwi(load_multi_dict=False)
        self._lock = threading.Lock()
        # One suggestion tokenises the message five to seven times (retrieval, analyzer,
        # composer) and the first article's passage once: ~3 ms of Kiwi each time again.
        self._memo = functools.lru_cache(maxsize=TOKENS_REMEMBERED)(self._tokens)

    def __call__(self, text: str) -> list[str]:
        return self.tokenize(text)

    def morphemes(self, text: str) -> list:  # -> list[kiwipiepy.Token]
        """Kiwi's analysis of `text`, every morpheme with its tag and position."""
        with self._lock:
            return self._kiwi.tokenize(text)

    def join(self, morphemes: Sequence[tuple[str, str]]) -> str:
        """Kiwi's spelling of (form, tag) morphemes, conjugated (되 + 어요 → 돼요)."""
        with self._lock:
            return self._kiwi.join(morphemes)

    def topic_words(self, text: str) -> list[str]:
        """Only the nouns and foreign words: what a question is about, not how it is phrased."""
        return self.tokenize(text, tags=TOPIC_TAGS)

    def tokenize(self, text: str, tags: frozenset[str] = CONTENT_TAGS) -> list[str]:
        return list(self._memo(text, tags))

    def _tokens(self, text: str, tags: frozenset[str]) -> tuple[str, ...]:
        return tuple(_content(self.morphemes(unicodedata.normalize("NFC", text)), tags))

    def tokenize_many(self, texts: Sequence[str]) -> list[list[str]]:
        """`tokenize` of each text, Kiwi's worker threads sharing them out (an index's
        chunks: one text at a time kept a cold index's BM25 step on one core)."""
        normalised = [unicodedata.normalize("NFC", text) for text in texts]
        with self._lock:
            analysed = list(self._kiwi.tokenize(normalised))
        return [_content(morphemes, CONTENT_TAGS) for morphemes in analysed]


def _content(morphemes: Sequence, tags: frozenset[str]) -> list[str]:
    """The content morphemes' forms, chat synonyms joined, a number kept with its unit."""
    tokens: list[str] = []
    previous = None
    for morpheme in morphemes:
        tag = morpheme.tag.split("-")[0]  # Kiwi marks irregular verbs as VV-I, VV-R
        form = morpheme.form.lower()
        if previous is not None and previous.tag == "SN" and form in ("%", "프로"):
            tag, form = "NNB", "%"  # 5% = 5프로 = 5퍼센트
        if tag in tags:
            tokens.extend(CHAT_SYNONYMS.get(form, (form,)))
        if previous is not None and previous.tag == "SN" and tag in _UNIT_TAGS \
                and previous.end == morpheme.start:
            tokens.append(previous.form + form)
        previous = morpheme
    return tokens


def whitespace_tokens(text: str) -> list[str]:
    """The baseline: lower-cased words split on spaces and punctuation, particles attached."""
    return _WORD.findall(unicodedata.normalize("NFC", text).lower())


_shared: KiwiTokenizer | None = None
_shared_lock = threading.Lock()


def shared_tokenizer() -> KiwiTokenizer:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = KiwiTokenizer()
        return _shared


class LexicalIndex:
    """A bm25s index over token lists, addressed by chunk id."""

    def __init__(self, chunk_ids: Sequence[str], model: bm25s.BM25 | None) -> None:
        self.chunk_ids = list(chunk_ids)
        self._model = model
        self._position = {chunk_id: i for i, chunk_id in enumerate(self.chunk_ids)}
        # Each position's place in chunk-id order: equal scores are returned in that order.
        self._id_order = np.argsort(np.argsort(np.array(self.chunk_ids, dtype=object),
                                               kind="stable"), kind="stable")

    @classmethod
    def build(cls, chunk_ids: Sequence[str], token_lists: Sequence[list[str]]) -> LexicalIndex:
        if not chunk_ids:
            return cls([], None)
        model = bm25s.BM25()
        # An empty document would break bm25s' vocabulary; a placeholder token keeps positions.
        model.index([tokens or ["\x00"] for tokens in token_lists], show_progress=False)
        return cls(chunk_ids, model)

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def search(self, tokens: list[str], k: int) -> list[tuple[str, float]]:
        """The best `k` chunks for the query tokens, best first; zero scores are dropped.

        Scores are compared at SCORE_DECIMALS and equal ones fall in chunk-id order (bm25s'
        own top-k leaves the order of equal scores, and which of them make the cut, open)."""
        if self._model is None or not tokens:
            return []
        scores = np.round(self.scores(tokens).astype(np.float64), SCORE_DECIMALS)
        matching = np.flatnonzero(scores > 0)
        order = matching[np.lexsort((self._id_order[matching], -scores[matching]))][:k]
        return [(self.chunk_ids[i], float(scores[i])) for i in order]

    def unseen_share(self, tokens: list[str]) -> float:
        """IDF-weighted share of the query's tokens that appear nowhere in the index.

        Customers asking about something the KB does not cover use words it never uses
        (채용, 세탁, 해외배송): this is the strongest "no grounded answer" signal we measured.
        """
        if self._model is None or not tokens:
            return 1.0 if tokens else 0.0
        return self._weighted_share(tokens, lambda documents: len(documents) == 0)

    def unseen(self, tokens: list[str]) -> list[str]:
        """The query's distinct tokens that appear nowhere in the index, in the query's order
        (what an agent is told when an inquiry is held: "주차장", "채용")."""
        if self._model is None:
            return list(dict.fromkeys(tokens))
        return [t for t in dict.fromkeys(tokens) if t not in self._model.vocab_dict]

    def covered_share(self, tokens: list[str], chunk_ids: set[str]) -> float:
        """IDF-weighted share of the query's tokens that at least one of `chunk_ids` uses.

        Measured on the top article: an inquiry the KB covers finds its rare words in the
        article it ranks first, while an uncovered one (수선, 보관) borrows only common ones.
        """
        if self._model is None or not tokens:
            return 0.0 if tokens else 1.0
        wanted = {self._position[c] for c in chunk_ids if c in self._position}
        return self._weighted_share(tokens, lambda documents: bool(wanted.intersection(
            documents.tolist())))

    def _weighted_share(self, tokens: list[str],
                        counts: Callable[[np.ndarray], bool]) -> float:
        """IDF-weighted share of the distinct tokens whose documents satisfy `counts`."""
        indptr = self._model.scores["indptr"]
        indices = self._model.scores["indices"]
        total = len(self.chunk_ids)
        weights, counted = [], []
        # Sorted and summed exactly: a set's order changes with each process's string hashes.
        for token in sorted(set(tokens)):
            column = self._model.vocab_dict.get(token)
            documents = (indices[0:0] if column is None
                         else indices[indptr[column]:indptr[column + 1]])
            weight = math.log((total + 1) / (len(documents) + 0.5))
            weights.append(weight)
            counted.append(weight if counts(documents) else 0.0)
        whole = math.fsum(weights)
        return math.fsum(counted) / whole if whole else 0.0

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every chunk, in `chunk_ids` order."""
        if self._model is None:
            return np.zeros(0, dtype=np.float32)
        known = [t for t in tokens if t in self._model.vocab_dict]
        if not known:
            return np.zeros(len(self.chunk_ids), dtype=np.float32)
        return np.asarray(self._model.get_scores(known), dtype=np.float32)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self._model is not None:
            self._model.save(str(directory), show_progress=False)
        (directory / _IDS_FILE).write_text(json.dumps(self.chunk_ids, ensure_ascii=False),
                                           encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        ids = json.loads((directory / _IDS_FILE).read_text(encoding="utf-8"))
        if not ids:
            return cls([], None)
        model = bm25s.BM25.load(str(directory), show_progress=False)
        return cls(ids, model)
