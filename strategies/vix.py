"""The Cboe VIX methodology: 30-day variance replicated from SPX option quotes (pure).

Cboe Volatility Index white paper ("The VIX Index Calculation: Step-by-Step"), per expiry:

  1. Forward, from put-call parity: at the strike where |call mid - put mid| is smallest,
     F = K + e^(RT) (C - P).
  2. K0 = the strike equal to or otherwise immediately below F.
  3. Out-of-the-money strips: puts below K0, moving down, and calls above K0, moving up;
     a strike whose bid is zero is left out, and once two consecutive strikes have zero
     bids no strike further out is used. At K0 the price is the average of the call and
     put mids; elsewhere Q(K) is the bid-ask midpoint of the OTM option.
  4. dK_i = (K_{i+1} - K_{i-1}) / 2 over the strikes used (at the ends, the distance to
     the one neighbour), and
        sigma^2 = (2/T) sum_i dK_i / K_i^2 e^(RT) Q(K_i)  -  (1/T) (F/K0 - 1)^2.
  5. Two expiries bracketing 30 days (near T1 <= 30 days < next T2), in minutes N:
        VIX = 100 sqrt( (T1 s1^2 (N2 - N30)/(N2 - N1) + T2 s2^2 (N30 - N1)/(N2 - N1))
                        x N365 / N30 ).
T is in years of 365 days, counted in minutes to settlement (T = N / 525,600). Cboe uses
SPX standard and weekly Friday expiries between 23 and 37 days; given only monthlies,
`vix_from_chains` takes the latest expiry at or within 30 days and the first beyond it
(both beyond 30 days: the two nearest, extrapolating).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from strategies.types import Chain

MINUTES_YEAR = 365 * 1440
MINUTES_30 = 30 * 1440


@dataclass(frozen=True)
class TermVariance:
    """One expiry's contribution: sigma^2 and how it was found."""

    t: float  # years
    sigma2: float
    forward: float
    k0: float
    put_end: float  # lowest strike used
    call_end: float  # highest strike used
    strikes_used: int


def term_variance(strikes: Sequence[float] | np.ndarray, call_bid: Sequence[float] | np.ndarray,
                  call_ask: Sequence[float] | np.ndarray, put_bid: Sequence[float] | np.ndarray,
                  put_ask: Sequence[float] | np.ndarray, t: float, rate: float) -> TermVariance:
    """sigma^2 of one expiry by steps 1-4 above. Quotes are aligned on ascending `strikes`;
    a NaN bid counts as no bid (zero). ValueError when the quotes cannot give a forward."""
    K = np.asarray(strikes, dtype=float)
    cb, ca = np.asarray(call_bid, dtype=float), np.asarray(call_ask, dtype=float)
    pb, pa = np.asarray(put_bid, dtype=float), np.asarray(put_ask, dtype=float)
    if not (K.shape == cb.shape == ca.shape == pb.shape == pa.shape) or K.ndim != 1:
        raise ValueError("term_variance: strikes and quotes must be 1-d arrays of one length")
    if K.size < 2 or np.any(np.diff(K) <= 0):
        raise ValueError("term_variance: need at least two strikes, strictly ascending")
    if not (t > 0 and math.isfinite(t)):
        raise ValueError(f"term_variance: time to expiry must be > 0 years, got {t}")
    growth = math.exp(rate * t)
    c, p = (cb + ca) / 2.0, (pb + pa) / 2.0
    diff = np.abs(c - p)
    if not np.isfinite(diff).any():
        raise ValueError("term_variance: no strike has both a call and a put quote")
    j = int(np.nanargmin(diff))
    forward = float(K[j] + growth * (c[j] - p[j]))
    below = np.nonzero(K <= forward)[0]
    if below.size == 0:
        raise ValueError(f"term_variance: forward {forward:.2f} is below every strike")
    i0 = int(below[-1])
    k0 = float(K[i0])
    has_c, has_p = np.nan_to_num(cb) > 0, np.nan_to_num(pb) > 0
    used = [(k0, float((c[i0] + p[i0]) / 2.0))]
    for step, bids, mids in ((-1, has_p, p), (1, has_c, c)):
        zeros, i = 0, i0 + step
        while 0 <= i < K.size and zeros < 2:
            if bids[i]:
                used.append((float(K[i]), float(mids[i])))
                zeros = 0
            else:
                zeros += 1
            i += step
    used.sort()
    ks = np.array([k for k, _ in used])
    q = np.array([v for _, v in used])
    if ks.size == 1:
        dk = np.array([0.0])
    else:
        dk = np.empty(ks.size)
        dk[1:-1] = (ks[2:] - ks[:-2]) / 2.0
        dk[0], dk[-1] = ks[1] - ks[0], ks[-1] - ks[-2]
    total = float(np.sum(dk / ks**2 * growth * q))
    sigma2 = 2.0 / t * total - (forward / k0 - 1.0) ** 2 / t
    return TermVariance(t, sigma2, forward, k0, float(ks[0]), float(ks[-1]), int(ks.size))


def interpolate(near: TermVariance, nxt: TermVariance, days: float = 30.0) -> float:
    """VIX (index points) from two terms by step 5: total variances weighted linearly in
    minutes to the `days`-day point, annualized over that horizon."""
    n1, n2, n30 = near.t * MINUTES_YEAR, nxt.t * MINUTES_YEAR, days * 1440.0
    if not n2 > n1:
        raise ValueError(f"interpolate: the next term ({nxt.t:.6f}y) must end after the near "
                         f"term ({near.t:.6f}y)")
    w1 = (n2 - n30) / (n2 - n1)
    w2 = (n30 - n1) / (n2 - n1)
    var = (near.t * near.sigma2 * w1 + nxt.t * nxt.sigma2 * w2) * MINUTES_YEAR / n30
    return 100.0 * math.sqrt(max(var, 0.0))


def pick_terms(ts: Iterable[float], days: float = 30.0) -> tuple[int, int]:
    """Indices (near, next) into `ts` (years to expiry) bracketing `days`: the latest at or
    within `days`, the first beyond; the two nearest when none is within."""
    order = sorted((t, i) for i, t in enumerate(ts) if t > 0)
    if len(order) < 2:
        raise ValueError("pick_terms: need two expiries in the future")
    h = days / 365.0
    after = [k for k, (t, _) in enumerate(order) if t > h]
    k = after[0] if after else len(order) - 1
    k = max(k, 1)
    return order[k - 1][1], order[k][1]


def vix_from_chains(chains: Iterable[Chain], rate: float, days: float = 30.0) -> float:
    """VIX from SPX chains (`strategies.types.Chain`, one per expiry) at the continuously
    compounded `rate`, by the two expiries `pick_terms` chooses."""
    chs = list(chains)
    i, j = pick_terms([c.t for c in chs], days)
    near, nxt = (term_variance(c.strikes, c.call_bid, c.call_ask, c.put_bid, c.put_ask, c.t, rate)
                 for c in (chs[i], chs[j]))
    return interpolate(near, nxt, days)
