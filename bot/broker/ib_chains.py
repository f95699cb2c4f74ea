"""What the lines MarketBook holds say (bot.broker.ib_market): index values, VIX futures, and
the SPX and VIX chains built from the option lines.

Chains span every listed strike (SPX: 50%-150% of spot); quotes are NaN except on held
lines. A quote that is missing, zero/negative or crossed (bid > ask) is NaN in the arrays
and counted in `flagged`. Greeks come from IB's model ticks when present, otherwise from our
own implied vol of the mid (strategies.pricing).

Quote time: each line is stamped, on the broker clock, when IB last sent its bid or ask
(`MarketBook.on_ticks`, bot.broker.ib_quotes); a chain's `as_of` is the latest update among
its lines (`QuoteTimes.as_of`), so an expiry whose
bid/asks IB stopped updating ages and the guard's `quote_stale` fires. Delayed data (types
3/4) is a further 15 min old.

`Chains` is a mixin over MarketBook's state (cx, plan, lines, times, flagged).
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from ib_async import Ticker

from bot.broker.ib_contracts import Contracts
from bot.broker.ib_quotes import QuoteTimes
from strategies import expiry as xp
from strategies import pricing
from strategies.types import Chain, Contract

if TYPE_CHECKING:
    from bot.broker.ib_market import Plan


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def sane_quote(bid: Any, ask: Any) -> tuple[float, float, str]:
    """(bid, ask, problem): NaN for a missing, zero/negative or crossed side."""
    b, a = _num(bid), _num(ask)
    problem = ""
    if math.isnan(b) or math.isnan(a):
        problem = "missing"
    if not math.isnan(b) and b <= 0:
        b, problem = math.nan, problem or "zero"
    if not math.isnan(a) and a <= 0:
        a, problem = math.nan, problem or "zero"
    if not (math.isnan(b) or math.isnan(a)) and b > a:
        b, a, problem = math.nan, math.nan, "crossed"
    return b, a, problem



class Chains:
    cx: Contracts
    plan: Plan
    lines: dict[str, tuple[Contract | str, Ticker]]
    times: QuoteTimes
    flagged: Counter[str]

    # --- values --------------------------------------------------------------------------------
    def index(self, symbol: str) -> float:
        line = self.lines.get(symbol)
        if line is None:
            return math.nan
        t = line[1]
        if symbol == "AD-NYSE":
            b, a = _num(t.bid), _num(t.ask)
            return b - a if b >= 0 and a >= 0 else math.nan
        last = _num(t.last)
        return last if last > 0 else _num(t.close) if _num(t.close) > 0 else math.nan

    def future(self, expiry: date) -> float:
        line = self.lines.get(f"VIX:FUT:{expiry:%Y%m%d}")
        if line is None:
            return math.nan
        b, a, _ = sane_quote(line[1].bid, line[1].ask)
        if not math.isnan(b):
            return (b + a) / 2
        last = _num(line[1].last)
        return last if last > 0 else math.nan

    # --- chains ----------------------------------------------------------------------------------
    def chains(self, now: datetime, md_type: int, only: set[tuple[str, date]] | None = None
               ) -> tuple[dict[date, Chain], dict[date, Chain]]:
        """SPX and VIX chains by expiry (only the (symbol, expiry) pairs in `only`, if given)."""
        S = self.index("SPX")
        self.flagged.clear()
        out: dict[str, dict[date, Chain]] = {"SPX": {}, "VIX": {}}
        by_exp: dict[tuple[str, date], list[tuple[Contract, Ticker]]] = {}
        for target, t in self.lines.values():
            if isinstance(target, Contract) and target.sec_type == "OPT":
                by_exp.setdefault((target.symbol, target.expiry), []).append((target, t))
        for sym, listing in self.cx.listings.items():
            ks = listing.strikes
            if sym == "SPX" and S > 0:
                ks = ks[(ks >= 0.5 * S) & (ks <= 1.5 * S)]
            for e in listing.expiries:
                if only is not None and (sym, e) not in only:
                    continue
                t_years = xp.year_fraction(e, now)
                if t_years <= 0 or xp.dte(e, now) > 400:
                    continue
                und = S if sym == "SPX" else self.future(e)
                lines = by_exp.get((sym, e), [])
                out[sym][e] = self._chain(sym, e, t_years, ks, lines, und, now, md_type)
        return out["SPX"], out["VIX"]

    def _chain(self, sym: str, e: date, t: float, ks: np.ndarray,
               lines: list[tuple[Contract, Ticker]], und: float, now: datetime,
               md_type: int) -> Chain:
        n = ks.size
        a = {k: np.full(n, np.nan)
             for k in ("cb", "ca", "pb", "pa", "cd", "pd", "civ", "piv", "cv", "pv")}
        delayed = md_type in (3, 4)
        for c, tk in lines:
            i = int(np.searchsorted(ks, c.strike))
            if i >= n or ks[i] != c.strike:
                continue
            bid, ask, problem = sane_quote(tk.bid, tk.ask)
            if problem:
                self.flagged[problem] += 1
            delta, iv, vega = self._greeks(sym, c, tk, bid, ask, und, t)
            p = "c" if c.right == "C" else "p"
            a[p + "b"][i], a[p + "a"][i], a[p + "d"][i] = bid, ask, delta
            a[p + "iv"][i], a[p + "v"][i] = iv, vega
            delayed = delayed or tk.marketDataType in (3, 4)
        return Chain(symbol=sym, trading_class=sym, expiry=e, t=t, strikes=ks,
                     call_bid=a["cb"], call_ask=a["ca"], put_bid=a["pb"], put_ask=a["pa"],
                     call_delta=a["cd"], put_delta=a["pd"], call_iv=a["civ"], put_iv=a["piv"],
                     call_vega=a["cv"], put_vega=a["pv"], multiplier=100,
                     as_of=self.times.as_of([tk for _, tk in lines], now, delayed))

    def _greeks(self, sym: str, c: Contract, tk: Ticker, bid: float, ask: float, und: float,
                t: float) -> tuple[float, float, float]:
        g = tk.modelGreeks
        delta = _num(g.delta) if g is not None else math.nan
        iv = _num(g.impliedVol) if g is not None else math.nan
        vega = _num(g.vega) if g is not None else math.nan
        if vega == -2:  # IB's "not available" survives ib_async for vega/theta
            vega = math.nan
        if not math.isnan(delta) and not math.isnan(iv) and not math.isnan(vega):
            return delta, iv, vega
        if math.isnan(bid) or math.isnan(ask) or not und > 0:
            return delta, iv, vega
        flag, r, mid = c.right.lower(), self.plan.rate, (bid + ask) / 2
        if sym == "SPX":
            own_iv = float(pricing.implied_vol(mid, und, c.strike, t, r, flag))
            g2 = pricing.greeks(flag, und, c.strike, t, r, own_iv)
        else:
            own_iv = float(pricing.black76_implied_vol(mid, und, c.strike, t, r, flag))
            g2 = pricing.black76_greeks(flag, und, c.strike, t, r, own_iv)
        return (delta if not math.isnan(delta) else float(g2["delta"]),
                iv if not math.isnan(iv) else own_iv,
                vega if not math.isnan(vega) else float(g2["vega"]))

    def vix_futures(self) -> dict[date, float]:
        out = {}
        for e in self.cx.futures:
            f = self.future(e)
            if f > 0:
                out[e] = f
        return out
