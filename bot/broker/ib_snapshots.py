"""IBBroker's reads: the server time, snapshots (market, account, positions) and positions.

A mixin over IBBroker's state (ib, s, cx, clock, market, vix_check, account, _flagged,
_require, _guard, _resync_now); see bot.broker.ib for the rules they follow. Each
snapshot re-centres the market book's lines (bot.broker.ib_market) and reads its chains
(bot.broker.ib_chains); once per session, an hour after the open, it starts the VIX check
(bot.broker.ib_vix) in the background.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from bot import logs
from bot.broker.ib_accounts import account_values
from bot.broker.ib_contracts import Contracts
from bot.broker.ib_market import MarketBook
from bot.broker.ib_pacing import BrokerClock
from bot.broker.ib_vix import VixCheck
from strategies import expiry as xp
from strategies.types import Account, Contract, Leg, Position, Snapshot

log = logs.get("bot.broker.ib")
VIX_CHECK_AFTER = 60.0  # minutes after the open: the session's VIX check (ib_vix) starts


class Snapshots:
    ib: Any
    s: Any
    cx: Contracts
    clock: BrokerClock
    market: MarketBook
    vix_check: VixCheck
    account: str
    _flagged: dict[str, int]

    def _require(self) -> None: ...

    async def _guard(self, coro: Any) -> Any: ...

    async def _resync_now(self) -> None: ...

    # --- time ----------------------------------------------------------------------------------

    async def _sync_clock(self) -> datetime:
        t = await asyncio.wait_for(self.ib.reqCurrentTimeAsync(), self.s.timeout)
        guessed = not self.clock.measured  # ticks since the last read were dated at 1x
        self.clock.observe(t)
        now = self.clock.now()
        self.market.times.clock_synced(now if self.clock.jumped or guessed else None)
        return now

    async def server_time(self) -> datetime:
        self._require()
        return await self._guard(self._sync_clock())
    # --- market --------------------------------------------------------------------------------
    def _held(self) -> list[Contract]:
        out = []
        for p in self.ib.positions(self.account):
            c = self.cx.ours(p.contract)
            if c is not None and p.position:
                out.append(c)
        return out

    def plan_roll(self, rolled_from: date | None, wing: float = 0.0) -> None:
        """The strategy's roll open to come (its close filled): subscribe the expiry after
        `rolled_from` at `wing`-wide wings from the next snapshot on; None: no roll pending."""
        self.market.roll_target = None if rolled_from is None else (rolled_from, float(wing))

    async def snapshot(self) -> Snapshot:
        self._require()
        return await self._guard(self._snapshot())

    async def _snapshot(self) -> Snapshot:
        await self._resync_now()
        now = await self._sync_clock()
        await self.market.refresh(now, self._held())
        bars = await self.market.bars(now, self.s.timeout * 3)
        chains, vix_chains = self.market.chains(now, self.s.market_data_type)
        flagged = dict(self.market.flagged)
        if flagged != self._flagged:
            self._flagged = flagged
            if flagged:
                log.warning("market.quotes_flagged", counts=flagged, action="NaN in the chain")
        opened = _opened(now)
        spx_listing = self.cx.listings.get("SPX")
        if (opened is not None and spx_listing is not None and self.vix_check.due(now)
                and (now - opened).total_seconds() >= VIX_CHECK_AFTER * 60):
            self.vix_check.start(now, spx_listing.expiries, self.market.index("SPX"),
                                 self.market.index("VIX"))
        return Snapshot(
            time=now, spx=self.market.index("SPX"), vix=self.market.index("VIX"), chains=chains,
            account=self._account(), positions=tuple(self._positions()),
            vix_futures=self.market.vix_futures(), vix_chains=vix_chains, bars=bars,
            minutes_since_open=(now - opened).total_seconds() / 60 if opened else 0.0,
            market_open=opened is not None)

    async def quote_snapshot(self, legs: Sequence[Leg]) -> Snapshot:
        """A walk step's cheap read: the broker time (one round trip) and the chains of the
        legs' expiries from the lines already held, as last sent; no line is subscribed or
        released and no bars are read (`snapshot` does that, each decision)."""
        self._require()
        now = await self.server_time()
        only = {(leg.contract.symbol, leg.contract.expiry) for leg in legs}
        chains, vix_chains = self.market.chains(now, self.s.market_data_type, only)
        opened = _opened(now)
        return Snapshot(
            time=now, spx=self.market.index("SPX"), vix=self.market.index("VIX"), chains=chains,
            account=self._account(), positions=tuple(self._positions()),
            vix_futures=self.market.vix_futures(), vix_chains=vix_chains,
            minutes_since_open=(now - opened).total_seconds() / 60 if opened else 0.0,
            market_open=opened is not None)

    def _account(self) -> Account:
        return account_values(self.ib.accountValues(self.account))

    def _positions(self) -> list[Position]:
        out = []
        for p in self.ib.positions(self.account):
            c = self.cx.ours(p.contract)
            if c is None or not p.position:
                continue
            out.append(Position(c, int(p.position), float(p.avgCost) / c.multiplier))
        return out

    async def positions(self) -> list[Position]:
        self._require()
        return self._positions()


def _opened(now: datetime) -> datetime | None:
    """The open of the SPX option session `now` is in, or None outside one."""
    session = xp.spx_option_session(xp.exchange_date(now))
    return session[0] if session is not None and session[0] <= now < session[1] else None
