"""Vectorized Black-Scholes-Merton and Black-76 closed forms: prices and greeks (numpy).

Every function takes numpy arrays or scalars (broadcast together) and returns float64
arrays of the broadcast shape (0-d arrays for scalar inputs). ``flag`` is ``'c'``/``'p'``
(case-insensitive; ``'call'``/``'put'`` also accepted) or an array of them.

Conventions (same as ``vollib``): t in years, r and q continuously compounded, sigma
annualized; greeks ``vega`` per 1 vol point (0.01), ``theta`` per calendar day (/365),
``rho`` per 1% rate move; Black-76 prices are discounted and ``delta`` is w.r.t. F.
Prices are computed from the normalized Black function (`strategies.black`), so tiny
premiums neither underflow nor cancel.

The implied-vol solver is `strategies.iv`, the simulator's one-pass quotes
`strategies.fastquote`; both are re-exported here for existing callers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from strategies.black import INV_SQRT_2PI, FloatArray, arrays, discounted_black, theta_sign
from strategies.fastquote import black76_quote, bs_quote
from strategies.iv import black76_implied_vol, implied_vol

__all__ = ["FloatArray", "black76_greeks", "black76_implied_vol", "black76_price",
           "black76_quote", "bs_price", "bs_quote", "greeks", "implied_vol"]


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
    th, S_, K_, t_, r_, sig, q_ = arrays(theta_sign(flag), S, K, t, r, sigma, q)
    with np.errstate(all="ignore"):
        F = S_ * np.exp((r_ - q_) * t_)
        df = np.exp(-r_ * t_)
    return discounted_black(th, F, K_, t_, df, sig)


def black76_price(
    flag: npt.ArrayLike,
    F: npt.ArrayLike,
    K: npt.ArrayLike,
    t: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
) -> FloatArray:
    """Black-76 (discounted) price of an option on a future F, e.g. VIX options."""
    th, F_, K_, t_, r_, sig = arrays(theta_sign(flag), F, K, t, r, sigma)
    with np.errstate(all="ignore"):
        df = np.exp(-r_ * t_)
    return discounted_black(th, F_, K_, t_, df, sig)



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
        pdf = INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)
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
    th, S_, K_, t_, r_, sig, q_ = arrays(theta_sign(flag), S, K, t, r, sigma, q)
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
    th, F_, K_, t_, r_, sig = arrays(theta_sign(flag), F, K, t, r, sigma)
    return _greeks(th, F_, K_, t_, r_, sig, r_, black76=True)
