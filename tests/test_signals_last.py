"""signals.rsi_last / ad_divergence_last: the newest values of rsi / ad_divergence, bit for
bit, on walks, flat stretches, leading NaNs and short series."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from strategies import signals


def _series(rng: np.random.Generator, kind: str, n: int) -> pd.Series:
    idx = pd.date_range("2025-01-01", periods=n, freq="D")
    x = 5000.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    if kind == "flat":
        x[n // 3: n // 3 + 40] = x[n // 3]
    elif kind == "ups":
        x = np.arange(n, dtype=float) + 100.0
    elif kind == "lead_nan":
        x[:7] = np.nan
    elif kind == "const":
        x[:] = 42.0
    return pd.Series(x, index=idx)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("kind", ["walk", "flat", "ups", "lead_nan", "const"])
@pytest.mark.parametrize("n", [3, 15, 16, 40, 400])
def test_rsi_last_is_rsi(kind: str, n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(5):
        s = _series(rng, kind, n)
        want = [float(v) for v in signals.rsi(s, 14).iloc[-2:]]
        got = signals.rsi_last(s, 14, 2)
        assert len(got) == len(want) and all(map(_same, got, want)), (got, want)


@pytest.mark.parametrize("kind", ["walk", "flat", "ups", "lead_nan", "const"])
def test_rsi_last_day_by_day_is_rsi(kind: str) -> None:
    """Closes asked a bar longer each time (a daily signal) continue the last pass: the same
    bits as `rsi` on the whole series at every length, and a series that is not an extension
    (edited, shorter, another n) is computed afresh."""
    full = _series(np.random.default_rng(7), kind, 160)
    for m in range(1, 161):
        s = full.iloc[:m]
        want = [float(v) for v in signals.rsi(s, 14).iloc[-2:]]
        got = signals.rsi_last(s, 14, 2)
        assert len(got) == len(want) and all(map(_same, got, want)), (m, got, want)
    edited = full.copy()
    edited.iloc[100] *= 1.01
    for s, n in ((edited, 14), (full.iloc[:120], 14), (full, 9)):
        want = [float(v) for v in signals.rsi(s, n).iloc[-2:]]
        got = signals.rsi_last(s, n, 2)
        assert all(map(_same, got, want)), (got, want)
    assert signals._RSI_LAST[0] is not None or kind == "const"  # the pass was kept


@pytest.mark.parametrize("kind", ["walk", "flat", "ups", "lead_nan", "const"])
@pytest.mark.parametrize("n", [1, 5, 20, 21, 60, 400])
def test_ad_divergence_last_is_ad_divergence(kind: str, n: int) -> None:
    rng = np.random.default_rng(100 + n)
    hits = 0
    for _ in range(40):
        c = _series(rng, kind, n)
        a = pd.Series(np.cumsum(rng.normal(0, 1000, n)), index=c.index)
        if kind == "lead_nan":
            a.iloc[:3] = np.nan
        full = signals.ad_divergence(c, a, 20)
        assert signals.ad_divergence_last(c, a, 20) == int(full.iloc[-1])
        hits += int(full.iloc[-1]) != 0
    assert kind != "walk" or n < 21 or hits > 0  # both branches can fire


def test_the_same_input_errors() -> None:
    s = pd.Series([1.0, 2.0, np.nan, 3.0] * 10)
    for fn in (lambda x: signals.rsi_last(x, 14), lambda x: signals.ad_divergence_last(x, x, 20)):
        with pytest.raises(ValueError, match="NaN after"):
            fn(s)
        with pytest.raises(ValueError, match="inf"):
            fn(pd.Series([1.0, np.inf] * 20))
        with pytest.raises(TypeError):
            fn([1.0] * 40)


def _macd_state_pandas(close: pd.Series, fast: int = 12, slow: int = 26,
                       signal: int = 9) -> tuple[float, float, float, float]:
    """What daily.macd_state computed before macd_last (ema twice, then macd)."""
    m = signals.macd(close, fast, slow, signal)
    return (float(signals.ema(close, fast).iloc[-1]), float(signals.ema(close, slow).iloc[-1]),
            float(m["signal"].iloc[-1]), float(m["hist"].iloc[-1]))


@pytest.mark.parametrize("kind", ["walk", "flat", "ups", "lead_nan", "const"])
@pytest.mark.parametrize("n", [3, 12, 26, 34, 35, 60, 400])
def test_macd_last_is_ema_and_macd(kind: str, n: int) -> None:
    rng = np.random.default_rng(200 + n)
    for _ in range(5):
        s = _series(rng, kind, n)
        want = _macd_state_pandas(s)
        got = signals.macd_last(s)
        assert all(map(_same, got, want)), (got, want)
        assert all(type(v) is float for v in got)


def test_macd_last_input_errors() -> None:
    with pytest.raises(ValueError, match="NaN after"):
        signals.macd_last(pd.Series([1.0, 2.0, np.nan, 3.0] * 10))
    with pytest.raises(ValueError, match="inf"):
        signals.macd_last(pd.Series([1.0, np.inf] * 20))
    with pytest.raises(ValueError, match="shorter"):
        signals.macd_last(pd.Series([1.0] * 40), 26, 12)


def test_ad_divergence_last_on_equal_indexes_not_the_same_object() -> None:
    # a frame's columns carry equal indexes that are not one object (pandas 3): still aligned
    rng = np.random.default_rng(7)
    for _ in range(40):
        c = _series(rng, "walk", 60)
        a = pd.Series(np.cumsum(rng.normal(0, 1000, 60)), index=c.index.copy())
        assert a.index is not c.index
        assert signals.ad_divergence_last(c, a, 20) == int(signals.ad_divergence(c, a, 20).iloc[-1])
