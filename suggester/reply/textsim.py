"""Character-bigram overlap: a tokenizer-free "is this already said?" test for Korean text."""

from __future__ import annotations


def bigrams(text: str) -> set[str]:
    compact = "".join(text.split())
    return {compact[i:i + 2] for i in range(len(compact) - 1)}


def bigram_share(part: str, whole: str) -> float:
    """Share of `part`'s character bigrams that also occur in `whole` (1.0 for empty parts)."""
    grams = bigrams(part)
    return len(grams & bigrams(whole)) / len(grams) if grams else 1.0
