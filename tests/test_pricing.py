"""strategies.pricing and strategies.iv against vollib (reference), textbook examples and
properties."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vollib.black import black as v_black
from vollib.black import implied_volatility as v_black_iv_mod
from vollib.black.greeks import analytical as v_bga
from vollib.black_scholes_merton import black_scholes_merton as v_bsm
from vollib.black_scholes_merton.greeks import analytical as v_ga
from vollib.black_scholes_merton.implied_volatility import implied_volatility as v_iv

from strategies import iv as IV
from strategies import pricing as P

GREEKS = ("delta", "gamma", "vega", "theta", "rho")
TINY = float(np.finfo(float).tiny)  # below this (subnormal) implied vol is NaN by contract


def grid(n: int, seed: int) -> dict[str, np.ndarray]:
    """The issue's domain: moneyness 0.5-2, t 1 day-3 y, vol 3%-300%, r -1%..8%."""
    rng = np.random.default_rng(seed)
    S = 100.0
    m = np.exp(rng.uniform(math.log(0.5), math.log(2.0), n))
    return {
        "flag": np.where(rng.random(n) < 0.5, "c", "p"),
        "S": np.full(n, S),
        "K": S / m,
        "t": np.exp(rng.uniform(math.log(1 / 365), math.log(3.0), n)),
        "sigma": np.exp(rng.uniform(math.log(0.03), math.log(3.0), n)),
        "r": rng.uniform(-0.01, 0.08, n),
        "q": rng.uniform(0.0, 0.03, n),
    }


def rows(g: dict[str, np.ndarray]):
    keys = ("flag", "S", "K", "t", "r", "sigma", "q")
    return zip(*(g[k].tolist() for k in keys))


@pytest.fixture(scope="module")
def domain() -> dict[str, np.ndarray]:
    g = grid(1500, seed=20260301)
    ref_price, ref_iv, ref_vega = [], [], []
    for f, S, K, t, r, sig, q in rows(g):
        p = v_bsm(f, S, K, t, r, sig, q)
        ref_price.append(p)
        ref_vega.append(v_ga.vega(f, S, K, t, r, sig, q) * 100.0)
        try:
            ref_iv.append(v_iv(p, S, K, t, r, q, f))
        except Exception:
            ref_iv.append(np.nan)
    g["price"] = np.array(ref_price)
    g["ref_iv"] = np.array(ref_iv)
    # Well-posed where rounding the price to double precision moves the vol < 1e-9.
    vega_raw = np.array(ref_vega)
    with np.errstate(all="ignore"):
        g["well_posed"] = (g["price"] >= TINY) & (1e-15 * g["price"] / vega_raw < 1e-9)
    return g


# --------------------------------------------------------------------------- agreement


def test_prices_agree_with_vollib(domain: dict[str, np.ndarray]) -> None:
    d = domain
    ours = P.bs_price(d["flag"], d["S"], d["K"], d["t"], d["r"], d["sigma"], d["q"])
    keep = d["price"] > 1e-250
    assert keep.sum() > 1200
    np.testing.assert_allclose(ours[keep], d["price"][keep], rtol=1e-9, atol=1e-13)


def test_implied_vol_agrees_with_vollib_and_truth(domain: dict[str, np.ndarray]) -> None:
    d = domain
    iv = P.implied_vol(d["price"], d["S"], d["K"], d["t"], d["r"], d["flag"], d["q"])
    ok = d["well_posed"] & np.isfinite(d["ref_iv"])
    assert ok.sum() > 0.7 * ok.size  # the filter must not make the test vacuous
    assert np.all(np.isfinite(iv[ok]))
    np.testing.assert_allclose(iv[ok], d["ref_iv"][ok], rtol=0, atol=1e-8)
    np.testing.assert_allclose(iv[ok], d["sigma"][ok], rtol=0, atol=1e-8)


def test_greeks_agree_with_vollib(domain: dict[str, np.ndarray]) -> None:
    d = domain
    ours = P.greeks(d["flag"], d["S"], d["K"], d["t"], d["r"], d["sigma"], d["q"])
    fns = [getattr(v_ga, name) for name in GREEKS]
    ref = np.array([[fn(*row) for fn in fns] for row in rows(d)])
    for j, name in enumerate(GREEKS):
        np.testing.assert_allclose(ours[name], ref[:, j], rtol=1e-6, atol=1e-12, err_msg=name)


def test_black76_agrees_with_vollib() -> None:
    g = grid(400, seed=7)
    F, K, t, r, sig, fl = g["S"], g["K"], g["t"], g["r"], g["sigma"], g["flag"]
    args = list(zip(fl.tolist(), F.tolist(), K.tolist(), t.tolist(), r.tolist(), sig.tolist()))
    ref_p = np.array([v_black(*a) for a in args])
    np.testing.assert_allclose(P.black76_price(fl, F, K, t, r, sig), ref_p, rtol=1e-9, atol=1e-13)
    ours = P.black76_greeks(fl, F, K, t, r, sig)
    for name in GREEKS:
        ref = np.array([getattr(v_bga, name)(*a) for a in args])
        np.testing.assert_allclose(ours[name], ref, rtol=1e-6, atol=1e-12, err_msg=name)
    vega_raw = np.array([v_bga.vega(*a) * 100 for a in args])
    with np.errstate(all="ignore"):
        ok = (ref_p >= TINY) & (1e-15 * ref_p / vega_raw < 1e-9)
    assert ok.sum() > 250
    iv = P.black76_implied_vol(ref_p, F, K, t, r, fl)
    ref_iv = np.array(
        [v_black_iv_mod.implied_volatility(p, f_, k, r_, t_, c) for p, (c, f_, k, t_, r_, _)
         in zip(ref_p[ok], np.array(args, dtype=object)[ok])]
    )
    np.testing.assert_allclose(iv[ok], ref_iv, rtol=0, atol=1e-8)
    np.testing.assert_allclose(iv[ok], sig[ok], rtol=0, atol=1e-8)


# --------------------------------------------------------------------------- textbook


def test_hull_examples() -> None:
    # Hull, Options Futures and Other Derivatives, Example 15.6: c = 4.76, p = 0.81.
    assert float(P.bs_price("c", 42, 40, 0.5, 0.1, 0.2)) == pytest.approx(4.76, abs=5e-3)
    assert float(P.bs_price("p", 42, 40, 0.5, 0.1, 0.2)) == pytest.approx(0.81, abs=5e-3)
    # Chapter 19 (17 in older editions): delta 0.522, gamma 0.066, vega 0.121 per 1%,
    # theta -4.31 per year, rho 0.0891 per 1%.
    g = P.greeks("c", 49, 50, 0.3846, 0.05, 0.2)
    assert float(g["delta"]) == pytest.approx(0.522, abs=1e-3)
    assert float(g["gamma"]) == pytest.approx(0.066, abs=1e-3)
    assert float(g["vega"]) == pytest.approx(0.121, abs=1e-3)
    assert float(g["theta"]) * 365 == pytest.approx(-4.31, abs=1e-2)
    assert float(g["rho"]) == pytest.approx(0.0891, abs=1e-4)


# --------------------------------------------------------------------------- properties

pos = st.floats(min_value=0.5, max_value=2.0)
vols = st.floats(min_value=0.03, max_value=3.0)
times = st.floats(min_value=1 / 365, max_value=3.0)
rates = st.floats(min_value=-0.01, max_value=0.08)
divs = st.floats(min_value=0.0, max_value=0.05)


@settings(max_examples=200, deadline=None)
@given(m=pos, t=times, r=rates, q=divs, sig=vols)
def test_put_call_parity(m: float, t: float, r: float, q: float, sig: float) -> None:
    S, K = 100.0, 100.0 / m
    c = float(P.bs_price("c", S, K, t, r, sig, q))
    p = float(P.bs_price("p", S, K, t, r, sig, q))
    assert c - p == pytest.approx(S * math.exp(-q * t) - K * math.exp(-r * t), abs=1e-10 * (S + K))


@settings(max_examples=200, deadline=None)
@given(m=pos, t=times, r=rates, s1=vols, s2=vols, call=st.booleans())
def test_price_monotone_in_vol(m: float, t: float, r: float, s1: float, s2: float,
                               call: bool) -> None:
    lo, hi = sorted((s1, s2))
    f = "c" if call else "p"
    p_lo = float(P.bs_price(f, 100.0, 100.0 / m, t, r, lo))
    p_hi = float(P.bs_price(f, 100.0, 100.0 / m, t, r, hi))
    assert p_hi >= p_lo - 1e-12 * (1.0 + p_lo)


def _vega_raw(S: float, K: float, t: float, r: float, q: float, sig: float) -> float:
    """Independent BSM vega (per unit vol) with math.* only."""
    d1 = (math.log(S / K) + (r - q + 0.5 * sig * sig) * t) / (sig * math.sqrt(t))
    return S * math.exp(-q * t) * math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi) * math.sqrt(t)


@settings(max_examples=300, deadline=None)
@given(m=pos, t=times, r=rates, q=divs, sig=vols, call=st.booleans())
def test_iv_round_trip(m: float, t: float, r: float, q: float, sig: float, call: bool) -> None:
    S, K, f = 100.0, 100.0 / m, "c" if call else "p"
    price = float(P.bs_price(f, S, K, t, r, sig, q))
    v = _vega_raw(S, K, t, r, q, sig)
    iv = float(P.implied_vol(price, S, K, t, r, f, q))
    if price >= TINY and v > 0 and 1e-15 * price / v < 1e-9:
        assert iv == pytest.approx(sig, abs=1e-8)
    else:  # ill-posed: either NaN or still a consistent vol
        assert math.isnan(iv) or iv > 0


finite_or_not = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1e300, -1.0]),
)


@settings(max_examples=300, deadline=None)
@given(price=finite_or_not, S=finite_or_not, K=finite_or_not, t=finite_or_not,
       r=st.floats(min_value=-1, max_value=1), q=st.floats(min_value=-1, max_value=1),
       call=st.booleans())
def test_iv_never_raises_and_is_nan_or_positive(price: float, S: float, K: float, t: float,
                                                r: float, q: float, call: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarnings leak either
        iv = float(P.implied_vol(price, S, K, t, r, "c" if call else "p", q))
        b = float(P.black76_implied_vol(price, S, K, t, r, "c" if call else "p"))
        g = P.greeks("c" if call else "p", S, K, t, r, price, q)
    for v in (iv, b):
        assert math.isnan(v) or (v > 0 and math.isfinite(v))
    assert all(np.shape(v) == () for v in g.values())


# --------------------------------------------------------------------------- pathological


def test_outside_bounds_are_nan() -> None:
    S, K, t, r, q = 100.0, 100.0, 0.5, 0.03, 0.01
    call_max = S * math.exp(-q * t)
    put_max = K * math.exp(-r * t)
    intrinsic_itm_call = S * math.exp(-q * t) - 90.0 * math.exp(-r * t)
    cases = [
        ("c", 0.0, K), ("c", -1.0, K), ("c", call_max, K), ("c", call_max * 1.01, K),
        ("p", put_max, K), ("p", put_max + 1.0, K), ("c", intrinsic_itm_call, 90.0),
        ("c", intrinsic_itm_call - 0.01, 90.0), ("c", np.nan, K), ("c", np.inf, K),
        ("c", 1e-310, 500.0),  # subnormal premium
    ]
    for f, price, k in cases:
        assert math.isnan(float(P.implied_vol(price, S, k, t, r, f, q))), (f, price, k)


def test_degenerate_inputs() -> None:
    assert math.isnan(float(P.implied_vol(5.0, 100, 100, 0.0, 0.01, "c")))
    assert math.isnan(float(P.implied_vol(5.0, 100, 100, -1.0, 0.01, "c")))
    assert math.isnan(float(P.implied_vol(5.0, 0.0, 100, 1.0, 0.01, "c")))
    assert math.isnan(float(P.implied_vol(5.0, 100, -5, 1.0, 0.01, "c")))
    for bad in ({"t": 0.0}, {"sigma": 0.0}, {"sigma": -0.1}, {"S": np.nan}, {"K": np.inf}):
        kw = {"S": 100.0, "K": 100.0, "t": 0.5, "r": 0.01, "sigma": 0.2} | bad
        g = P.greeks("c", kw["S"], kw["K"], kw["t"], kw["r"], kw["sigma"])
        assert all(math.isnan(float(v)) for v in g.values()), bad
    # Limits of the price: at expiry or zero vol it is the (discounted) intrinsic value.
    assert float(P.bs_price("c", 110, 100, 0.0, 0.05, 0.2)) == 10.0
    assert float(P.bs_price("p", 90, 100, 1.0, 0.05, 0.0)) == pytest.approx(
        100 * math.exp(-0.05) - 90, rel=1e-12)
    assert math.isnan(float(P.bs_price("c", 100, 100, -1.0, 0.05, 0.2)))
    assert math.isnan(float(P.bs_price("c", 100, 100, 1.0, 0.05, np.inf)))


def test_min_price() -> None:
    S, t, r = 5000.0, 2 / 365, 0.04
    price = P.bs_price("p", S, [4000.0, 4900.0], t, r, 0.2)
    assert price[0] < 0.05 < price[1]
    iv = P.implied_vol(price, S, [4000.0, 4900.0], t, r, "p", min_price=0.05)
    assert math.isnan(iv[0]) and iv[1] == pytest.approx(0.2, abs=1e-10)
    # Deep ITM: the time value is below min_price although the price is not.
    itm = P.bs_price("c", S, 4000.0, t, r, 0.2)
    assert math.isnan(float(P.implied_vol(itm, S, 4000.0, t, r, "c", min_price=0.05)))


def test_empty_shapes_and_flags() -> None:
    e = np.array([])
    assert P.implied_vol(e, 100, 100, 1, 0, np.array([], dtype=str)).shape == (0,)
    assert P.bs_price(np.array([], dtype=str), 100, e, 1, 0, 0.2).shape == (0,)
    assert all(v.shape == (0,) for v in P.greeks([], e, 100, 1, 0, 0.2).values())
    with pytest.raises(ValueError):
        P.bs_price(["c", "p"], [1.0, 2.0, 3.0], 1, 1, 0, 0.2)
    with pytest.raises(ValueError):
        P.implied_vol([1.0, 2.0], 100, [90.0, 100.0, 110.0], 1, 0, "c")
    with pytest.raises(ValueError):
        P.bs_price("x", 100, 100, 1, 0, 0.2)
    with pytest.raises(ValueError):
        P.greeks(1, 100, 100, 1, 0, 0.2)
    # Flags: case-insensitive, words, mixed arrays, broadcasting over a 2-D chain.
    K = np.array([[90.0, 100.0], [110.0, 120.0]])
    fl = np.array([["c", "P"], ["call", "put"]])
    got = P.bs_price(fl, 100.0, K, 0.5, 0.01, 0.25)
    want = [[v_bsm("c" if str(f).lower().startswith("c") else "p", 100, k, 0.5, 0.01, 0.25, 0)
             for f, k in zip(fr, kr)] for fr, kr in zip(fl.tolist(), K.tolist())]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert P.implied_vol(1.0, 100, 100, 1, 0, "c").shape == ()


def test_solver_is_bounded_on_extreme_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = IV.ln_b_otm

    def counting(a: np.ndarray, s: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        return real(a, s)

    monkeypatch.setattr(IV, "ln_b_otm", counting)  # the solver's own reference to it
    K = np.array([1e-6, 1e-3, 0.5, 1.0, 2.0, 1e3, 1e6, 1e12])
    prices = np.array([1e-300, 1e-200, 1e-12, 1e-3, 0.5, 0.999999, 1 - 1e-15, 1e-310])
    P_, K_ = np.meshgrid(prices, K)
    flags = np.where(K_ < 1.0, "p", "c")
    iv = P.implied_vol(P_, 1.0, K_, 1.0, 0.0, flags)
    assert calls["n"] <= IV.MAX_ITER + 3
    assert np.all(np.isnan(iv) | (iv > 0))
    back = P.bs_price(flags, 1.0, K_, 1.0, 0.0, iv)
    ok = np.isfinite(iv)
    assert ok.sum() > 20
    np.testing.assert_allclose(back[ok], P_[ok], rtol=1e-7)
