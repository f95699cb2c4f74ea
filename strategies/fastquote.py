"""Fast quotes for bulk quote generation (the simulator prices every listed option every
market minute): plain closed forms, price, delta and vega in one pass, no flag parsing beyond
a scalar 'c'/'p', no NaN screening of inputs.

The price is F N(d1) - K N(d2) (discounted), which is exact to rounding where the premium is
not tiny relative to F and K; deep out-of-the-money wings lose relative (not absolute)
precision compared with ``pricing.black76_price``/``pricing.bs_price``. Delta and vega are
the same expressions as ``pricing.black76_greeks``/``pricing.greeks`` (bitwise equal for the
same inputs). Use `strategies.pricing` and `strategies.iv` for implied vol, tiny premiums or
validated input; these assume t > 0, sigma > 0, F, K > 0 (anything else gives NaN or
garbage, never an exception).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from strategies.black import INV_SQRT_2PI, FloatArray

__all__ = ["black76_quote", "bs_quote"]


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
    vega = 0.01 * (S * dq * (INV_SQRT_2PI * np.exp(-0.5 * d1 * d1))) * sqt
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
