"""Market signals on pandas Series: Wilder RSI, MACD, advance-decline divergence.

All functions are pure, take Series indexed by bar (usually daily dates) and return Series
or DataFrames on the same index. Leading NaNs (e.g. before data starts) are allowed; a NaN
after the first valid value raises ValueError - fill or drop gaps explicitly upstream.
Warm-up bars, where an indicator is not defined yet, are NaN (or 0 for event Series).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = [
    "rsi",
    "ema",
    "macd",
    "ad_line",
    "ad_divergence",
    "ad_divergence_last",
    "rsi_last",
    "macd_last",
    "crossings",
    "hist_turns",
]


def _check(x: pd.Series, name: str) -> pd.Series:
    if not isinstance(x, pd.Series):
        raise TypeError(f"{name} must be a pandas Series, got {type(x).__name__}")
    s = pd.to_numeric(x, errors="raise").astype(float)
    valid = s.notna().to_numpy()
    if valid.any():
        first = int(np.argmax(valid))
        if not valid[first:].all():
            raise ValueError(f"{name} has NaN after its first valid value; fill or drop gaps")
    if np.isinf(s.to_numpy()).any():
        raise ValueError(f"{name} contains inf")
    return s


def _values(x: pd.Series, name: str) -> np.ndarray:
    """`_check(x, name).to_numpy(dtype=float)`: the same checks (and errors), with a fast path
    for a float64 Series (the daily bars' columns)."""
    if not isinstance(x, pd.Series) or x.dtype != np.float64:
        out: np.ndarray = _check(x, name).to_numpy(dtype=float)
        return out
    v: np.ndarray = x.to_numpy()
    valid = ~np.isnan(v)
    if valid.any():
        first = int(np.argmax(valid))
        if not valid[first:].all():
            raise ValueError(f"{name} has NaN after its first valid value; fill or drop gaps")
    if np.isinf(v).any():
        raise ValueError(f"{name} contains inf")
    return v


def _period(n: int, name: str, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {n!r}")
    return int(n)


def _seeded(x: pd.Series, n: int, alpha: float) -> pd.Series:
    """Recursive average y_t = (1 - alpha) y_{t-1} + alpha x_t, seeded at bar n-1 of the
    valid data with the simple mean of its first n values (Wilder / StockCharts style)."""
    out = pd.Series(np.nan, index=x.index, dtype=float)
    valid = x.notna().to_numpy()
    if valid.sum() < n:
        return out
    p0 = int(np.argmax(valid))
    seed_at = p0 + n - 1
    vals = x.to_numpy(dtype=float).copy()
    vals[:seed_at] = np.nan
    vals[seed_at] = x.iloc[p0 : p0 + n].mean()
    fast = _ewm(vals.tolist(), alpha)
    seeded = (pd.Series(vals, index=x.index).ewm(alpha=alpha, adjust=False).mean()
              if fast is None else pd.Series(fast, index=x.index))
    out.iloc[seed_at:] = seeded.iloc[seed_at:]
    return out


def _ewm(vals: list[float], alpha: float) -> list[float] | None:
    """`pd.Series(vals).ewm(alpha=alpha, adjust=False).mean()` as plain floats: the same
    operations in the same order as pandas' own loop (so the same bits; a test checks),
    without its per-call cost (most of a daily signal's time). Leading NaNs stay NaN; None
    when a NaN follows a value (pandas' gap rule is left to pandas)."""
    f = 1.0 - alpha
    out: list[float] = []
    w = math.nan
    for cur in vals:
        if w == w:  # not NaN (the test pandas writes)
            if cur != cur:
                return None
            if w != cur:  # pandas skips a constant series' update (no rounding drift)
                w = (f * w + alpha * cur) / (f + alpha)
        elif cur == cur:
            w = cur
        out.append(w)
    return out


def rsi(close: pd.Series, n: int = 14) -> pd.Series:
    """Wilder's RSI (0-100): average gain/loss seeded with the simple mean of the first n
    changes, then smoothed with alpha = 1/n. First value at bar n (0-based, of valid data).

    100 when there were no losses over the window, 0 with no gains, 50 when flat.
    """
    n = _period(n, "n")
    c = _check(close, "close")
    delta = c.diff()
    gain = delta.clip(lower=0.0)
    loss = (-delta).clip(lower=0.0)
    avg_gain = _seeded(gain, n, 1.0 / n)
    avg_loss = _seeded(loss, n, 1.0 / n)
    total = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 100.0 * avg_gain / total
    out = out.where(~((total == 0.0) & avg_gain.notna()), 50.0)
    out.name = f"rsi{n}"
    return out


def ema(x: pd.Series, n: int) -> pd.Series:
    """Exponential moving average, alpha = 2/(n+1), seeded with the SMA of the first n values."""
    n = _period(n, "n")
    return _seeded(_check(x, "x"), n, 2.0 / (n + 1.0))


def macd(close: pd.Series, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    """MACD line (EMA fast - EMA slow), its signal line (EMA of the MACD line) and the
    histogram (MACD - signal). Columns: ``macd``, ``signal``, ``hist``."""
    fast, slow, signal = _period(fast, "fast"), _period(slow, "slow"), _period(signal, "signal")
    if fast >= slow:
        raise ValueError(f"fast ({fast}) must be shorter than slow ({slow})")
    c = _check(close, "close")
    line = ema(c, fast) - ema(c, slow)
    sig = _seeded(line, signal, 2.0 / (signal + 1.0))
    return pd.DataFrame({"macd": line, "signal": sig, "hist": line - sig}, index=c.index)


def hist_turns(hist: pd.Series) -> pd.Series:
    """+1 where the series turns up (rises after not rising), -1 where it turns down, else 0.

    For a MACD histogram, +1 is momentum turning bullish (relief for a tested put side) and
    -1 momentum turning bearish (relief for a tested call side).
    """
    h = _check(hist, "hist")
    d = h.diff()
    prev = d.shift(1)
    up = (d > 0) & (prev <= 0)
    down = (d < 0) & (prev >= 0)
    return (up.astype(int) - down.astype(int)).rename("turn")


def crossings(series: pd.Series, level: float) -> pd.Series:
    """+1 on the bar the series crosses up through ``level`` (prev < level <= now), -1 on a
    cross down (prev > level >= now), else 0. E.g. ``crossings(rsi(spx), 70)``."""
    s = _check(series, "series")
    prev = s.shift(1)
    up = (prev < level) & (s >= level)
    down = (prev > level) & (s <= level)
    return (up.astype(int) - down.astype(int)).rename("cross")


def ad_line(advances: pd.Series, declines: pd.Series) -> pd.Series:
    """Cumulative advance-decline line: running sum of (advancing - declining issues)."""
    a, d = _check(advances, "advances"), _check(declines, "declines")
    if not a.index.equals(d.index):
        raise ValueError("advances and declines must share the same index")
    return (a - d).cumsum().rename("ad_line")


def ad_divergence(close: pd.Series, ad: pd.Series, n: int = 20) -> pd.Series:
    """Advance-decline divergence over an n-bar window (including the current bar).

    -1 (bearish): ``close`` makes an n-bar high (>= the highest of the previous n-1 closes)
       while the A/D line stays below the highest of its previous n-1 values - breadth fails
       to confirm the new high.
    +1 (bullish): the mirror case - an n-bar low in ``close`` with the A/D line above the
       lowest of its previous n-1 values.
    0 otherwise, and during the first n-1 bars. Inputs are aligned on their common index.
    """
    n = _period(n, "n", minimum=2)
    c, a = _check(close, "close").align(_check(ad, "ad"), join="inner")
    c_hi = c.shift(1).rolling(n - 1, min_periods=n - 1).max()
    c_lo = c.shift(1).rolling(n - 1, min_periods=n - 1).min()
    a_hi = a.shift(1).rolling(n - 1, min_periods=n - 1).max()
    a_lo = a.shift(1).rolling(n - 1, min_periods=n - 1).min()
    bearish = (c >= c_hi) & (a < a_hi)
    bullish = (c <= c_lo) & (a > a_lo)
    return (bullish.astype(int) - bearish.astype(int)).rename("ad_divergence")


# the last `rsi_last` answered on plain floats: (n, k, its closes, the last k average gains,
# the last k average losses). A daily signal asks of the same closes plus one bar each day: the
# averages are recursive, so they go on from these (the same operations on the same numbers,
# in the same order, as the pass over the whole series)
_RSI_LAST: list[tuple[int, int, np.ndarray, list[float], list[float]] | None] = [None]


def rsi_last(close: pd.Series, n: int = 14, k: int = 2) -> list[float]:
    """The last `k` values of `rsi(close, n)`, bit for bit (the same operations in the same
    order on plain floats; a test checks), without the per-call cost of a dozen pandas
    operations: a daily signal reads only its newest values. Closes that extend the last
    ones asked (the same values, and more) continue that pass instead of repeating it."""
    n = _period(n, "n")
    x = _values(close, "close")
    got = _RSI_LAST[0]
    if got is not None and got[0] == n and got[1] == k and got[2].size < x.size \
            and np.array_equal(got[2], x[:got[2].size]):
        gains, losses = _rsi_extend(got, x, 1.0 / n)
    else:
        full = _rsi_averages(close, x, n)
        if full is None:  # a gap after the seed: pandas' own rule
            return [float(r) for r in rsi(close, n).iloc[-k:]]
        gains, losses = full[0][-k:], full[1][-k:]
    if len(gains) == k and all(g == g for g in gains + losses):  # past the seeds: kept
        _RSI_LAST[0] = (n, k, x.copy(), gains, losses)
    out = []
    for g, lo in zip(gains, losses):
        t = g + lo
        out.append(50.0 if t == 0.0 else 100.0 * g / t)  # (NaN in, NaN out)
    return out


def _rsi_averages(close: pd.Series, x: np.ndarray, n: int) -> list[list[float]] | None:
    """Wilder's average gain and loss at every bar of `x` (`rsi`'s, as plain floats); None
    where pandas' gap rule would apply."""
    delta = np.empty_like(x)
    delta[:1] = np.nan
    np.subtract(x[1:], x[:-1], out=delta[1:])  # Series.diff()
    nan = np.isnan(delta)
    gain = np.where(nan | (delta >= 0.0), delta, 0.0)  # Series.clip(lower=0.0)
    neg = -delta
    loss = np.where(nan | (neg >= 0.0), neg, 0.0)
    avg = []
    for v in (gain, loss):
        valid = ~np.isnan(v)
        if valid.sum() < n:
            return [[math.nan] * len(x), [math.nan] * len(x)]
        p0 = int(np.argmax(valid))
        seed_at = p0 + n - 1
        vals = v.copy()
        vals[:seed_at] = np.nan
        vals[seed_at] = v[p0:p0 + n].sum() / n  # pandas' mean: numpy's sum / the count
        fast = _ewm(vals.tolist(), 1.0 / n)
        if fast is None:
            return None
        avg.append([math.nan] * seed_at + fast[seed_at:])
    return avg


def _rsi_extend(got: tuple[int, int, np.ndarray, list[float], list[float]], x: np.ndarray,
                alpha: float) -> tuple[list[float], list[float]]:
    """The last k average gains and losses of `x`, which extends the closes of `got` (both
    averages past their seeds there): `_rsi_averages`' recursion from where it stopped, on
    the new bars' changes (Python's float arithmetic is numpy's float64 arithmetic)."""
    _, k, old, gains, losses = got
    f = 1.0 - alpha
    wg, wl = gains[-1], losses[-1]
    gs, ls = list(gains), list(losses)
    prev = float(old[-1])
    for cur in x[old.size:].tolist():
        d = cur - prev
        prev = cur
        neg = -d
        for j, c in ((0, d if d >= 0.0 else 0.0), (1, neg if neg >= 0.0 else 0.0)):
            w = wg if j == 0 else wl
            if w != c:  # (`_ewm`: a constant series' update is skipped)
                w = (f * w + alpha * c) / (f + alpha)
            if j == 0:
                wg = w
                gs.append(w)
            else:
                wl = w
                ls.append(w)
    return gs[-k:], ls[-k:]


def _seeded_list(v: np.ndarray, n: int, alpha: float) -> list[float] | None:
    """`_seeded(pd.Series(v), n, alpha)` as plain floats (the same seed, a simple mean: numpy's
    sum / the count, and the same recursion); None where pandas' gap rule would apply."""
    valid = ~np.isnan(v)
    if valid.sum() < n:
        return [math.nan] * len(v)
    p0 = int(np.argmax(valid))
    seed_at = p0 + n - 1
    vals = v.copy()
    vals[:seed_at] = np.nan
    vals[seed_at] = v[p0:p0 + n].sum() / n
    return _ewm(vals.tolist(), alpha)


def macd_last(close: pd.Series, fast: int = 12, slow: int = 26,
              signal: int = 9) -> tuple[float, float, float, float]:
    """The last (EMA fast, EMA slow, signal line, histogram) of `ema` and `macd` on `close`,
    bit for bit (the same operations in the same order on plain floats; a test checks),
    each average computed once: a daily signal reads only its newest values."""
    fast, slow, signal = _period(fast, "fast"), _period(slow, "slow"), _period(signal, "signal")
    if fast >= slow:
        raise ValueError(f"fast ({fast}) must be shorter than slow ({slow})")
    x = _values(close, "x")
    f = _seeded_list(x, fast, 2.0 / (fast + 1.0))
    s = _seeded_list(x, slow, 2.0 / (slow + 1.0))
    line = None if f is None or s is None else [a - b for a, b in zip(f, s)]
    sig = None if line is None else _seeded_list(np.array(line), signal, 2.0 / (signal + 1.0))
    if f is None or s is None or line is None or sig is None:  # a gap: pandas' own rule
        m = macd(close, fast, slow, signal)
        return (float(ema(close, fast).iloc[-1]), float(ema(close, slow).iloc[-1]),
                float(m["signal"].iloc[-1]), float(m["hist"].iloc[-1]))
    return f[-1], s[-1], sig[-1], line[-1] - sig[-1]


def ad_divergence_last(close: pd.Series, ad: pd.Series, n: int = 20) -> int | None:
    """The last value of `ad_divergence(close, ad, n)` (None when there is no bar): the
    same comparisons on the same numbers, without building the whole series."""
    n = _period(n, "n", minimum=2)
    if isinstance(close, pd.Series) and isinstance(ad, pd.Series) and (
            close.index is ad.index or close.index.equals(ad.index)):
        # one frame's columns (aligned: `align` leaves equal indexes as they are)
        cv, av = _values(close, "close"), _values(ad, "ad")
    else:
        c, a = _check(close, "close").align(_check(ad, "ad"), join="inner")
        cv, av = c.to_numpy(dtype=float), a.to_numpy(dtype=float)
    if cv.size == 0:
        return None
    if cv.size < n:
        return 0
    cw, aw = cv[-n:-1], av[-n:-1]  # the previous n-1 bars (rolling n-1 of the shifted series)
    if np.isnan(cw).any() or np.isnan(aw).any():
        return 0  # fewer than n-1 observations: the rolling extremes are NaN
    c_now, a_now = cv[-1], av[-1]
    bearish = bool(c_now >= cw.max()) and bool(a_now < aw.max())
    bullish = bool(c_now <= cw.min()) and bool(a_now > aw.min())
    return int(bullish) - int(bearish)
