"""The Cboe VIX formula (`strategies.vix`) run on the simulator's own SPX options: the SPX
Friday expiries bracketing 30 days (SPXW weeklies, PM-settled, and the AM monthly when it is
one of them), priced and quoted as `bot.sim.chains` prices them: a check that the simulated
chain prices its own VIX (`condorbot simulate`, tests/test_sim_surface.py).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import numpy as np

from bot.sim.chains import listing
from bot.sim.lazychain import _price, state
from bot.sim.market import Market
from strategies import expiry as xp
from strategies import vix as vx


def vix_expiries(when: datetime) -> list[tuple[date, float]]:
    """(expiry, years to settlement) of the SPX Friday expiries 20-45 days after `when`: the
    standard monthly (third Friday) settles at 09:30 New York, weeklies (SPXW) at 16:00; a
    Friday holiday moves the expiry to the Thursday."""
    out = []
    day = xp.exchange_date(when)
    for k in range(20, 46):
        d = day + timedelta(days=k)
        if d.weekday() != 4:
            continue
        while xp.spx_option_session(d) is None:
            d -= timedelta(days=1)
        am = d == xp.spx_monthly_expiry(d.year, d.month)
        settle = datetime.combine(d, time(9, 30) if am else time(16, 0), tzinfo=xp.NY)
        out.append((d, (settle - when).total_seconds() / (xp.DAYS_PER_YEAR * 86400.0)))
    return out


def surface_vix(mk: Market, strikes: np.ndarray | None = None) -> float:
    """The Cboe VIX formula on the simulated SPX options of the two Friday expiries
    bracketing 30 days, quoted as the chains are (bid/ask, ticks), at `strikes` (default:
    the listing at the current spot), from the market's current state."""
    when = mk.time
    ks = listing(mk.spx) if strikes is None else strikes
    terms = vix_expiries(when)
    i, j = vx.pick_terms([t for _, t in terms])
    picked = [terms[i], terms[j]]
    parts = [("SPX", ks, t, float(mk.forward(t))) for _, t in picked]
    quotes = _price(state(mk), parts)
    near, nxt = (vx.term_variance(ks, p["call_bid"], p["call_ask"], p["put_bid"], p["put_ask"],
                                  t, mk.r) for p, (_, t) in zip(quotes, picked))
    return vx.interpolate(near, nxt)
