"""Signals against a published worked example and independent plain-Python implementations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import signals as sg

# StockCharts ChartSchool, "Relative Strength Index (RSI)" worked example (14-day): the
# spreadsheet's closes (4 decimals; the article's table shows them rounded to 2) and RSI.
SC_CLOSE = [
    44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826,
    45.8931, 46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439,
    46.2122, 46.2521, 45.7137, 46.4515, 45.7835, 45.3548, 44.0288, 44.1783, 44.2181, 44.5672,
    43.4205, 42.6628, 43.1314,
]
SC_RSI = [
    70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71, 50.42, 39.99,
    41.46, 41.87, 45.46, 37.30, 33.08, 37.77,
]


def wilder_rsi_loop(closes: list[float], n: int) -> list[float]:
    out = [math.nan] * len(closes)
    if len(closes) <= n:
        return out
    ch = [closes[i] - closes[i - 1] for i in range(1, len(closes))]
    g = sum(max(c, 0.0) for c in ch[:n]) / n
    lo = sum(max(-c, 0.0) for c in ch[:n]) / n

    def val(g: float, lo: float) -> float:
        return 50.0 if g + lo == 0 else 100.0 - 100.0 / (1.0 + g / lo) if lo else 100.0

    out[n] = val(g, lo)
    for i in range(n + 1, len(closes)):
        c = ch[i - 1]
        g = (g * (n - 1) + max(c, 0.0)) / n
        lo = (lo * (n - 1) + max(-c, 0.0)) / n
        out[i] = val(g, lo)
    return out


def ema_loop(xs: list[float], n: int) -> list[float]:
    out = [math.nan] * len(xs)
    start = next((i for i, x in enumerate(xs) if not math.isnan(x)), len(xs))
    if len(xs) - start < n:
        return out
    k = 2.0 / (n + 1)
    e = sum(xs[start : start + n]) / n
    out[start + n - 1] = e
    for i in range(start + n, len(xs)):
        e = xs[i] * k + e * (1 - k)
        out[i] = e
    return out


def walk(n: int, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2024-01-01", periods=n)
    return pd.Series(4000 + np.cumsum(rng.normal(0, 25, n)), index=idx)


def test_rsi_stockcharts_example() -> None:
    got = sg.rsi(pd.Series(SC_CLOSE), 14)
    assert got.iloc[:14].isna().all()
    np.testing.assert_allclose(got.iloc[14:].to_numpy(), SC_RSI, atol=0.01)


@pytest.mark.parametrize("n", [2, 5, 14, 30])
def test_rsi_matches_loop(n: int) -> None:
    s = walk(400, seed=n)
    np.testing.assert_allclose(sg.rsi(s, n).to_numpy(), wilder_rsi_loop(s.tolist(), n),
                               rtol=1e-10, equal_nan=True)


def test_rsi_edge_cases() -> None:
    up = pd.Series(np.arange(30, dtype=float))
    assert (sg.rsi(up, 14).dropna() == 100.0).all()
    assert (sg.rsi(-up, 14).dropna() == 0.0).all()
    assert (sg.rsi(pd.Series(np.full(30, 5.0)), 14).dropna() == 50.0).all()
    assert sg.rsi(pd.Series([1.0, 2.0, 3.0]), 14).isna().all()
    lead = pd.Series([np.nan, np.nan, *SC_CLOSE])
    np.testing.assert_allclose(sg.rsi(lead, 14).iloc[16:], SC_RSI, atol=0.01)
    with pytest.raises(ValueError):
        sg.rsi(pd.Series([1.0, np.nan, 2.0] * 10), 14)
    with pytest.raises(ValueError):
        sg.rsi(up, 0)
    with pytest.raises(TypeError):
        sg.rsi(up.to_numpy(), 14)  # type: ignore[arg-type]


def test_macd_matches_loop_and_pandas_after_warmup() -> None:
    s = walk(500, seed=3)
    m = sg.macd(s)
    fast, slow = ema_loop(s.tolist(), 12), ema_loop(s.tolist(), 26)
    line = [f - sl for f, sl in zip(fast, slow)]
    sig = ema_loop(line, 9)
    np.testing.assert_allclose(m["macd"], line, rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(m["signal"], sig, rtol=1e-10, atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(m["hist"], np.subtract(line, sig), atol=1e-9, equal_nan=True)
    assert m["macd"].first_valid_index() == s.index[25]
    assert m["signal"].first_valid_index() == s.index[33]
    # pandas' own EMA (seeded at the first value) converges to the same numbers.
    pd_line = s.ewm(span=12, adjust=False).mean() - s.ewm(span=26, adjust=False).mean()
    np.testing.assert_allclose(m["macd"].iloc[300:], pd_line.iloc[300:], atol=1e-6)
    with pytest.raises(ValueError):
        sg.macd(s, fast=26, slow=12)


def test_hist_turns_and_crossings() -> None:
    h = pd.Series([3.0, 2.0, 1.0, 1.5, 2.0, 1.0, 0.5, 0.7])
    assert sg.hist_turns(h).tolist() == [0, 0, 0, 1, 0, -1, 0, 1]
    r = pd.Series([65.0, 69.0, 70.0, 72.0, 68.0, 30.0, 29.0, 31.0])
    assert sg.crossings(r, 70).tolist() == [0, 0, 1, 0, -1, 0, 0, 0]
    assert sg.crossings(r, 30).tolist() == [0, 0, 0, 0, 0, -1, 0, 1]


def divergence_loop(close: list[float], ad: list[float], n: int) -> list[int]:
    out = [0] * len(close)
    for t in range(n - 1, len(close)):
        pc, pa = close[t - n + 1 : t], ad[t - n + 1 : t]
        if close[t] >= max(pc) and ad[t] < max(pa):
            out[t] = -1
        elif close[t] <= min(pc) and ad[t] > min(pa):
            out[t] = 1
    return out


def test_ad_divergence_scenario() -> None:
    idx = pd.bdate_range("2026-01-05", periods=8)
    close = pd.Series([100, 101, 102, 101, 103, 104, 99, 98], index=idx, dtype=float)
    adv = pd.Series([900, 800, 700, 400, 500, 300, 600, 900], index=idx, dtype=float)
    dec = pd.Series([500, 600, 650, 700, 450, 700, 500, 400], index=idx, dtype=float)
    ad = sg.ad_line(adv, dec)
    assert ad.tolist() == [400, 600, 650, 350, 400, 0, 100, 600]
    got = sg.ad_divergence(close, ad, n=4)
    # bar 4: 103 is a 4-bar high but A/D 400 < 650; bar 5: 104 high, A/D 0 < 650 (bearish);
    # bars 6, 7: 99 and 98 are 4-bar lows while A/D (100, 600) is above its low 0 (bullish).
    assert got.tolist() == [0, 0, 0, 0, -1, -1, 1, 1]
    with pytest.raises(ValueError):
        sg.ad_divergence(close, ad, n=1)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 30))
def test_ad_divergence_matches_loop(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    m = 120
    idx = pd.bdate_range("2025-01-01", periods=m)
    close = pd.Series(np.round(4000 + np.cumsum(rng.normal(0, 20, m))), index=idx)
    ad = sg.ad_line(pd.Series(rng.integers(500, 2500, m), index=idx),
                    pd.Series(rng.integers(500, 2500, m), index=idx))
    got = sg.ad_divergence(close, ad, n)
    assert got.tolist() == divergence_loop(close.tolist(), ad.tolist(), n)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(1.0, 1e4), min_size=16, max_size=80), st.integers(2, 15))
def test_rsi_bounded_and_matches_loop(xs: list[float], n: int) -> None:
    got = sg.rsi(pd.Series(xs), n)
    vals = got.dropna()
    assert ((vals >= 0) & (vals <= 100)).all()
    np.testing.assert_allclose(got.to_numpy(), wilder_rsi_loop(xs, n), rtol=1e-9, atol=1e-9,
                               equal_nan=True)
