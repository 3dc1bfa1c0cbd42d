"""What counts as a missing value for the statistics: None or NaN."""

from __future__ import annotations


def is_missing(x: float | None) -> bool:
    """True for None and NaN, the two spellings of a missing reading.

    >>> [is_missing(v) for v in (None, float("nan"), 0.0, -1.5)]
    [True, True, False, False]
    """
    return x is None or x != x
