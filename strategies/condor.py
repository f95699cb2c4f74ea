"""Strike selection by delta and iron-condor construction (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from strategies.expiry import dte
from strategies.types import Chain, Leg


@dataclass(frozen=True)
class Condor:
    expiry: date
    long_put: float
    short_put: float
    short_call: float
    long_call: float
    short_put_delta: float
    short_call_delta: float
    legs: tuple[Leg, ...]  # opening legs: +1 long wings, -1 shorts
    mid: float  # signed opening price per unit (credit < 0)
    natural: float

    @property
    def strikes(self) -> tuple[float, float, float, float]:
        return (self.long_put, self.short_put, self.short_call, self.long_call)

    @property
    def width(self) -> float:
        return max(self.short_put - self.long_put, self.long_call - self.short_call)


def combo_prices(chain_of: Mapping[date, Chain], legs: tuple[Leg, ...]) -> tuple[float, float]:
    """(mid, natural) of a combo per unit, signed (debit > 0). NaN when a quote is missing."""
    mid = natural = 0.0
    expiry: date | None = None
    chain: Chain | None = None
    for leg in legs:
        c = leg.contract
        if c.expiry != expiry:  # (a condor's legs share one: its chain is looked up once)
            expiry, chain = c.expiry, chain_of.get(c.expiry)
        if chain is None:
            return float("nan"), float("nan")
        try:
            bid, ask = chain.quote(c.strike, c.right)
        except KeyError:
            return float("nan"), float("nan")
        # math.isfinite: the same test as np.isfinite on a scalar, at a twentieth of the cost
        if not (math.isfinite(bid) and math.isfinite(ask)) or ask <= 0 or bid > ask:
            return float("nan"), float("nan")
        mid += leg.ratio * (bid + ask) / 2.0
        natural += leg.ratio * (ask if leg.ratio > 0 else bid)
    return mid, natural


# id(legs) -> (legs, their reverse): a held combo is reversed every tick (to price its
# close); the entry holds the legs, so the id is not reused while it lives. Legs are frozen.
_REVERSED: dict[int, tuple[tuple[Leg, ...], tuple[Leg, ...]]] = {}


def reverse(legs: tuple[Leg, ...]) -> tuple[Leg, ...]:
    """The legs that close `legs` (equal legs each time: the same tuple for the same one)."""
    got = _REVERSED.get(id(legs))
    if got is not None and got[0] is legs:
        return got[1]
    out = tuple(Leg(leg.contract, -leg.ratio) for leg in legs)
    if isinstance(legs, tuple):  # (an immutable sequence only)
        if len(_REVERSED) >= 256:
            _REVERSED.clear()
        _REVERSED[id(legs)] = (legs, out)
    return out


def pick_expiry(chains: Mapping[date, Chain], now: datetime, dte_min: int, dte_max: int,
                after: date | None = None) -> date | None:
    """The nearest listed expiry with dte_min <= DTE <= dte_max (and later than `after`)."""
    for exp in sorted(chains):
        if after is not None and exp <= after:
            continue
        if dte_min <= dte(exp, now) <= dte_max:
            return exp
    return None


def _valid(bid: np.ndarray, ask: np.ndarray, delta: np.ndarray) -> np.ndarray:
    ok: np.ndarray = (np.isfinite(bid) & np.isfinite(ask) & np.isfinite(delta) & (bid > 0)
                      & (ask >= bid))
    return ok


def nearest_delta(strikes: np.ndarray, delta: np.ndarray, ok: np.ndarray, target: float,
                  lo: float, hi: float) -> int | None:
    """Index of the strike whose |delta| is nearest `target`, within [lo, hi]; None if none."""
    a = np.abs(delta)
    cand = ok & (a >= lo) & (a <= hi)
    if not cand.any():
        return None
    dist = np.where(cand, np.abs(a - target), np.inf)
    return int(np.argmin(dist))


def _wing(strikes: np.ndarray, short: float, width: float, side: int) -> float | None:
    """Listed strike `width` beyond `short` (side -1 = below for puts, +1 above for calls),
    snapped outward to the nearest listed strike at or beyond that distance."""
    target = short + side * width
    if side < 0:
        beyond = strikes[strikes <= target + 1e-9]
        return float(beyond.max()) if beyond.size else None
    beyond = strikes[strikes >= target - 1e-9]
    return float(beyond.min()) if beyond.size else None


def build_condor(chain: Chain, short_delta: float, delta_lo: float, delta_hi: float,
                 wing_width: float) -> tuple[Condor | None, str]:
    """Select the condor on one expiry. Returns (condor, "") or (None, why-not)."""
    s = chain.strikes
    p_ok = _valid(chain.put_bid, chain.put_ask, chain.put_delta)
    c_ok = _valid(chain.call_bid, chain.call_ask, chain.call_delta)
    ip = nearest_delta(s, chain.put_delta, p_ok, short_delta, delta_lo, delta_hi)
    ic = nearest_delta(s, chain.call_delta, c_ok, short_delta, delta_lo, delta_hi)
    if ip is None or ic is None:
        return None, "no_short_strike_in_delta_band"
    sp, sc = float(s[ip]), float(s[ic])
    if sp >= sc:
        return None, "shorts_cross"
    lp, lc = _wing(s, sp, wing_width, -1), _wing(s, sc, wing_width, +1)
    if lp is None or lc is None:
        return None, "wing_not_listed"
    legs = (
        Leg(chain.contract(lp, "P"), +1),
        Leg(chain.contract(sp, "P"), -1),
        Leg(chain.contract(sc, "C"), -1),
        Leg(chain.contract(lc, "C"), +1),
    )
    mid, natural = combo_prices({chain.expiry: chain}, legs)
    if not np.isfinite(mid):
        return None, "bad_quote"
    return (
        Condor(chain.expiry, lp, sp, sc, lc, float(chain.put_delta[ip]),
               float(chain.call_delta[ic]), legs, round(mid, 4), round(natural, 4)),
        "",
    )
