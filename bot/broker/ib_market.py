"""Market data for IBBroker: which option lines to hold, the chains built from them, daily bars.

IB allows about 100 simultaneous market data lines, so the book subscribes only what a
decision can use: the underlyings (SPX, VIX, AD-NYSE) and the front VIX futures; every held
option; on the expiry after each SPX expiry held today (the roll target), then on the entry
expiries, the `per_side` puts and calls whose estimated |delta| is nearest the short target
plus their wings at each planned width; at-the-money calls on the two front expiries
(calendar layer); calls near the VIX future on the front VIX expiries (hedge layers).
Deltas are estimated with Black-Scholes on the implied vols already seen on that expiry
(VIX/100 before any), so the set re-centres as quotes arrive. Each snapshot diffs the
wanted set against what is held: new lines are subscribed, lines no longer wanted are
cancelled (released).

Chains span every listed strike (SPX: 50%-150% of spot); quotes are NaN except on held
lines. A quote that is missing, zero/negative or crossed (bid > ask) is NaN in the arrays
and counted in `flagged`. Greeks come from IB's model ticks when present, otherwise from our
own implied vol of the mid (strategies.pricing).

Quote time: each line is stamped, on the broker clock, when IB last sent its bid or ask
(`on_ticks`, bot.broker.ib_quotes); a chain's `as_of` is the latest update among its
lines (`QuoteTimes.as_of`), so an expiry whose
bid/asks IB stopped updating ages and the guard's `quote_stale` fires. Delayed data (types
3/4) is a further 15 min old.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
from ib_async import IB, Ticker

from bot.broker.ib_contracts import Contracts
from bot.broker.ib_lines import held_wings, pick_strikes
from bot.broker.ib_quotes import QuoteTimes, emptied
from strategies import expiry as xp
from strategies import pricing
from strategies.types import Chain, Contract


@dataclass(frozen=True)
class Plan:
    entry_dte: tuple[int, int] = (45, 60)
    short_delta: float = 0.16
    widths: tuple[float, ...] = (50.0, 75.0)
    per_side: int = 5
    vix_expiries: int = 3
    rate: float = 0.04
    max_lines: int = 95
    quote_wait: float = 2.0  # seconds to wait for first quotes of new lines
    roll_wing_mults: tuple[float, ...] = (1.5, 1.25, 1.0)  # a roll's wings / the held wings


async def next_emit(event: Any) -> Any:
    """The next value an eventkit Event emits."""
    return await event


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


class MarketBook:
    def __init__(self, ib: IB, contracts: Contracts, plan: Plan,
                 now: Callable[[], datetime] | None = None) -> None:
        self.ib, self.cx, self.plan = ib, contracts, plan
        self.lines: dict[str, tuple[Contract | str, Ticker]] = {}
        self.times = QuoteTimes(now or (lambda: datetime.now(UTC)))
        self.refused: set[str] = set()  # lines IB refused (e.g. 354); not asked again
        self.flagged: Counter[str] = Counter()
        self.subscribed = self.released = 0
        self._bars: tuple[date, pd.DataFrame | None] | None = None
        self._held_on: dict[date, tuple[date, float]] = {}  # SPX expiry -> (day held, wings)
        # a roll whose close has filled and whose open is still to come: (the expiry rolled
        # from, the new condor's wings). Nothing is held then, so nothing else would bring the
        # next expiry's strikes at those wings (after a restart, not even _held_on)
        self.roll_target: tuple[date, float] | None = None
        self.pace_delay: Any = lambda: 0.0  # seconds until queued requests are sent (IBBroker)

    def reset(self) -> None:
        """The connection was lost: every line is gone with it."""
        self.lines.clear()
        self.refused.clear()
        self.times.clear()

    def refuse(self, req_id: int) -> str | None:
        for key, (_, t) in list(self.lines.items()):
            if self.ib.wrapper.ticker2ReqId["mktData"].get(t) == req_id:
                del self.lines[key]
                self.times.forget(t)
                self.refused.add(key)
                return key
        return None

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

    # --- choosing lines ------------------------------------------------------------------------
    def _sigma(self, expiry: date, strikes: np.ndarray, vix: float, S: float,
               t: float) -> np.ndarray:
        """Implied vols seen on this expiry, interpolated; before any, a generic index skew
        around VIX (x = ln(K/S)/sqrt(t): vol x (1 - x + x^2), x clipped to +-1.5)."""
        pts = sorted((c.strike, iv) for c, iv in self._ivs()
                     if c.expiry == expiry and c.symbol == "SPX")
        if len(pts) >= 1:
            xs, ys = zip(*pts)
            return np.interp(strikes, xs, ys)
        atm = vix / 100.0 if vix > 0 else 0.2
        x = np.clip(np.log(strikes / S) / np.sqrt(max(t, 1e-6)), -1.5, 1.5)
        return atm * (1.0 - x + x * x)

    def _ivs(self) -> list[tuple[Contract, float]]:
        out = []
        for target, t in self.lines.values():
            if isinstance(target, Contract) and target.sec_type == "OPT":
                g = t.modelGreeks
                iv = _num(g.impliedVol) if g is not None else math.nan
                if iv > 0:
                    out.append((target, iv))
        return out

    def _deltas(self, expiry: date) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """|delta| from IB's model ticks on this SPX expiry's lines: right -> (strikes, |delta|)."""
        pts: dict[str, list[tuple[float, float]]] = {}
        for target, t in self.lines.values():
            if (isinstance(target, Contract) and target.sec_type == "OPT"
                    and target.symbol == "SPX" and target.expiry == expiry):
                g = t.modelGreeks
                d = abs(_num(g.delta)) if g is not None else math.nan
                if d > 0:
                    pts.setdefault(target.right, []).append((target.strike, d))
        return {r: tuple(np.array(v, dtype=float) for v in zip(*sorted(p)))  # type: ignore[misc]
                for r, p in pts.items()}

    def wanted(self, now: datetime, held: list[Contract]) -> list[Contract | str]:
        """Every line the next decision may use, most important first."""
        fixed: list[Contract | str] = list(self.cx.indexes)
        fixed += [Contract("VIX", "FUT", e, multiplier=1000) for e in sorted(self.cx.futures)]
        want: list[Contract] = [c for c in held if c.sec_type == "OPT"]
        S, vix = self.index("SPX"), self.index("VIX")
        spx = self.cx.listings.get("SPX")
        if spx is not None and S > 0:
            ks = spx.strikes[(spx.strikes >= 0.5 * S) & (spx.strikes <= 1.5 * S)]
            lo, hi = self.plan.entry_dte
            # roll targets first: a held condor's next step outranks a new entry; held today
            # counts (a roll closes the old condor before it opens the new one); a target's
            # wings are the held wings times each step the roll may take
            exps: dict[date, tuple[float, ...]] = {}
            today = xp.exchange_date(now)
            self._held_on.update({e: (today, w) for e, w in held_wings(held).items()})
            for e, (day, w) in sorted(self._held_on.items()):
                for x in [x for x in spx.expiries if x > e][:1] if day == today else []:
                    exps[x] = exps.get(x, ()) + tuple(w * m for m in self.plan.roll_wing_mults)
            if self.roll_target is not None:
                e, w = self.roll_target
                for x in [x for x in spx.expiries if x > e][:1]:
                    exps[x] = (w, *exps.get(x, ()))
            for e in spx.expiries:
                if lo <= xp.dte(e, now) <= hi:
                    exps[e] = exps.get(e, ()) + self.plan.widths
            for e, widths in exps.items():
                plan = replace(self.plan, widths=tuple(dict.fromkeys(widths)))
                t = xp.year_fraction(e, now)
                have = frozenset((c.strike, c.right) for c, _ in self.lines.values()
                                 if isinstance(c, Contract) and c.symbol == "SPX" and c.expiry == e)
                sigma = self._sigma(e, ks, vix, S, t)
                for k, r in pick_strikes(ks, S, t, self.plan.rate, sigma, plan, have,
                                         self._deltas(e)):
                    want.append(Contract("SPX", "OPT", e, k, r, "SPX"))
            if ks.size:
                atm = float(ks[np.argmin(np.abs(ks - S))])
                want += [Contract("SPX", "OPT", e, atm, "C", "SPX")
                         for e in [x for x in spx.expiries if xp.dte(x, now) >= 7][:2]]
        vl = self.cx.listings.get("VIX")
        if vl is not None:
            for e in [x for x in vl.expiries if xp.dte(x, now) > 7][:self.plan.vix_expiries]:
                F = self.future(e)
                F = F if F > 0 else vix
                if not F > 0:
                    continue
                ks = vl.strikes
                k_long = float(ks[np.argmin(np.abs(ks - F))])
                for target in (F * 1.25, k_long + 10.0):
                    above = ks[ks > k_long]
                    if above.size:
                        k = float(above[np.argmin(np.abs(above - target))])
                        want.append(Contract("VIX", "OPT", e, k, "C", "VIX"))
                want.append(Contract("VIX", "OPT", e, k_long, "C", "VIX"))
        room = max(0, self.plan.max_lines - len(fixed))
        options: list[Contract | str] = [c for c in dict.fromkeys(want)
                                         if c.key not in self.refused]
        return fixed + options[:room]

    async def refresh(self, now: datetime, held: list[Contract]) -> None:
        """Subscribe what is wanted and not held, release what is held and not wanted."""
        if not all(s in self.lines for s in self.cx.indexes):
            futures = [Contract("VIX", "FUT", e, multiplier=1000) for e in self.cx.futures]
            await self._sync_lines([*self.cx.indexes, *futures])
        for _ in range(3):  # new lines bring implied vols that can move the choice: settle it
            want = self.wanted(now, held)
            if {w if isinstance(w, str) else w.key for w in want} == set(self.lines):
                return
            await self._sync_lines(want)

    async def _sync_lines(self, want: list[Contract | str]) -> None:
        keys = {(w if isinstance(w, str) else w.key): w for w in want}
        for key in [k for k in self.lines if k not in keys]:
            ticker = self.lines.pop(key)[1]
            self.times.forget(ticker)
            if ticker.contract is not None:
                self.ib.cancelMktData(ticker.contract)
            self.released += 1
        new = [w for k, w in keys.items() if k not in self.lines]
        if not new:
            return
        await self.cx.qualify([w for w in new if isinstance(w, Contract) and w.sec_type == "OPT"])
        fresh = []
        for w in new:
            ic = self.cx.indexes.get(w) if isinstance(w, str) else (
                self.cx.futures.get(w.expiry) if w.sec_type == "FUT" else self.cx.get(w))
            if ic is None:
                continue
            t = emptied(self.ib.reqMktData(ic, "", False, False))
            self.lines[w if isinstance(w, str) else w.key] = (w, t)
            self.subscribed += 1
            fresh.append(t)
        await self._await_quotes(fresh)

    async def _await_quotes(self, tickers: list[Ticker]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.plan.quote_wait + self.pace_delay()

        def ready(t: Ticker) -> bool:
            return not (math.isnan(t.bid) and math.isnan(t.ask) and math.isnan(t.last))

        try:
            while tickers and not all(ready(t) for t in tickers):
                left = deadline - loop.time()
                if left <= 0 or not self.ib.isConnected():
                    return
                try:
                    await asyncio.wait_for(next_emit(self.ib.pendingTickersEvent), left)
                except TimeoutError:
                    return
        finally:  # a line whose first bid/ask is in: its later bid/ask ticks are updates
            self.times.settle(t for t in tickers
                              if not (math.isnan(t.bid) and math.isnan(t.ask)))

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

    def on_ticks(self, tickers: Any) -> None:
        """ib_async's pendingTickersEvent: stamp the book's lines whose bid/ask moved."""
        self.times.stamp(tickers, {t for _, t in self.lines.values()})


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

    # --- daily bars ------------------------------------------------------------------------------
    async def bars(self, now: datetime, timeout: float) -> pd.DataFrame | None:
        """SPX daily bars of completed sessions with `ad_line` from AD-NYSE (the running sum of
        its daily net advances), fetched once per exchange date."""
        today = xp.exchange_date(now)
        if self._bars is not None and self._bars[0] == today:
            return self._bars[1]
        frames = {}
        for sym in ("SPX", "AD-NYSE"):
            ic = self.cx.indexes.get(sym)
            if ic is None:
                continue
            bars = await self.ib.reqHistoricalDataAsync(ic, "", "1 Y", "1 day", "TRADES", True,
                                                        timeout=timeout)
            rows = [(pd.Timestamp(b.date), b.open, b.high, b.low, b.close) for b in bars or []
                    if pd.Timestamp(b.date).date() < today]
            if rows:
                frames[sym] = pd.DataFrame(rows, columns=["date", "open", "high", "low", "close"]
                                           ).set_index("date")
        df = frames.get("SPX")
        if df is not None and "AD-NYSE" in frames:
            ad = frames["AD-NYSE"]["close"].cumsum()
            df = df.join((ad - ad.iloc[-1]).rename("ad_line"), how="left")
        self._bars = (today, df)
        return df

