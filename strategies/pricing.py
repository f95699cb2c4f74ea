"""Vectorized Black-Scholes-Merton and Black-76: prices, implied vol, greeks (numpy).

Every function takes numpy arrays or scalars (broadcast together) and returns float64
arrays of the broadcast shape (0-d arrays for scalar inputs). ``flag`` is ``'c'``/``'p'``
(case-insensitive; ``'call'``/``'put'`` also accepted) or an array of them.

Conventions (same as ``vollib``): t in years, r and q continuously compounded, sigma
annualized; greeks ``vega`` per 1 vol point (0.01), ``theta`` per calendar day (/365),
``rho`` per 1% rate move; Black-76 prices are discounted and ``delta`` is w.r.t. F.

Implied vol works on Jaeckel's normalized price b(x, s) (x = ln F/K, s = sigma*sqrt(t))
reduced to the out-of-the-money equivalent, evaluated in log space with ``erfcx`` so that
tiny premiums neither underflow nor cancel, and solved from a segment-wise initial guess
by a third-order Householder iteration on Jaeckel's objectives (1/ln b in the lowest
segment, b elsewhere), safeguarded by a bisection bracket and a hard iteration cap.
It never raises for numeric input and never loops without bound; it returns NaN when:
  * any input is NaN/inf, S/F <= 0, K <= 0, t <= 0;
  * the price is <= the discounted intrinsic value (within rounding noise) or >= the
    no-arbitrage upper bound, or is subnormal (< 2.2e-308: no precision left);
  * the price or its time value (price - discounted intrinsic) is below ``min_price``
    (implied vol is ill-posed for tiny premiums: deep OTM/ITM, short-dated).
Malformed flags and non-broadcastable shapes raise ValueError.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.special import erf, erfcx, ndtr, ndtri

FloatArray = npt.NDArray[np.float64]

_SQRT2 = math.sqrt(2.0)
_SQRT3 = math.sqrt(3.0)
_F_LOW = 2.0 * math.pi / math.sqrt(27.0)  # Jaeckel's lower-map prefactor
_LN_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: Hard cap on solver iterations (typical: 2-4; bisection fallback needs < 80).
MAX_ITER = 100
_REL_TOL = 4.0 * np.finfo(float).eps
_NOISE = 16.0 * np.finfo(float).eps
_TINY = float(np.finfo(float).tiny)
# Stop after a Householder step this small (relative): the iteration converges
# quartically near the root, so the error left after applying it is negligible.
_STEP_TOL = 1e-5
_S_SPAN = 60.0  # upper bracket for s = sigma*sqrt(t) above the inflection point

__all__ = ["FloatArray", "bs_price", "black76_price", "implied_vol", "black76_implied_vol"]
__all__ += ["greeks", "black76_greeks"]


# --------------------------------------------------------------------------- helpers


def _theta(flag: npt.ArrayLike) -> FloatArray:
    """+1.0 for calls, -1.0 for puts; ValueError for anything else."""
    f = np.asarray(flag)
    if f.size == 0:
        return np.zeros(f.shape, dtype=float)
    if f.dtype.kind == "U" and f.dtype.itemsize == 4:  # fast path: single characters
        codes = np.ascontiguousarray(f).view(np.uint32).reshape(f.shape)
        call = (codes == ord("c")) | (codes == ord("C"))
        put = (codes == ord("p")) | (codes == ord("P"))
    elif f.dtype.kind in "USO":
        low = np.char.lower(np.char.strip(f.astype(str)))
        call = (low == "c") | (low == "call")
        put = (low == "p") | (low == "put")
    else:
        raise ValueError(f"flag must be 'c'/'p' or an array of them, got dtype {f.dtype}")
    if not bool(np.all(call | put)):
        bad = np.unique(f[~(call | put)])[:5]
        raise ValueError(f"flag must be 'c' or 'p', got {bad.tolist()}")
    return np.where(call, 1.0, -1.0)


def _arrays(*args: npt.ArrayLike) -> list[FloatArray]:
    try:
        return [np.asarray(a, dtype=float) for a in np.broadcast_arrays(*args)]
    except ValueError as e:
        raise ValueError(f"inputs do not broadcast to a common shape: {e}") from None


def _ln_b_otm(a: FloatArray, s: FloatArray) -> FloatArray:
    """ln of the normalized OTM Black price b(-a, s) = e^{-a/2}N(d1) - e^{a/2}N(d2), a >= 0.

    Below the inflection point (s^2 < 2a) both terms are tiny and nearly equal: there
    N(d) = erfcx(-d/sqrt2) e^{-d^2/2} / 2 and the common exponential is factored out, so
    the result neither underflows nor loses the difference. Above it,
    b = e^{-a/2} (N(d1) - N(d2)) - 2 sinh(a/2) N(d2) with N(d1) - N(d2) from erf, which
    stays exact for tiny s near the money.
    """
    with np.errstate(all="ignore"):
        h = a / s
        t = 0.5 * s
        out = np.empty(np.shape(h))
        lower = h > t
        li = np.flatnonzero(lower)
        ui = np.flatnonzero(~lower)
        if li.size:
            hl, tl = h.ravel()[li], t.ravel()[li]
            diff = erfcx((hl - tl) / _SQRT2) - erfcx((hl + tl) / _SQRT2)
            out.ravel()[li] = -0.5 * hl * hl - 0.5 * tl * tl + np.log(0.5 * diff)
        if ui.size:
            # d1 = t - h >= 0 >= d2 = -t - h: the erf difference below adds two magnitudes.
            hu, tu, au = h.ravel()[ui], t.ravel()[ui], a.ravel()[ui]
            body = 0.5 * (erf((tu - hu) / _SQRT2) + erf((tu + hu) / _SQRT2))
            wing = -2.0 * np.sinh(0.5 * au) * ndtr(-tu - hu)
            out.ravel()[ui] = np.log(np.exp(-0.5 * au) * body + wing)
        return out


def _ln_vega_n(a: FloatArray, s: FloatArray) -> FloatArray:
    """ln of db/ds for the normalized price: exp(-a^2/(2s^2) - s^2/8) / sqrt(2 pi)."""
    with np.errstate(all="ignore"):
        h = a / s
        return -0.5 * h * h - 0.125 * s * s - _LN_SQRT_2PI


def _black(
    th: FloatArray, F: FloatArray, K: FloatArray, t: FloatArray, df: FloatArray, sig: FloatArray
) -> FloatArray:
    """Discounted Black price from forward F and discount factor df (elementwise)."""
    with np.errstate(all="ignore"):
        s = sig * np.sqrt(t)
        x = np.log(F / K)
        intrinsic = np.maximum(th * (F - K), 0.0)
        otm = np.sqrt(F * K) * np.exp(_ln_b_otm(np.abs(x), s))
        price = df * np.where(s > 0.0, intrinsic + otm, intrinsic)
        ok = (
            np.isfinite(F) & np.isfinite(K) & np.isfinite(t) & np.isfinite(sig) & np.isfinite(df)
        )
        ok &= (F > 0.0) & (K > 0.0) & (t >= 0.0) & (sig >= 0.0)
        return np.where(ok, price, np.nan)


# --------------------------------------------------------------------------- prices


def bs_price(
    flag: npt.ArrayLike,
    S: npt.ArrayLike,
    K: npt.ArrayLike,
    t: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
    q: npt.ArrayLike = 0.0,
) -> FloatArray:
    """Black-Scholes-Merton price. t = 0 or sigma = 0 gives the (discounted) intrinsic value;
    negative t/sigma, S or K <= 0, NaN or inf give NaN."""
    th, S_, K_, t_, r_, sig, q_ = _arrays(_theta(flag), S, K, t, r, sigma, q)
    with np.errstate(all="ignore"):
        F = S_ * np.exp((r_ - q_) * t_)
        df = np.exp(-r_ * t_)
    return _black(th, F, K_, t_, df, sig)


def black76_price(
    flag: npt.ArrayLike,
    F: npt.ArrayLike,
    K: npt.ArrayLike,
    t: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
) -> FloatArray:
    """Black-76 (discounted) price of an option on a future F, e.g. VIX options."""
    th, F_, K_, t_, r_, sig = _arrays(_theta(flag), F, K, t, r, sigma)
    with np.errstate(all="ignore"):
        df = np.exp(-r_ * t_)
    return _black(th, F_, K_, t_, df, sig)


# --------------------------------------------------------------------------- implied vol


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
    ln_bc = np.where(pos, _ln_b_otm(a, s_c), -np.inf)
    ln_vc = np.where(pos, _ln_vega_n(a, s_c), -_LN_SQRT_2PI)
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
        ln_bl = _ln_b_otm(al, s_l)
        b_l, v_l = np.exp(ln_bl), np.exp(_ln_vega_n(al, s_l))
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
            ln_b = _ln_b_otm(aa, sa)
            ln_v = _ln_vega_n(aa, sa)
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
    th, p, S_, K_, t_, r_, q_ = _arrays(_theta(flag), price, S, K, t, r, q)
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
    th, p, F_, K_, t_, r_ = _arrays(_theta(flag), price, F, K, t, r)
    with np.errstate(all="ignore"):
        df = np.exp(-r_ * t_)
    return _implied(p, F_, K_, t_, df, th, float(min_price))


# --------------------------------------------------------------------------- greeks


def _greeks(
    th: FloatArray,
    S: FloatArray,
    K: FloatArray,
    t: FloatArray,
    r: FloatArray,
    sig: FloatArray,
    q: FloatArray,
    black76: bool,
) -> dict[str, FloatArray]:
    with np.errstate(all="ignore"):
        ok = np.isfinite(S) & np.isfinite(K) & np.isfinite(t) & np.isfinite(r)
        ok &= np.isfinite(sig) & np.isfinite(q) & (S > 0.0) & (K > 0.0) & (t > 0.0) & (sig > 0.0)
        sqt = np.sqrt(t)
        sq = sig * sqt
        d1 = (np.log(S / K) + (r - q + 0.5 * sig * sig) * t) / sq
        d2 = d1 - sq
        dq, df = np.exp(-q * t), np.exp(-r * t)
        n1, n2 = ndtr(th * d1), ndtr(th * d2)
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)
        sdp = S * dq * pdf
        delta = th * dq * n1
        gamma = dq * pdf / (S * sq)
        vega = 0.01 * sdp * sqt
        theta = (-0.5 * sdp * sig / sqt + th * (q * S * dq * n1 - r * K * df * n2)) / 365.0
        if black76:
            rho = -0.01 * t * th * (S * dq * n1 - K * df * n2)
        else:
            rho = 0.01 * th * t * K * df * n2
        out = {"delta": delta, "gamma": gamma, "vega": vega, "theta": theta, "rho": rho}
        return {k: np.where(ok, v, np.nan) for k, v in out.items()}


def greeks(
    flag: npt.ArrayLike,
    S: npt.ArrayLike,
    K: npt.ArrayLike,
    t: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
    q: npt.ArrayLike = 0.0,
) -> dict[str, FloatArray]:
    """Analytical BSM greeks: delta, gamma, vega (per vol pt), theta (per day), rho (per 1%).

    NaN where t <= 0, sigma <= 0, S or K <= 0, or any input is NaN/inf.
    """
    th, S_, K_, t_, r_, sig, q_ = _arrays(_theta(flag), S, K, t, r, sigma, q)
    return _greeks(th, S_, K_, t_, r_, sig, q_, black76=False)


def black76_greeks(
    flag: npt.ArrayLike,
    F: npt.ArrayLike,
    K: npt.ArrayLike,
    t: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
) -> dict[str, FloatArray]:
    """Analytical Black-76 greeks (delta/gamma w.r.t. F; rho = -t * price per 1%)."""
    th, F_, K_, t_, r_, sig = _arrays(_theta(flag), F, K, t, r, sigma)
    return _greeks(th, F_, K_, t_, r_, sig, r_, black76=True)


# --------------------------------------------------------------------------- fast quotes
#
# A separate, cheaper path for bulk quote generation (the simulator prices every listed
# option every market minute): plain closed forms, price, delta and vega in one pass, no
# flag parsing beyond a scalar 'c'/'p', no NaN screening of inputs. The price is
# F N(d1) - K N(d2) (discounted), which is exact to rounding where the premium is not tiny
# relative to F and K; deep out-of-the-money wings lose relative (not absolute) precision
# compared with ``black76_price``/``bs_price``. Delta and vega are the same expressions as
# ``black76_greeks``/``greeks`` (bitwise equal for the same inputs). Use the functions above
# for implied vol, tiny premiums or validated input; these assume t > 0, sigma > 0,
# F, K > 0 (anything else gives NaN or garbage, never an exception).


def _th_scalar(flag: str) -> float:
    if flag == "c":
        return 1.0
    f = flag.strip().lower() if isinstance(flag, str) else flag
    if f in ("c", "call"):
        return 1.0
    if f in ("p", "put"):
        return -1.0
    raise ValueError(f"flag must be 'c' or 'p' (a single string), got {flag!r}")


def _quote(
    th: float, F: FloatArray, K: FloatArray, t: FloatArray, df: FloatArray, dq: FloatArray,
    S: FloatArray, d1_num: FloatArray, sig: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The shared body of the quote functions (call under np.errstate(all="ignore"))."""
    sqt = np.sqrt(t)
    sq = sig * sqt
    d1 = d1_num / sq
    d2 = d1 - sq
    if th > 0:
        n1, n2 = ndtr(d1), ndtr(d2)
        price = df * (F * n1 - K * n2)
        delta = dq * n1
    else:
        n1, n2 = ndtr(-d1), ndtr(-d2)
        price = df * (K * n2 - F * n1)
        delta = -1.0 * dq * n1
    vega = 0.01 * (S * dq * (_INV_SQRT_2PI * np.exp(-0.5 * d1 * d1))) * sqt
    return price, delta, vega


def black76_quote(
    flag: str, F: npt.ArrayLike, K: npt.ArrayLike, t: npt.ArrayLike, r: npt.ArrayLike,
    sigma: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(price, delta, vega) of Black-76 options on a future F in one pass (see above).

    ``flag`` is one 'c'/'p' for all; the price is discounted, delta w.r.t. F (discounted,
    as ``black76_greeks``), vega per vol point. Assumes t > 0, sigma > 0, F, K > 0.
    """
    th = _th_scalar(flag)
    F_, K_, t_ = np.asarray(F, dtype=float), np.asarray(K, dtype=float), np.asarray(t, dtype=float)
    r_, sig = np.asarray(r, dtype=float), np.asarray(sigma, dtype=float)
    with np.errstate(all="ignore"):
        df = np.exp(-r_ * t_)
        # the greeks' d1 with q = r: (ln F/K + (r - r + sig^2/2) t) / (sig sqrt t)
        num = np.log(F_ / K_) + ((r_ - r_) + 0.5 * sig * sig) * t_
        return _quote(th, F_, K_, t_, df, df, F_, num, sig)


def bs_quote(
    flag: str, S: npt.ArrayLike, K: npt.ArrayLike, t: npt.ArrayLike, r: npt.ArrayLike,
    sigma: npt.ArrayLike, q: npt.ArrayLike = 0.0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(price, delta, vega) of Black-Scholes-Merton options in one pass (see above).

    ``flag`` is one 'c'/'p' for all; delta w.r.t. S, vega per vol point, as ``greeks``.
    Assumes t > 0, sigma > 0, S, K > 0.
    """
    th = _th_scalar(flag)
    S_, K_, t_, r_, sig, q_ = (np.asarray(a, dtype=float) for a in (S, K, t, r, sigma, q))
    with np.errstate(all="ignore"):
        df, dq = np.exp(-r_ * t_), np.exp(-q_ * t_)
        num = np.log(S_ / K_) + (r_ - q_ + 0.5 * sig * sig) * t_
        F = S_ * np.exp((r_ - q_) * t_)
        return _quote(th, F, K_, t_, df, dq, S_, num, sig)


__all__ += ["black76_quote", "bs_quote"]
