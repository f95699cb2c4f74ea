"""The year of daily bars that precedes a simulated market's start (`history_bars`): the
model's daily step (`bot.sim.market`) at one step a day, ending at the market's starting
levels, so that daily signals (RSI, MACD, the A/D line) have their history on day one."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bot.sim.bars import ad_move
from bot.sim.grid import OVERNIGHT, V_CAP, V_FLOOR, YEAR_DAYS
from strategies import expiry as xp

if TYPE_CHECKING:
    from bot.sim.market import Market


def history_bars(mk: Market, days: int) -> pd.DataFrame:
    """Daily bars for the `days` sessions before `mk`'s start, ending at its starting levels
    (drawn from their own generator: the session paths' draws do not depend on `days`)."""
    sc = mk.scenario
    rng = np.random.default_rng([mk.seed, 1])
    z = rng.standard_normal((days, 5))
    u = rng.random((days, 3))
    dt = 1.0 / YEAR_DAYS
    v, x, ep = sc.theta, 0.0, 0
    y_end = math.log(mk.v)
    rows = []
    for i in range(days):
        sv = math.sqrt(v)
        jump = 0.0
        if u[i, 0] < sc.jump_rate * dt:
            jump = sc.jump_mean + sc.jump_sd * z[i, 2]
            v += -sc.jump_var * math.log(1.0 - u[i, 1])
        x_on = x + sv * math.sqrt(OVERNIGHT * dt) * z[i, 3]
        x_new = x + (sc.mu - 0.5 * v) * dt + sv * math.sqrt(dt) * z[i, 0] + jump
        kap = sc.kappa * math.sqrt(max(1.0, v / sc.theta))
        zv = sc.rho * z[i, 0] + math.sqrt(1 - sc.rho**2) * z[i, 1]
        dv = kap * (sc.theta - v) * dt + sc.xi * sv * math.sqrt(dt) * zv
        v = min(V_CAP, max(V_FLOOR, v + dv))
        left = days - i
        if left <= 20:  # glide the variance to the starting level
            v = math.exp(math.log(v) + (y_end - math.log(v)) / left)
        if ep == 0 and u[i, 2] < sc.divergence_rate * dt:
            ep = 10 + int(u[i, 2] * 1e4) % 16
        rng_hi = abs(z[i, 4]) * sv * math.sqrt(dt) * 0.6
        o, c = x_on, x_new
        rows.append((o, max(o, c) + rng_hi, min(o, c) - rng_hi, c, mk.vix_at(v),
                     math.expm1(c - x), ep > 0))
        ep = max(0, ep - 1)
        x = x_new
    arr = np.array([r[:6] for r in rows])
    shift = math.log(sc.spx0) - arr[-1, 3]
    ad = np.cumsum([float(ad_move(np.array([r[5]]), r[6], np.ones(1))[0]) + 300 * z[i, 4]
                    for i, r in enumerate(rows)])
    idx: list[pd.Timestamp] = []
    d = mk._next
    while len(idx) < days:
        d -= timedelta(days=1)
        if d.weekday() < 5 if d < xp.CALENDAR_START else xp.spx_option_session(d):
            idx.append(pd.Timestamp(d))  # (weekdays before the calendar starts)
    return pd.DataFrame(
        {"open": np.exp(arr[:, 0] + shift), "high": np.exp(arr[:, 1] + shift),
         "low": np.exp(arr[:, 2] + shift), "close": np.exp(arr[:, 3] + shift),
         "vix": arr[:, 4], "ad_line": ad - ad[-1]},
        index=pd.DatetimeIndex(idx[::-1], name="date"),
    )
