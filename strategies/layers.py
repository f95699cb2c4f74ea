"""What each ALVH hedge layer is: its legs, its trigger and its volatility exposure (pure).

- "event": VIX call diagonal (long next-month call near the second future, short front-month
  call at a higher strike), for a CPI or PPI release.
- "fomc": SPX at-the-money call calendar (short front monthly, long the next), for an FOMC
  decision.
- "tail": VIX call spread (long near the front future, short 10 points higher), on an RSI(14)
  cross above `rsi_high` or below `rsi_low`, or an A/D line failing to confirm an SPX
  `divergence_days` high.

Vol exposure is dollars per vol point: an SPX leg counts its vega; a VIX leg counts its delta
to the VIX future, a point of VIX standing for a point of SPX implied vol (a stated
simplification). When and how much to hold is `strategies.alvh`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime

import numpy as np
import pandas as pd

from strategies import daily, signals
from strategies.condor import combo_prices
from strategies.events import Event as CalEvent
from strategies.events import EventCalendar
from strategies.expiry import dte, exchange_date
from strategies.params import HedgeParams
from strategies.types import Chain, Event, Leg, Snapshot

LAYERS = ("event", "fomc", "tail")
EXIT_DTE = 2  # close a layer this many days before its front leg expires


def _chains(snap: Snapshot, symbol: str) -> Mapping[date, Chain]:
    return snap.vix_chains if symbol == "VIX" else snap.chains


def combo(snap: Snapshot, legs: tuple[Leg, ...]) -> tuple[float, float]:
    """(mid, natural) of a hedge combo, legs on SPX or VIX options."""
    return combo_prices(_chains(snap, legs[0].contract.symbol), legs)


def vol_exposure(snap: Snapshot, legs: tuple[Leg, ...], qty: int) -> float:
    """Dollars per vol point of a combo held `qty` times (see the module docstring)."""
    total = 0.0
    for leg in legs:
        c = leg.contract
        chain = _chains(snap, c.symbol).get(c.expiry)
        if chain is None:
            return math.nan
        try:
            if c.symbol == "VIX":
                total += leg.ratio * chain.delta(c.strike, c.right) * c.multiplier
            else:
                total += leg.ratio * chain.vega(c.strike, c.right) * c.multiplier
        except KeyError:
            return math.nan
    return total * qty


def nearest(strikes: np.ndarray, x: float, above: float | None = None) -> float | None:
    s = strikes if above is None else strikes[strikes > above]
    if s.size == 0 or not math.isfinite(x):
        return None
    return float(s[np.argmin(np.abs(s - x))])


def _vix_pair(snap: Snapshot) -> tuple[Chain, Chain] | None:
    exps = sorted(e for e in snap.vix_chains if dte(e, snap.time) > EXIT_DTE + 5)
    if len(exps) < 2:
        return None
    return snap.vix_chains[exps[0]], snap.vix_chains[exps[1]]


def _future(snap: Snapshot, expiry: date) -> float:
    return float(snap.vix_futures.get(expiry, snap.vix))


def build(name: str, snap: Snapshot) -> tuple[tuple[Leg, ...] | None, str]:
    """The legs of one unit of a layer, or (None, why)."""
    if name == "fomc":
        exps = sorted(e for e in snap.chains if dte(e, snap.time) >= 7)
        if len(exps) < 2:
            return None, "no_spx_expiries"
        front, back = snap.chains[exps[0]], snap.chains[exps[1]]
        k = nearest(front.strikes, snap.spx)
        if k is None or not np.any(back.strikes == k):  # (listed in the back month too)
            return None, "no_atm_strike"
        return (Leg(front.contract(k, "C"), -1), Leg(back.contract(k, "C"), +1)), ""
    pair = _vix_pair(snap)
    if pair is None:
        return None, "no_vix_chain"
    front, back = pair
    if name == "event":
        k_long = nearest(back.strikes, _future(snap, back.expiry))
        if k_long is None:
            return None, "no_strike"
        k_short = nearest(front.strikes, _future(snap, front.expiry) * 1.25, above=k_long)
        if k_short is None:
            return None, "no_strike"
        return (Leg(back.contract(k_long, "C"), +1), Leg(front.contract(k_short, "C"), -1)), ""
    chain = front if dte(front.expiry, snap.time) >= 14 else back
    k_long = nearest(chain.strikes, _future(snap, chain.expiry))
    if k_long is None:
        return None, "no_strike"
    k_short = nearest(chain.strikes, k_long + 10.0, above=k_long)
    if k_short is None:
        return None, "no_strike"
    return (Leg(chain.contract(k_long, "C"), +1), Leg(chain.contract(k_short, "C"), -1)), ""



def triggers(name: str, snap: Snapshot, h: HedgeParams,
             calendar: EventCalendar | None) -> Event | None:
    """(tag, numbers) when layer `name` should open now, else None."""
    if name in ("event", "fomc"):
        if calendar is None:
            return None
        kinds = ("CPI", "PPI") if name == "event" else ("FOMC",)
        for kind in kinds:
            ev = _next_event(calendar, kind, snap.time)
            if ev is None:
                continue
            when = ev.when
            lead = (when - snap.time).total_seconds() / 86400.0
            if 0 < lead <= h.event_lead_days:
                return f"{kind}:{exchange_date(when).isoformat()}", {
                    "release_kind": kind, "release": when.isoformat(), "lead_days": round(lead, 2)}
        return None
    return _tail_signal(snap, h)


# (id(calendar), kind) -> (calendar, asked at, its answer): the next event of a kind is the
# same from one asking up to that event's time, so a tick between asks nothing of the calendar
_NEXT: dict[tuple[int, str], tuple[EventCalendar, datetime, CalEvent | None]] = {}


def _next_event(calendar: EventCalendar, kind: str, now: datetime) -> CalEvent | None:
    """`calendar.next_event(kind, now)` (first event at or after `now`), remembered: equal for
    any `now` from the time it was asked at up to the answer's own time (no event of that kind
    lies between). The entry holds the calendar, so its id is not reused while it lives."""
    key = (id(calendar), kind)
    hit = _NEXT.get(key)
    if hit is not None and hit[0] is calendar and hit[1] <= now \
            and (hit[2] is None or now <= hit[2].when):
        return hit[2]
    ev = calendar.next_event(kind, now)
    if len(_NEXT) > 64:
        _NEXT.clear()
    _NEXT[key] = (calendar, now, ev)
    return ev


def _tail_signal(snap: Snapshot, h: HedgeParams) -> Event | None:
    bars = snap.bars
    if bars is None or len(bars) < max(30, h.divergence_days + 2):
        return None
    return daily.memo(bars, ("tail", h.rsi_high, h.rsi_low, h.divergence_days),
                      lambda b: _tail_from_bars(b, h))


def _rsi14(bars: pd.DataFrame) -> list[float]:
    """The last two RSI(14) values of the daily closes (`signals.rsi_last`), computed once per
    set of bars (the warning and its re-arm check both read them)."""
    return daily.memo(bars, ("rsi_last", 14), lambda b: signals.rsi_last(b["close"], 14, 2))


def _divergence(bars: pd.DataFrame, days: int) -> int | None:
    """The last `signals.ad_divergence` of the daily closes and A/D line (None: no bar),
    once per set of bars."""
    return daily.memo(bars, ("ad_divergence_last", days),
                      lambda b: signals.ad_divergence_last(b["close"], b["ad_line"], days))


def _tail_from_bars(bars: pd.DataFrame, h: HedgeParams) -> Event | None:
    """The tail-layer warning on the last daily bar, tagged with that bar's date."""
    before, now = _rsi14(bars)
    day = str(bars.index[-1])[:10]
    if before < h.rsi_high <= now:
        return f"rsi_high:{day}", {"signal": "rsi_cross_up", "rsi": round(now, 2),
                                   "threshold": h.rsi_high}
    if before > h.rsi_low >= now:
        return f"rsi_low:{day}", {"signal": "rsi_cross_down", "rsi": round(now, 2),
                                  "threshold": h.rsi_low}
    if "ad_line" in bars:
        div = _divergence(bars, h.divergence_days)
        if div is not None and div < 0:
            return f"ad_divergence:{day}", {"signal": "ad_divergence",
                                            "lookback_days": h.divergence_days}
    return None


def tail_holds(snap: Snapshot, h: HedgeParams) -> Event | None:
    """Is the tail warning still standing on the last daily bar (RSI(14) beyond a threshold,
    or the A/D line still not confirming)? Tagged `rearm:<signal>:<day>`: a layer re-armed
    after a take-profit opens at most once a day."""
    bars = snap.bars
    if bars is None or len(bars) < max(30, h.divergence_days + 2):
        return None
    return daily.memo(bars, ("tail_holds", h.rsi_high, h.rsi_low, h.divergence_days),
                      lambda b: _holds_from_bars(b, h))


def _holds_from_bars(bars: pd.DataFrame, h: HedgeParams) -> Event | None:
    now = _rsi14(bars)[-1]
    day = str(bars.index[-1])[:10]
    if now >= h.rsi_high or now <= h.rsi_low:
        side = "rsi_high" if now >= h.rsi_high else "rsi_low"
        return f"rearm:{side}:{day}", {"signal": f"{side}_holds", "rsi": round(now, 2),
                                       "threshold": h.rsi_high if side == "rsi_high" else h.rsi_low}
    if "ad_line" in bars:
        div = _divergence(bars, h.divergence_days)
        if div is not None and div < 0:
            return f"rearm:ad_divergence:{day}", {"signal": "ad_divergence_holds",
                                                  "lookback_days": h.divergence_days}
    return None
