"""How unusual the latest subsequence is against the key's past ones: a streaming left discord.

The matrix profile (Yeh et al., "Matrix Profile I", ICDM 2016) gives each subsequence of length m
the z-normalised Euclidean distance to its nearest neighbour; a *left* discord (DAMP, Lu et al.,
KDD 2022) looks for that neighbour only in the past: a subsequence far from everything before it
is a shape never seen, even when every value in it is ordinary. Here the past is a window, so
memory per key is bounded, and only subsequences that end before the latest one begins are
neighbours (no trivial self-match).

With d² = 2m(1 − ρ), ρ the Pearson correlation of two subsequences, the statistic is 1 − max ρ
over the window (0: the shape was seen before; 1: uncorrelated with every past shape; up to 2).
Beside it, `amplitude`: the smallest Euclidean distance without z-normalisation, √(d²/m), from
the same dot products (d² = Σs² + Σq² − 2·QT): a beat of the usual shape but twice as tall is
no z-normalised discord. `lag` says where the subsequence is: readings back from the latest one
to its centre (a streaming statistic is known when its subsequence ends; DAMP, too, reports the
discord's place, not the moment it was found).

The length comes from the data: the dominant period, the lag of the highest autocorrelation peak
after its first zero crossing (FFT over the last `raw` readings), first estimated after raw/8
readings, again each time the readings seen double, then every `raw` readings, and changed
only when it moves by more than a quarter;
with no clear period (peak below 0.2) the length is `fallback`. A long period is seen through
block means: the series is averaged over blocks of k = ⌈period / `length`⌉ readings (DAMP and
the UCR archive's authors note that discords survive such downsampling), so a subsequence is
about `length` blocks and the window of `history` blocks spans about history/length periods
whatever the sampling rate. Between blocks the statistic of the last complete one stands.

Cost: the sliding dot products of the latest subsequence with every past one are updated as in
STOMP (Zhu et al., ICDM 2016), QT'[j] = QT[j] − e[j]·e[H−m] + e[j+m]·x, so a block costs about
a dozen numpy passes over `history` floats (O(history), never O(history·m)), i.e.
O(history / k) a reading; each period estimate (an FFT over `raw` values, every `raw` readings)
also recentres the values and recomputes the dot products exactly, so rounding never
accumulates for long. Memory: `raw` + 5·`history` floats (4,096 and 8,192: 229 kB pickled).
"""

from __future__ import annotations

import math

import numpy as np

#: A subsequence whose standard deviation is below this share of the window's largest is flat.
FLAT = 1e-6


def dominant_period(x: np.ndarray, shortest: int, longest: int) -> int | None:
    """The lag in [shortest, longest] of the highest autocorrelation peak after the first zero
    crossing, or None when that peak is below 0.2 (no clear period).

    >>> t = np.arange(2000)
    >>> dominant_period(np.sin(2 * np.pi * t / 50) + 0.1 * np.cos(t), 4, 400)
    50
    """
    x = x - x.mean()
    n = len(x)
    spectrum = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(spectrum.real**2 + spectrum.imag**2)[:n]
    if acf[0] <= 0.0:
        return None
    acf = acf / acf[0]
    below = np.flatnonzero(acf[: longest + 1] < 0.0)
    if not len(below):
        return None
    start = max(int(below[0]), shortest)
    if start > longest:
        return None
    lag = start + int(np.argmax(acf[start : longest + 1]))
    return lag if acf[lag] >= 0.2 else None


class LeftDiscord:
    """1 − the highest correlation of the latest subsequence with any earlier one in a window.

    >>> t = np.arange(3000)
    >>> wave = np.sin(2 * np.pi * t / 40)
    >>> wave[2500:2520] = np.sin(2 * np.pi * t[2500:2520] / 10)  # a wrong beat
    >>> ld = LeftDiscord(history=512, raw=1024)
    >>> scores = [ld.update(float(v)) for v in wave]
    >>> ld.k, ld.m, max(s for s in scores[2000:2490] if s is not None) < 0.01, scores[2519] > 0.3
    (1, 40, True, True)
    """

    def __init__(
        self,
        history: int = 4096,
        raw: int = 8192,
        length: int = 48,
        fallback: int = 32,
        cycle: float = 1.0,
    ):
        if not 8 <= length <= history // 8 or not 8 <= fallback <= history // 8 or raw < 64:
            raise ValueError("need 8 ≤ length, fallback ≤ history/8 and raw ≥ 64")
        self.history = history
        self.length = length
        self.fallback = fallback
        self.cycle = cycle  # the subsequence's share of the period
        self.raw = np.zeros(raw)  # the last `raw` readings, a ring
        self.seen = 0  # readings so far
        self.due = raw // 8  # readings after which the period is estimated next
        self.k = 0  # readings a block; 0 until the first estimate
        self.block = 0.0  # sum of the current block's readings
        self.filled = 0  # readings in the current block
        self.last: float | None = None  # the statistic of the last complete block
        self.amplitude: float | None = None  # its distance without z-normalisation
        # the blocks' window: values minus `ref`, oldest first; the first history − n are empty
        self.buf = np.zeros(history)
        self.n = 0
        self.ref = 0.0
        self.m = 0  # the subsequence length, in blocks
        self.qt = np.zeros(0)  # dot products of the latest subsequence with each start
        self.inv = np.zeros(0)  # 1/σ and μ/σ of each start's subsequence (0 where flat)
        self.musig = np.zeros(0)
        self.ss = np.zeros(0)  # each start's subsequence's sum of squares (values minus `ref`)
        self.flat = 0.0  # a σ at most this is flat
        self.sum = self.sumsq = 0.0  # of the latest subsequence
        self.steps = 0  # blocks since the dot products were computed exactly

    def update(self, x: float) -> float | None:
        """Learn reading x, then the statistic of the latest complete subsequence (None while
        warming up)."""
        size = len(self.raw)
        self.raw[self.seen % size] = x
        self.seen += 1
        if self.k:
            self.block += x
            self.filled += 1
            if self.filled == self.k:
                self._step(self.block / self.k)
                self.block, self.filled = 0.0, 0
        if self.seen >= self.due:
            self._estimate()
        return self.last

    def _estimate(self) -> None:
        """The period from the raw readings; on a new block size the window is rebuilt."""
        size = len(self.raw)
        self.due = self.seen + min(self.seen, size)
        held = min(self.seen, size)
        raw = np.roll(self.raw, -(self.seen % size))[size - held :]
        period = dominant_period(raw, 4, held // 3)
        if period is None:
            k, m = 1, self.fallback
        else:
            span = period * self.cycle
            k = max(1, math.ceil(span / self.length))
            m = max(8, round(span / k))
        if self.k and abs(k * m - self.k * self.m) <= self.k * self.m / 4:
            self._exact()
            return
        self.k, self.m = k, m
        blocks = held // k
        means = raw[held - blocks * k :].reshape(blocks, k).mean(axis=1)[-self.history :]
        self.n = len(means)
        self.buf[:] = 0.0
        self.buf[self.history - self.n :] = means
        self.ref = 0.0
        self.block, self.filled = 0.0, 0
        self._exact()
        self.last = self._statistic()

    def _exact(self) -> None:
        """Recentre the window, then every start's dot product, mean and deviation afresh."""
        h, n, m = self.history, self.n, self.m
        self.steps = 0
        held = self.buf[h - n :]
        centre = float(held.mean()) if n else 0.0
        self.ref += centre
        held -= centre
        windows = np.lib.stride_tricks.sliding_window_view(self.buf, m)
        self.qt = windows @ self.buf[h - m :]
        mu, sig = windows.mean(axis=1), windows.std(axis=1)
        self.flat = FLAT * (float(sig[h - n :].max()) if n >= m else 0.0) + 1e-300
        solid = sig > self.flat
        self.inv = np.where(solid, 1.0 / np.where(solid, sig, 1.0), 0.0)  # 0: a flat start
        self.musig = mu * self.inv
        squares = np.concatenate(([0.0], np.cumsum(self.buf * self.buf)))
        self.ss = squares[m:] - squares[:-m]
        latest = self.buf[h - m :]
        self.sum, self.sumsq = float(latest.sum()), float(latest @ latest)

    def _step(self, value: float) -> None:
        """A complete block joins the window (STOMP's update); its statistic becomes `last`."""
        h, m, buf = self.history, self.m, self.buf
        v = value - self.ref
        old = float(buf[h - m])
        qt = self.qt
        qt -= buf[: h - m + 1] * old
        qt[:-1] += buf[m:] * v
        qt[-1] += v * v
        buf[:-1] = buf[1:]
        buf[-1] = v
        self.n = min(self.n + 1, h)
        self.steps += 1
        if self.steps >= h:
            self._exact()
        else:  # the starts shift by one; the latest subsequence joins at the end
            self.sum += v - old
            self.sumsq += v * v - old * old
            mean = self.sum / m
            sig = max(self.sumsq / m - mean * mean, 0.0) ** 0.5
            inv = 1.0 / sig if sig > self.flat else 0.0
            self.inv[:-1] = self.inv[1:]
            self.musig[:-1] = self.musig[1:]
            self.inv[-1], self.musig[-1] = inv, mean * inv
            self.ss[:-1] = self.ss[1:]
            self.ss[-1] = self.sumsq
        self.last = self._statistic()

    def _statistic(self) -> float | None:
        """1 − max correlation with the subsequences that end before the latest one begins; sets
        `amplitude`, the smallest Euclidean distance to them without z-normalisation (per value:
        √(d²/m)), which sees a beat too large or too small that z-normalisation hides."""
        h, m, n = self.history, self.m, self.n
        first, last = h - n, h - 2 * m  # starts of held, non-overlapping past subsequences
        if last - first < m:
            self.amplitude = None
            return None
        qt = self.qt[first : last + 1]
        # d²_j = Σs_j² + Σq² − 2·QT_j: shifting both by `ref` changes nothing
        nearest = float((self.ss[first : last + 1] - qt - qt).min()) + self.sumsq
        self.amplitude = math.sqrt(max(nearest, 0.0) / m)
        inv_q = self.inv[-1]
        if inv_q == 0.0:  # a flat subsequence matches only flat ones
            return 0.0 if bool((self.inv[first : last + 1] == 0.0).any()) else 1.0
        mu_q = self.musig[-1] / inv_q
        # ρ_j = (QT_j/m − μ_j·μ_q) / (σ_j·σ_q); a flat start has 1/σ_j = 0, so ρ_j = 0
        best = (qt * self.inv[first : last + 1] - (m * mu_q) * self.musig[first : last + 1]).max()
        return float(1.0 - min(float(best) * inv_q / m, 1.0))

    @property
    def lag(self) -> int:
        """Readings from the latest one back to the centre of the subsequence `last` is about
        (where a discord is: a streaming statistic is known only once its subsequence ends)."""
        return self.filled + (self.k * self.m) // 2
