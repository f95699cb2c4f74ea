"""Vectorized Black-Scholes / Black-76 (numpy). Placeholder core; the option-math issue completes it."""

from __future__ import annotations

import math

import numpy as np

_SQRT2 = math.sqrt(2.0)


def _ncdf(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr  # noqa: PLC0415

    return ndtr(x)


def _is_call(flag) -> np.ndarray:
    f = np.asarray(flag)
    return np.char.lower(f.astype(str)) == "c"


def bs_price(flag, S, K, t, r, sigma, q=0.0):
    S, K, t, r, sigma, q = (np.asarray(x, dtype=float) for x in (S, K, t, r, sigma, q))
    call = _is_call(flag)
    sq = sigma * np.sqrt(t)
    d1 = (np.log(S / K) + (r - q + 0.5 * sigma**2) * t) / sq
    d2 = d1 - sq
    df, dq = np.exp(-r * t), np.exp(-q * t)
    c = S * dq * _ncdf(d1) - K * df * _ncdf(d2)
    p = K * df * _ncdf(-d2) - S * dq * _ncdf(-d1)
    return np.where(call, c, p)


def greeks(flag, S, K, t, r, sigma, q=0.0):
    S, K, t, r, sigma, q = (np.asarray(x, dtype=float) for x in (S, K, t, r, sigma, q))
    call = _is_call(flag)
    sq = sigma * np.sqrt(t)
    d1 = (np.log(S / K) + (r - q + 0.5 * sigma**2) * t) / sq
    dq = np.exp(-q * t)
    pdf = np.exp(-0.5 * d1**2) / math.sqrt(2 * math.pi)
    d2 = d1 - sq
    df = np.exp(-r * t)
    delta = np.where(call, dq * _ncdf(d1), dq * (_ncdf(d1) - 1.0))
    gamma = dq * pdf / (S * sq)
    vega = S * dq * pdf * np.sqrt(t) / 100.0
    first = S * dq * pdf * sigma / (2.0 * np.sqrt(t))
    theta_c = -(first - q * S * dq * _ncdf(d1) + r * K * df * _ncdf(d2)) / 365.0
    theta_p = (-first - q * S * dq * _ncdf(-d1) + r * K * df * _ncdf(-d2)) / 365.0
    theta = np.where(call, theta_c, theta_p)
    rho = np.where(call, t * K * df * _ncdf(d2), -t * K * df * _ncdf(-d2)) / 100.0
    return {"delta": delta, "gamma": gamma, "vega": vega, "theta": theta, "rho": rho}
