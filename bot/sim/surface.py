"""The simulator's SPX implied-volatility smile, built so that its variance swap - what the
Cboe VIX formula replicates from out-of-the-money options - is the model's expected variance.

For one expiry t years away with model expected variance ev (`Market.expected_var`), the
smile is written in z = d2 = (-x - sigma^2 t / 2) / (sigma sqrt t), x = ln(K/F):

    sigma(z) = s sqrt(f(z)),   f(z) = 1 + b (RHO z + sqrt(z^2 + C^2) - C)

(an SVI shape in z: puts have z > 0, so RHO > 0 is the put skew; C sets how sharply the
call side flattens). For a smile of this form the fair variance is exactly E[sigma^2(Z)]
over a standard normal Z (Gatheral, The Volatility Surface, ch. 11: the variance swap as the
d2-weighted average of implied variance), i.e. s^2 (1 + b C1), C1 = E sqrt(Z^2 + C^2) - C.
Setting s = sqrt(ev / (1 + b C1)) makes the
replicated variance of every expiry its expected variance, so the VIX formula on the chain
gives back the model's VIX, and the at-the-money vol s sits below VIX: the skew is priced.

The skew strength falls with the level, b = B12 (L / 0.12)^-P (L = sqrt(ev)), so the
25-delta put minus ATM vol grows in points but shrinks relative to ATM as vol rises (about
4 points at VIX 12, 5 at 20, 6.5 at 40, 7.5 at 80; ATM about 2.5, 3.5, 4.5 and 6.5 points
below VIX; the 25-delta call about 0.83 of ATM at VIX 12, 0.89 at 20). A strike's z is
found by Newton's method on x(z) = -z v - v^2/2, v = s sqrt(t f(z)) (monotone in z for
these parameters); 6 steps bring the vol to 1e-10 over x in [-2.5, 1].

VIX options (Black-76 on the VIX future F, T years): vol = 0.85 (VIX/15)^0.4 (T/30d)^-0.2
(1 + 0.45 ln(K/F) + 0.1 ln(K/F)^2): vol-of-vol rising with VIX, a positive (call) skew.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import ndtr

if TYPE_CHECKING:
    from bot.sim.market import Market

RHO = 0.9  # put-side asymmetry of f in z
CURV = 0.5  # C: curvature scale of f around its minimum (the call side)
B12 = 1.2  # skew strength b at a 12% variance-swap vol ...
SKEW_P = 0.7  # ... falling as (L / 0.12)^-SKEW_P
B_MIN, B_MAX = 0.05, 3.0  # f stays > 0: 1 + b C (sqrt(1 - RHO^2) - 1) > 0 for b < 3.5
NEWTON = 6
C2 = CURV * CURV
VIX_SKEW, VIX_CURVE = 0.45, 0.1
TAU30 = 30.0 / 365.0
SCALAR_MAX = 12  # arrays up to this size are solved element by element in floats

_z = np.linspace(-12.0, 12.0, 24001)
_phi = np.exp(-0.5 * _z * _z) / math.sqrt(2 * math.pi)
C1 = float(np.trapezoid((np.sqrt(_z * _z + CURV * CURV) - CURV) * _phi, _z))  # 0.4973


def skew_b(L: np.ndarray | float) -> np.ndarray:
    """Skew strength b at variance-swap vol L (a fraction)."""
    return np.minimum(np.maximum(B12 * (np.maximum(L, 1e-6) / 0.12) ** -SKEW_P, B_MIN), B_MAX)


def atm_scale(ev: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """(s, b): the smile's scale and skew strength for expected variance ev."""
    b = skew_b(np.sqrt(ev))
    return np.sqrt(ev / (1.0 + b * C1)), b


def implied_vol(x: np.ndarray, t: np.ndarray, ev: np.ndarray) -> np.ndarray:
    """Implied vol at log-moneyness x = ln(K/F), t years, expected variance ev (broadcast
    together, elementwise: a strike's vol does not depend on what is priced with it)."""
    s, b = atm_scale(ev)
    u = s * np.sqrt(np.maximum(t, 1e-8))
    if np.size(x) <= SCALAR_MAX and np.size(u) <= SCALAR_MAX:
        # a few strikes: plain floats beat numpy's per-call overhead
        x, s, b, u = np.broadcast_arrays(x, s, b, u)
        out = [_vol(*a) for a in zip(x.ravel().tolist(), s.ravel().tolist(),
                                     b.ravel().tolist(), u.ravel().tolist())]
        return np.array(out).reshape(x.shape)
    z = -x / u
    ub = u * b  # (u * b * w is (u * b) * w: the same product, taken once)
    for _ in range(NEWTON):  # the same operations, in the same order, as _vol
        r = np.sqrt(z * z + C2)
        g = np.sqrt(1.0 + b * (RHO * z + r - CURV))
        v = u * g
        dv = ub * (RHO + z / r) / (2.0 * g)
        z = z - (-z * v - 0.5 * v * v - x) / (-v - (z + v) * dv)
    return s * np.sqrt(1.0 + b * (RHO * z + np.sqrt(z * z + C2) - CURV))


def _vol(x: float, s: float, b: float, u: float) -> float:
    z = -x / u
    for _ in range(NEWTON):
        r = math.sqrt(z * z + C2)
        g = math.sqrt(1.0 + b * (RHO * z + r - CURV))
        v = u * g
        dv = u * b * (RHO + z / r) / (2.0 * g)
        z = z - (-z * v - 0.5 * v * v - x) / (-v - (z + v) * dv)
    return s * math.sqrt(1.0 + b * (RHO * z + math.sqrt(z * z + C2) - CURV))


def vix_option_vol(K: np.ndarray, F: np.ndarray, T: np.ndarray,
                   level: float | np.ndarray) -> np.ndarray:
    """VIX option implied vol at strikes K on futures F, T years, VIX at `level` (one, or one
    per option)."""
    T = np.maximum(T, 1e-6)
    if np.ndim(level):  # a level per option (a session's minutes): Python's pow, as a scalar
        u, inv = np.unique(np.asarray(level), return_inverse=True)
        lv = 0.85 * np.array([(x / 15.0) ** 0.4 for x in u.tolist()])[inv]
        atm = lv * np.clip((T / TAU30) ** -0.2, 0.6, 1.6)
    else:
        atm = 0.85 * (level / 15.0) ** 0.4 * np.clip((T / TAU30) ** -0.2, 0.6, 1.6)
    x = np.log(K / F)
    return atm * np.clip(1.0 + VIX_SKEW * x + VIX_CURVE * x * x, 0.5, 2.5)


def atm_and_put25(mk: Market, t: float = TAU30) -> tuple[float, float]:
    """(ATM vol at the forward, vol of the 25-delta put), t years out, in vol points, at
    the market's current state: the skew figure the `simulate` chart plots. The put is found
    by bisection on its Black-Scholes delta -e^(-qt) N(-d1) in log-strike."""
    F = float(mk.forward(t))
    atm = float(mk.spx_iv(np.array([F]), np.array([t]))[0])
    lo, hi = -1.5, 0.0  # ln(K/F): the 25-delta put lies between
    for _ in range(50):
        x = 0.5 * (lo + hi)
        iv = float(mk.spx_iv(np.array([F * math.exp(x)]), np.array([t]))[0])
        d1 = (-x + 0.5 * iv * iv * t) / (iv * math.sqrt(t))
        delta = -math.exp(-mk.q * t) * float(ndtr(-d1))
        lo, hi = (lo, x) if delta < -0.25 else (x, hi)  # too near the money: go lower
    return 100 * atm, 100 * iv
