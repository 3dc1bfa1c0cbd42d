"""`math.fsum` of many short rows at once: the correctly rounded sum of each row, bit for bit.

`math.fsum` returns the float nearest the exact sum (ties to even). For a whole batch of rows
we compute, with numpy, an error-free transformation: Knuth's TwoSum along each row turns it
into its float sum `p` and the exact rounding errors `e`, so that `sum(row) == p + sum(e)`
exactly. `r = fl(p + fl(sum(e)))` and its own exact error `d` (TwoSum again) then give
`sum(row) == r + d + δ`, where `δ` (the error of summing `e` in floats) is bounded by
`(n-2)·u·sum|e|`. When `|d| + bound(δ)` is below half the gap between `r` and its neighbours,
`r` is the nearest float to the exact sum: the answer, certified. Rows it cannot certify (an
exact sum within a hair of a midpoint between two floats, zero, tiny or huge sums, overflow)
are summed by `math.fsum` itself, so every row's result is `math.fsum`'s.

>>> import math
>>> rows = np.array([[0.1] * 10, [1e16, 1.0, -1e16, 0.5, 0, 0, 0, 0, 0, 0]])
>>> correctly_rounded_sums(rows).tolist() == [math.fsum(r) for r in rows.tolist()]
True
"""

from __future__ import annotations

import math

import numpy as np

#: Below this many rows a Python loop of `math.fsum` is cheaper than the vector passes.
FEW_ROWS = 24
_U2 = 2.0**-52  # twice the unit roundoff
_TINY = 2.0**-1000  # covers underflow in the bound; certifies nothing near the subnormals
_HUGE = 2.0**1000  # sums this large are left to fsum (its overflow rules are its own)


def correctly_rounded_sums(block: np.ndarray) -> np.ndarray:
    """`[math.fsum(row) for row in block]` (float64, shape `(m, n)`), as an array."""
    m = len(block)
    if m < FEW_ROWS or block.shape[1] < 2:
        return np.array([math.fsum(row) for row in block.tolist()], dtype=np.float64)
    with np.errstate(all="ignore"):  # overflow becomes inf or NaN, which is never certified
        r, sure = _certified(block)
    if sure.all():
        return r
    out = r.copy()
    doubt = np.flatnonzero(~sure)
    out[doubt] = [math.fsum(row) for row in block[doubt].tolist()]
    return out


def _certified(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's candidate sum, and whether it is certainly the correctly rounded one."""
    m, n = block.shape
    p = block[:, 0].copy()
    errors = np.empty((m, n - 1))
    for i in range(1, n):  # TwoSum(p, x): s = fl(p + x) and its exact error
        x = block[:, i]
        s = p + x
        z = s - p
        errors[:, i - 1] = (p - (s - z)) + (x - z)
        p = s
    e = errors.sum(axis=1)
    bound = np.abs(errors).sum(axis=1) * (n * _U2) + _TINY
    r = p + e
    z = r - p
    d = (p - (r - z)) + (e - z)  # r + d == p + e exactly
    size = np.abs(r)
    gap = np.spacing(size)
    power_of_two = np.frexp(size)[0] == 0.5  # the gap below r is half the gap above
    half = np.where(power_of_two, gap * 0.25, gap * 0.5)
    sure = (np.abs(d) + bound) * (1.0 + 4 * _U2) < half
    sure &= (size > _TINY * 2.0**60) & (size < _HUGE) & np.isfinite(bound)
    return r, sure
