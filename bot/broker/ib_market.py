"""Market data for IBBroker: which option lines to hold (subscribed and released), daily bars.

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

What the held lines say (index values, VIX futures, the SPX/VIX chains with their quote
times and greeks) is read by the `Chains` mixin, bot.broker.ib_chains. `on_ticks` stamps a
line's bid/ask updates on the broker clock (bot.broker.ib_quotes).
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

from bot.broker.ib_chains import Chains, _num
from bot.broker.ib_contracts import Contracts
from bot.broker.ib_lines import held_wings, pick_strikes
from bot.broker.ib_quotes import QuoteTimes, emptied
from strategies import expiry as xp
from strategies.types import Contract


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


class MarketBook(Chains):
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

    def on_ticks(self, tickers: Any) -> None:
        """ib_async's pendingTickersEvent: stamp the book's lines whose bid/ask moved."""
        self.times.stamp(tickers, {t for _, t in self.lines.values()})

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

