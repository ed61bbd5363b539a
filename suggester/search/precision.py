"""Compare scores at a stated precision, so last-bit float differences never reorder results.

Floats differ in the last bits between machines (another CPU's instruction set, another build
of the embedding engine or of BLAS) and between two orders of the same sum. So every score
that decides an order or a threshold is compared after rounding to SCORE_DECIMALS places, and
ties at that precision fall to a stable key: the score, then the article id, then the chunk id.
e5 cosines from two engine builds differ from the 7th decimal on; ranks and fused scores that
matter differ by far more than 1e-6.
"""

from __future__ import annotations

SCORE_DECIMALS = 6


def comparable(score: float) -> float:
    """`score` at the precision scores are compared at."""
    return round(float(score), SCORE_DECIMALS)
