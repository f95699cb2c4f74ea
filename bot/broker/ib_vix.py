"""Once per session on the IB path: VIX computed from SPX option quotes by the Cboe method
(strategies.vix) beside IB's own VIX index tick, logged as `market.vix_check`.

A check of the chains the bot trades on against the volatility index the market publishes;
it decides nothing. Cboe uses every listed strike of the two expiries bracketing 30 days;
this takes the out-of-the-money strikes within `window` x SPX (both rights at the `n_atm`
strikes nearest the forward, where K0 falls), thinned evenly to at most `per_side` a side, so it
stays inside IB's market-data line limit (snapshots, at most `max_lines` at a time beside
the streaming book) and pacing. The difference it logs includes that sampling error
(within 0.1 VIX points of every strike on the emulator's chains at 40 a side).
It runs in the background so the decision tick never waits for it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import numpy as np
from ib_async import IB, Option, Ticker

from bot import logs
from bot.broker.ib_chains import sane_quote
from strategies import expiry as xp
from strategies import vix
from strategies.types import Chain

log = logs.get("bot.broker.ib")


class VixCheck:
    def __init__(self, ib: IB, rate: float = 0.04, per_side: int = 40,
                 window: tuple[float, float] = (0.6, 1.3), n_atm: int = 6,
                 max_lines: Callable[[], int] = lambda: 5, timeout: float = 30.0) -> None:
        self.ib, self.rate, self.per_side = ib, rate, per_side
        self.window, self.n_atm, self.max_lines, self.timeout = window, n_atm, max_lines, timeout
        self.day: date | None = None  # the session last checked (tried once, success or not)
        self.task: asyncio.Task | None = None
        self.last: dict[str, Any] | None = None

    def due(self, now: datetime) -> bool:
        return self.day != xp.exchange_date(now) and (self.task is None or self.task.done())

    def start(self, now: datetime, expiries: tuple[date, ...], spx: float,
              ib_vix: float) -> None:
        """Begin today's check in the background (once per exchange date)."""
        self.day = xp.exchange_date(now)
        self.task = asyncio.ensure_future(self.run(now, expiries, spx, ib_vix))

    async def run(self, now: datetime, expiries: tuple[date, ...], spx: float,
                  ib_vix: float) -> dict[str, Any] | None:
        try:
            ours, near, nxt, quotes = await self._compute(now, expiries, spx)
        except (ValueError, TimeoutError, ConnectionError) as e:
            log.warning("market.vix_check_failed", error=str(e) or repr(e), ib_vix=ib_vix,
                        market_time=now.isoformat())
            return None
        diff = ours - ib_vix if math.isfinite(ib_vix) else math.nan
        self.last = dict(ours=round(ours, 2), ib=ib_vix, diff=round(diff, 2),
                         near=near.isoformat(), next=nxt.isoformat(), quotes=quotes,
                         spx=spx, market_time=now.isoformat())
        log.info("market.vix_check", **self.last)
        return self.last

    async def _compute(self, now: datetime, expiries: tuple[date, ...],
                       spx: float) -> tuple[float, date, date, int]:
        if not spx > 0:
            raise ValueError("no SPX level to centre the strikes on")
        live = [e for e in expiries if xp.year_fraction(e, now) > 0]
        i, j = vix.pick_terms([xp.year_fraction(e, now) for e in live])
        chains, quotes = [], 0
        for e in (live[i], live[j]):
            chain, n = await self._chain(e, now, spx)
            chains.append(chain)
            quotes += n
        value = vix.vix_from_chains(chains, self.rate)
        if not math.isfinite(value):
            raise ValueError(f"VIX not finite from {quotes} quotes on {live[i]}, {live[j]}")
        return value, live[i], live[j], quotes

    def _pick(self, strikes: np.ndarray, spx: float, fwd: float, right: str) -> list[float]:
        """Out-of-the-money strikes of one right about the forward estimate `fwd` (where K0
        falls, so both rights are there), thinned evenly from the money outwards."""
        lo, hi = self.window
        band = strikes[np.argsort(np.abs(strikes - fwd))[:self.n_atm]]
        if right == "P":
            side = strikes[(strikes >= lo * spx) & (strikes <= fwd)]
        else:
            side = strikes[(strikes >= fwd) & (strikes <= hi * spx)]
        step = max(1, math.ceil(side.size / self.per_side))
        near = side[::-step] if right == "P" else side[::step]  # from the money outwards
        return sorted({float(k) for k in (*near, *band)})

    async def _chain(self, e: date, now: datetime, spx: float) -> tuple[Chain, int]:
        wanted: list[Any] = []
        years = xp.year_fraction(e, now)
        fwd = spx * math.exp(self.rate * years)  # no dividends: above the true forward
        for right in ("P", "C"):
            details = await asyncio.wait_for(self.ib.reqContractDetailsAsync(Option(
                "SPX", f"{e:%Y%m%d}", right=right, exchange="SMART", currency="USD",
                tradingClass="SPX")), self.timeout)
            by_strike = {float(d.contract.strike): d.contract for d in details or []
                         if d.contract is not None}
            ks = np.array(sorted(by_strike))
            wanted += [by_strike[k] for k in self._pick(ks, spx, fwd, right)]
        if not wanted:
            raise ValueError(f"no SPX options listed for {e}")
        tickers: list[Ticker] = []
        while len(tickers) < len(wanted):
            batch = wanted[len(tickers):len(tickers) + max(1, self.max_lines())]
            tickers += await asyncio.wait_for(self.ib.reqTickersAsync(*batch), self.timeout)
        strikes = np.array(sorted({float(c.strike) for c in wanted}))
        a = {k: np.full(strikes.size, np.nan) for k in ("cb", "ca", "pb", "pa")}
        n = 0
        for t in tickers:
            c = t.contract
            if c is None:
                continue
            bid, ask, problem = sane_quote(t.bid, t.ask)
            if problem == "zero" and math.isfinite(ask):
                bid = 0.0  # no bid: the method counts it (two in a row end a strip)
            i = int(np.searchsorted(strikes, float(c.strike)))
            p = "c" if c.right == "C" else "p"
            a[p + "b"][i], a[p + "a"][i] = bid, ask
            n += int(math.isfinite(ask))
        z = np.full(strikes.size, np.nan)
        chain = Chain("SPX", "SPX", e, years, strikes, a["cb"], a["ca"],
                      a["pb"], a["pa"], z, z, z, z, z, z, 100, now)
        return chain, n
