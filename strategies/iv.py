"""Implied volatility (Black-Scholes-Merton and Black-76), vectorized over numpy arrays.

Works on Jaeckel's normalized price b(x, s) (`strategies.black`) reduced to the
out-of-the-money equivalent, and solves from a segment-wise initial guess by a third-order
Householder iteration on Jaeckel's objectives (1/ln b in the lowest segment, b elsewhere),
safeguarded by a bisection bracket and a hard iteration cap.
It never raises for numeric input and never loops without bound; it returns NaN when:
  * any input is NaN/inf, S/F <= 0, K <= 0, t <= 0;
  * the price is <= the discounted intrinsic value (within rounding noise) or >= the
    no-arbitrage upper bound, or is subnormal (< 2.2e-308: no precision left);
  * the price or its time value (price - discounted intrinsic) is below ``min_price``
    (implied vol is ill-posed for tiny premiums: deep OTM/ITM, short-dated).
Malformed flags and non-broadcastable shapes raise ValueError. Conventions as in
`strategies.pricing` (t in years, r and q continuously compounded, prices discounted).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

from strategies.black import LN_SQRT_2PI, FloatArray, arrays, ln_b_otm, ln_vega_n, theta_sign

_SQRT3 = math.sqrt(3.0)
_F_LOW = 2.0 * math.pi / math.sqrt(27.0)  # Jaeckel's lower-map prefactor
#: Hard cap on solver iterations (typical: 2-4; bisection fallback needs < 80).
MAX_ITER = 100
_REL_TOL = 4.0 * np.finfo(float).eps
_NOISE = 16.0 * np.finfo(float).eps
_TINY = float(np.finfo(float).tiny)
# Stop after a Householder step this small (relative): the iteration converges
# quartically near the root, so the error left after applying it is negligible.
_STEP_TOL = 1e-5
_S_SPAN = 60.0  # upper bracket for s = sigma*sqrt(t) above the inflection point

__all__ = ["MAX_ITER", "black76_implied_vol", "implied_vol"]


def _householder(nu: FloatArray, h2: FloatArray, h3: FloatArray) -> FloatArray:
    return nu * (1.0 + 0.5 * h2 * nu) / (1.0 + nu * (h2 + h3 * nu / 6.0))


def _hermite(*p: FloatArray) -> FloatArray:
    """Cubic Hermite interpolation at x on [x0, x1]; p = (x0, x1, y0, y1, m0, m1, x)."""
    x0, x1, y0, y1, m0, m1, x = p
    h = x1 - x0
    u = (x - x0) / h
    u2, u3 = u * u, u * u * u
    return (
        (2 * u3 - 3 * u2 + 1) * y0
        + (u3 - 2 * u2 + u) * h * m0
        + (3 * u2 - 2 * u3) * y1
        + (u3 - u2) * h * m1
    )


def _start(
    b: FloatArray, a: FloatArray, ln_bs: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Initial guess, bracket (lo, hi) and lowest-segment mask, in Jaeckel's segments.

    b* is split at the inflection point s_c = sqrt(2a) and at s_l, where the tangent at
    s_c meets 0. Below b(s_l) the lower map f = 2 pi a/sqrt(27) N(-a/(sqrt3 s))^3
    (asymptotically equal to b) is interpolated quadratically in b*; between s_l and s_c,
    s(b*) is a cubic Hermite interpolant; above s_c the upper map f = N(-s/2) is
    interpolated quadratically towards b_max (exact at the money).
    """
    s_c = np.sqrt(2.0 * a)
    pos = s_c > 0.0
    ln_bc = np.where(pos, ln_b_otm(a, s_c), -np.inf)
    ln_vc = np.where(pos, ln_vega_n(a, s_c), -LN_SQRT_2PI)
    b_c, v_c = np.exp(ln_bc), np.exp(ln_vc)
    lower = ln_bs < ln_bc
    # Upper side: b* >= b_c.
    h = np.exp(-0.5 * a) - b_c
    w = (b - b_c) / h
    s = -2.0 * ndtri((ndtr(-0.5 * s_c) * (1.0 - w) + 0.5 * h * w) * (1.0 - w))
    lo, hi = s_c, s_c + _S_SPAN
    lowest = np.zeros(b.shape, dtype=bool)
    li = np.flatnonzero(lower)
    if li.size:  # lower side: b* < b_c, a > 0
        al, bl_, sc, bc, vc = a[li], b[li], s_c[li], b_c[li], v_c[li]
        s_l = np.maximum(sc - np.exp(ln_bc[li] - ln_vc[li]), 0.0)
        ln_bl = ln_b_otm(al, s_l)
        b_l, v_l = np.exp(ln_bl), np.exp(ln_vega_n(al, s_l))
        low = ln_bs[li] < ln_bl
        s_mid = _hermite(b_l, bc, s_l, sc, 1.0 / v_l, 1.0 / vc, bl_)
        f_l = _F_LOW * al * ndtr(-al / (_SQRT3 * s_l)) ** 3
        w = bl_ / b_l
        f = (f_l * w + b_l * (1.0 - w)) * w
        s_low = al / (_SQRT3 * np.abs(ndtri(np.cbrt(f / (_F_LOW * al)))))
        s[li] = np.where(low, s_low, s_mid)
        lo = np.where(lower, 0.0, lo)
        hi = np.where(lower, s_c, hi)
        lo[li] = np.where(low, 0.0, s_l)
        hi[li] = np.where(low, s_l, sc)
        lowest[li] = low
    margin = 1e-3 * (hi - lo)  # a guess just outside its segment is clamped into it
    s = np.where(np.isfinite(s), np.clip(s, lo + margin, hi - margin), 0.5 * (lo + hi))
    return s, np.array(lo, dtype=float), np.array(hi, dtype=float), lowest


def _solve_s(b: FloatArray, a: FloatArray) -> FloatArray:
    """s > 0 with b_otm(a, s) = b, for 1-d arrays with 0 < b < e^{-a/2}, a >= 0."""
    with np.errstate(all="ignore"):
        ln_bs = np.log(b)
        s, lo, hi, lowest = _start(b, a, ln_bs)
        done = np.zeros(b.shape, dtype=bool)
        act = np.arange(b.size)
        for _ in range(MAX_ITER):
            if act.size == 0:
                break
            sa, aa, la, bsa, lw = s[act], a[act], ln_bs[act], b[act], lowest[act]
            ln_b = ln_b_otm(aa, sa)
            ln_v = ln_vega_n(aa, sa)
            above = ln_b > la
            lo_a = np.where(above, lo[act], np.maximum(lo[act], sa))
            hi_a = np.where(above, np.minimum(hi[act], sa), hi[act])
            k = aa * aa / sa**3 - 0.25 * sa  # b''/b'
            k3 = k * k - 3.0 * aa * aa / sa**4 - 0.25  # b'''/b'
            # Middle and upper segments: g = b - b*.
            step_u = _householder((bsa - np.exp(ln_b)) / np.exp(ln_v), k, k3)
            # Lowest segment: g = 1/ln b - 1/ln b*, with l = ln b and its derivatives.
            l1 = np.exp(ln_v - ln_b)
            l2 = l1 * k - l1 * l1
            l3 = l1 * k3 - 3.0 * l1 * l1 * k + 2.0 * l1**3
            nu_l = ln_b * (la - ln_b) / (la * l1)
            h2 = l2 / l1 - 2.0 * l1 / ln_b
            h3 = l3 / l1 - 6.0 * l2 / ln_b + 6.0 * (l1 / ln_b) ** 2
            step = np.where(lw, _householder(nu_l, h2, h3), step_u)
            step = np.where(ln_b == la, 0.0, step)
            new = sa + step
            conv = np.abs(step) <= _STEP_TOL * sa
            bad = ~conv & (~np.isfinite(new) | (new <= lo_a) | (new >= hi_a))
            bisect = np.where(lo_a > 0.0, np.sqrt(lo_a * hi_a), 0.5 * hi_a)
            new = np.where(bad, bisect, new)
            conv |= hi_a - lo_a <= _REL_TOL * hi_a
            s[act], lo[act], hi[act] = new, lo_a, hi_a
            done[act] = conv
            act = act[~conv]
        return np.where(done, s, np.nan)


def _implied(
    price: FloatArray,
    F: FloatArray,
    K: FloatArray,
    t: FloatArray,
    df: FloatArray,
    th: FloatArray,
    min_price: float,
) -> FloatArray:
    out = np.full(price.shape, np.nan)
    with np.errstate(all="ignore"):
        ok = np.isfinite(price) & np.isfinite(F) & np.isfinite(K) & np.isfinite(t)
        ok &= np.isfinite(df) & (df > 0.0) & (F > 0.0) & (K > 0.0) & (t > 0.0)
        intrinsic = np.maximum(th * (F - K), 0.0)
        undiscounted = price / df
        tv = undiscounted - intrinsic  # undiscounted time value
        # A time value within rounding noise of the intrinsic value carries no vol information.
        ok &= (price >= _TINY) & (price >= min_price) & (tv > _NOISE * undiscounted)
        ok &= tv * df >= min_price
        a = np.abs(np.log(F / K))
        b = tv / np.sqrt(F * K)
        ok &= (b < np.exp(-0.5 * a)) & (b >= _TINY)  # subnormal premiums: no precision left
        idx = np.flatnonzero(ok)
        if idx.size:
            s = _solve_s(b.ravel()[idx], a.ravel()[idx])
            out.ravel()[idx] = s / np.sqrt(t.ravel()[idx])
    return out


def implied_vol(
    price: npt.ArrayLike,
    S: npt.ArrayLike,
    K: npt.ArrayLike,
    t: npt.ArrayLike,
    r: npt.ArrayLike,
    flag: npt.ArrayLike,
    q: npt.ArrayLike = 0.0,
    *,
    min_price: float = 0.0,
) -> FloatArray:
    """Black-Scholes-Merton implied vol of discounted option prices; NaN where undefined."""
    th, p, S_, K_, t_, r_, q_ = arrays(theta_sign(flag), price, S, K, t, r, q)
    with np.errstate(all="ignore"):
        F = S_ * np.exp((r_ - q_) * t_)
        df = np.exp(-r_ * t_)
        F = np.where(np.isfinite(S_) & np.isfinite(q_), F, np.nan)
    return _implied(p, F, K_, t_, df, th, float(min_price))


def black76_implied_vol(
    price: npt.ArrayLike,
    F: npt.ArrayLike,
    K: npt.ArrayLike,
    t: npt.ArrayLike,
    r: npt.ArrayLike,
    flag: npt.ArrayLike,
    *,
    min_price: float = 0.0,
) -> FloatArray:
    """Black-76 implied vol of discounted prices of options on a future F; NaN where undefined."""
    th, p, F_, K_, t_, r_ = arrays(theta_sign(flag), price, F, K, t, r)
    with np.errstate(all="ignore"):
        df = np.exp(-r_ * t_)
    return _implied(p, F_, K_, t_, df, th, float(min_price))
