"""The fast one-pass quote functions (bs_quote, black76_quote) against the reference path."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategies import pricing as P


def grid(n: int, seed: int) -> dict[str, np.ndarray]:
    """Moneyness 0.5-2, t 1 day-3 y, vol 3%-300%, r -1%..8%, q 0-3%."""
    rng = np.random.default_rng(seed)
    m = np.exp(rng.uniform(math.log(0.5), math.log(2.0), n))
    return {
        "S": np.full(n, 100.0),
        "K": 100.0 / m,
        "t": np.exp(rng.uniform(math.log(1 / 365), math.log(3.0), n)),
        "sigma": np.exp(rng.uniform(math.log(0.03), math.log(3.0), n)),
        "r": rng.uniform(-0.01, 0.08, n),
        "q": rng.uniform(0.0, 0.03, n),
    }


def well_conditioned(price: np.ndarray, F: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Premiums not tiny against the strike/forward: F N(d1) - K N(d2) keeps ~10 digits."""
    return price > 1e-4 * np.maximum(F, K)


@pytest.mark.parametrize("flag", ["c", "p"])
def test_black76_quote_matches_reference(flag: str) -> None:
    g = grid(20_000, 1)
    F = g["S"] * np.exp(g["r"] * g["t"])
    ref = P.black76_price(flag, F, g["K"], g["t"], g["r"], g["sigma"])
    gr = P.black76_greeks(flag, F, g["K"], g["t"], g["r"], g["sigma"])
    price, delta, vega = P.black76_quote(flag, F, g["K"], g["t"], g["r"], g["sigma"])
    ok = well_conditioned(ref, F, g["K"])
    assert ok.mean() > 0.7
    np.testing.assert_allclose(price[ok], ref[ok], rtol=1e-10, atol=0)
    # everywhere: absolute error at rounding level of the forward/strike
    np.testing.assert_allclose(price, ref, rtol=0, atol=1e-12 * np.maximum(F, g["K"]).max())
    # the greeks are the same expressions: equal to the last bit
    np.testing.assert_array_equal(delta, gr["delta"])
    np.testing.assert_array_equal(vega, gr["vega"])


@pytest.mark.parametrize("flag", ["c", "p"])
def test_bs_quote_matches_reference(flag: str) -> None:
    g = grid(20_000, 2)
    args = (g["S"], g["K"], g["t"], g["r"], g["sigma"], g["q"])
    ref = P.bs_price(flag, *args)
    gr = P.greeks(flag, *args)
    price, delta, vega = P.bs_quote(flag, *args)
    F = g["S"] * np.exp((g["r"] - g["q"]) * g["t"])
    ok = well_conditioned(ref, F, g["K"])
    assert ok.mean() > 0.7
    np.testing.assert_allclose(price[ok], ref[ok], rtol=1e-10, atol=0)
    np.testing.assert_allclose(price, ref, rtol=0, atol=1e-12 * np.maximum(F, g["K"]).max())
    np.testing.assert_array_equal(delta, gr["delta"])
    np.testing.assert_array_equal(vega, gr["vega"])


def test_sim_like_grid_agrees() -> None:
    """The simulator's use: SPX 75%-120% strikes, 1 day-6 months, skewed vols 8%-80%."""
    F = 6000.0 * math.exp(0.04 * 0.1)
    K = np.arange(4500.0, 7205.0, 5.0)
    for t in (1 / 365, 7 / 365, 30 / 365, 0.5):
        for vol in (0.08, 0.2, 0.8):
            sig = vol * np.sqrt(np.maximum(1.0 + 0.6 * (-0.9 * np.log(K / F)), 0.1))
            ref = P.black76_price("c", F, K, t, 0.04, sig)
            price, delta, vega = P.black76_quote("c", F, K, t, 0.04, sig)
            ok = well_conditioned(ref, F, K)
            np.testing.assert_allclose(price[ok], ref[ok], rtol=1e-10)
            assert np.max(np.abs(price - ref)) < 1e-9  # index points: far below a 0.05 tick
            gr = P.black76_greeks("c", F, K, t, 0.04, sig)
            np.testing.assert_array_equal(delta, gr["delta"])
            np.testing.assert_array_equal(vega, gr["vega"])


def test_scalars_and_broadcasting() -> None:
    p, d, v = P.black76_quote("C", 100.0, np.array([90.0, 100.0, 110.0]), 0.5, 0.03, 0.25)
    assert p.shape == d.shape == v.shape == (3,)
    ref = P.black76_price("c", 100.0, [90.0, 100.0, 110.0], 0.5, 0.03, 0.25)
    np.testing.assert_allclose(p, ref, rtol=1e-12)
    p1, d1, v1 = P.bs_quote("put", 100.0, 95.0, 0.25, 0.02, 0.3, 0.01)
    assert np.ndim(p1) == 0
    assert float(p1) == pytest.approx(float(P.bs_price("p", 100.0, 95.0, 0.25, 0.02, 0.3, 0.01)),
                                      rel=1e-12)
    g = P.greeks("p", 100.0, 95.0, 0.25, 0.02, 0.3, 0.01)
    assert float(d1) == float(g["delta"]) and float(v1) == float(g["vega"])


def test_put_call_parity() -> None:
    g = grid(2_000, 3)
    F = g["S"] * np.exp(g["r"] * g["t"])
    c, dc, vc = P.black76_quote("c", F, g["K"], g["t"], g["r"], g["sigma"])
    p, dp, vp = P.black76_quote("p", F, g["K"], g["t"], g["r"], g["sigma"])
    df = np.exp(-g["r"] * g["t"])
    np.testing.assert_allclose(c - p, df * (F - g["K"]), rtol=0, atol=1e-11 * F.max())
    np.testing.assert_allclose(dc - dp, df, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(vc, vp)


@pytest.mark.parametrize("flag", ["x", "", "cp", 1])
def test_bad_flag(flag: object) -> None:
    with pytest.raises(ValueError):
        P.black76_quote(flag, 100.0, 100.0, 1.0, 0.0, 0.2)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        P.bs_quote(flag, 100.0, 100.0, 1.0, 0.0, 0.2)  # type: ignore[arg-type]
