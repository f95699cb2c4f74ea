"""Synthetic snapshots for strategy tests: Black-Scholes chains at a given SPX level and vol.

Independent of the simulator: a flat-ish skew, listed SPX standard monthlies, VIX options on
Black-76 around futures in mild contango. Quotes are mid +- a fixed half spread.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from strategies import expiry as xp
from strategies.pricing import black76_price, bs_price, greeks
from strategies.types import Account, Chain, Snapshot

R = 0.04


def _chain(symbol, tclass, exp, t, strikes, mid_c, mid_p, dc, dp, iv, vc, vp, mult, half):
    return Chain(symbol, tclass, exp, t, strikes,
                 call_bid=np.maximum(mid_c - half, 0.0), call_ask=mid_c + half,
                 put_bid=np.maximum(mid_p - half, 0.0), put_ask=mid_p + half,
                 call_delta=dc, put_delta=dp, call_iv=iv, put_iv=iv, call_vega=vc, put_vega=vp,
                 multiplier=mult)


def spx_chains(now: datetime, spx: float, vol: float, n: int = 4) -> dict:
    strikes = np.arange(np.floor(spx * 0.7 / 5) * 5, np.ceil(spx * 1.3 / 5) * 5 + 5, 5.0)
    out = {}
    for exp in xp.spx_monthlies(xp.exchange_date(now), n):
        t = xp.year_fraction(exp, now)
        if t <= 0:
            continue
        m = np.log(strikes / spx) / np.sqrt(t)
        iv = np.clip(vol * (1 - 0.25 * m), 0.05, 2.0)
        mc, mp = bs_price("c", spx, strikes, t, R, iv), bs_price("p", spx, strikes, t, R, iv)
        gc, gp = greeks("c", spx, strikes, t, R, iv), greeks("p", spx, strikes, t, R, iv)
        half = np.maximum(0.05, 0.02 * (mc + mp) / 2)
        out[exp] = _chain("SPX", "SPX", exp, t, strikes, mc, mp, gc["delta"], gp["delta"], iv,
                          gc["vega"], gp["vega"], 100, half)
    return out


def vix_chains(now: datetime, vix: float, n: int = 3) -> tuple[dict, dict]:
    strikes = np.arange(10.0, 81.0, 1.0)
    chains, futures = {}, {}
    for i, exp in enumerate(xp.vix_expiries(xp.exchange_date(now), n)):
        t = xp.year_fraction(exp, now)
        if t <= 0:
            continue
        F = vix * (1 + 0.04 * (i + 1))
        futures[exp] = F
        iv = np.full_like(strikes, 0.9)
        mc, mp = black76_price("c", F, strikes, t, R, iv), black76_price("p", F, strikes, t, R, iv)
        d = np.log(F / strikes) / (iv * np.sqrt(t)) + 0.5 * iv * np.sqrt(t)
        from scipy.special import ndtr

        dc = np.exp(-R * t) * ndtr(d)
        out_v = np.full_like(strikes, 0.01)
        chains[exp] = _chain("VIX", "VIX", exp, t, strikes, mc, mp, dc, dc - np.exp(-R * t), iv,
                             out_v, out_v, 100, 0.05)
    return chains, futures


def bars(end: date, closes, ad=None) -> pd.DataFrame:
    closes = np.asarray(closes, dtype=float)
    idx = pd.bdate_range(end=end, periods=len(closes), name="date")
    ad = np.cumsum(np.sign(np.diff(closes, prepend=closes[0])) * 100) if ad is None else ad
    return pd.DataFrame({"open": closes, "high": closes, "low": closes, "close": closes,
                         "vix": 15.0, "ad_line": ad}, index=idx)


def snapshot(now: datetime, spx: float, vix: float, history=None, minutes_since_open=60.0,
             net_liq: float = 1_000_000.0) -> Snapshot:
    vc, vf = vix_chains(now, vix)
    hist = bars(xp.exchange_date(now) - timedelta(days=1),
                history if history is not None else np.linspace(spx * 0.95, spx, 120))
    return Snapshot(time=now, spx=spx, vix=vix, chains=spx_chains(now, spx, vix / 100 * 0.95),
                    account=Account(net_liquidation=net_liq, excess_liquidity=net_liq,
                                    cushion=1.0),
                    vix_futures=vf, vix_chains=vc, bars=hist,
                    minutes_since_open=minutes_since_open, market_open=True)


def at(day: date, hour: int = 11, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=xp.NY).astimezone(xp.UTC)
