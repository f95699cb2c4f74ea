"""The normalized Black function and the input handling shared by the closed-form prices
(`strategies.pricing`) and the implied-vol solver (`strategies.iv`).

b(x, s) is Jaeckel's normalized Black price (x = ln F/K, s = sigma sqrt t), reduced to the
out-of-the-money equivalent and evaluated in log space with ``erfcx`` so that tiny premiums
neither underflow nor cancel. ``flag`` parsing and broadcasting live here so that both users
reject bad input with the same ValueError.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.special import erf, erfcx, ndtr

FloatArray = npt.NDArray[np.float64]

_SQRT2 = math.sqrt(2.0)
LN_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

__all__ = ["INV_SQRT_2PI", "LN_SQRT_2PI", "FloatArray", "arrays", "discounted_black",
           "ln_b_otm", "ln_vega_n", "theta_sign"]


def theta_sign(flag: npt.ArrayLike) -> FloatArray:
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


def arrays(*args: npt.ArrayLike) -> list[FloatArray]:
    try:
        return [np.asarray(a, dtype=float) for a in np.broadcast_arrays(*args)]
    except ValueError as e:
        raise ValueError(f"inputs do not broadcast to a common shape: {e}") from None


def ln_b_otm(a: FloatArray, s: FloatArray) -> FloatArray:
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


def ln_vega_n(a: FloatArray, s: FloatArray) -> FloatArray:
    """ln of db/ds for the normalized price: exp(-a^2/(2s^2) - s^2/8) / sqrt(2 pi)."""
    with np.errstate(all="ignore"):
        h = a / s
        return -0.5 * h * h - 0.125 * s * s - LN_SQRT_2PI


def discounted_black(
    th: FloatArray, F: FloatArray, K: FloatArray, t: FloatArray, df: FloatArray, sig: FloatArray
) -> FloatArray:
    """Discounted Black price from forward F and discount factor df (elementwise)."""
    with np.errstate(all="ignore"):
        s = sig * np.sqrt(t)
        x = np.log(F / K)
        intrinsic = np.maximum(th * (F - K), 0.0)
        otm = np.sqrt(F * K) * np.exp(ln_b_otm(np.abs(x), s))
        price = df * np.where(s > 0.0, intrinsic + otm, intrinsic)
        ok = (
            np.isfinite(F) & np.isfinite(K) & np.isfinite(t) & np.isfinite(sig) & np.isfinite(df)
        )
        ok &= (F > 0.0) & (K > 0.0) & (t >= 0.0) & (sig >= 0.0)
        return np.where(ok, price, np.nan)


