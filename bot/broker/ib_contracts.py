"""Contracts for IBBroker: our `Contract` <-> ib_async contracts, qualification in batches with a
cache (unknown contracts are remembered too), and the listings IB announces.

Instruments: SPX and VIX indexes (IND on CBOE), the NYSE advance/decline index `AD-NYSE`
(IND on NYSE), VIX futures (FUT on CFE, trading class VX), SPX options with trading class `SPX`
only (the AM-settled standard monthlies; `SPXW` weeklies are never mixed in) and VIX options
(trading class VIX). Option listings come from reqSecDefOptParams, filtered on trading class.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
from ib_async import IB, Future, Index, Option
from ib_async import Contract as IBContract

from strategies.instruments import INSTRUMENTS, Instrument, for_contract
from strategies.types import Contract

log = logging.getLogger("bot.broker.ib")
INDEXES = {"SPX": "CBOE", "VIX": "CBOE", "AD-NYSE": "NYSE"}
BATCH = 50  # contracts per qualification batch


def _date(text: str) -> date:
    return datetime.strptime(text[:8], "%Y%m%d").date()


def to_ib(c: Contract) -> IBContract:
    """The ib_async contract for one of ours: trading class, listing exchange (futures) and
    multiplier from `strategies.instruments` (options are SMART-routed); a contract not in
    the table goes as given (IB refuses it with 200, remembered as unknown)."""
    try:
        inst = for_contract(c)
    except ValueError:  # not ours: asked of IB as given (it answers 200, remembered unknown)
        inst = Instrument(c.trading_class or c.symbol, c.symbol, c.sec_type,
                          "CFE" if c.sec_type == "FUT" else "SMART", c.multiplier, 0, 0, 0, 0, "")
    exp = f"{c.expiry:%Y%m%d}"
    if c.sec_type == "FUT":
        return Future(symbol=c.symbol, lastTradeDateOrContractMonth=exp, exchange=inst.exchange,
                      currency="USD", multiplier=str(inst.multiplier),
                      tradingClass=inst.trading_class)
    return Option(symbol=c.symbol, lastTradeDateOrContractMonth=exp, strike=float(c.strike),
                  right=c.right, exchange="SMART", currency="USD", multiplier=str(inst.multiplier),
                  tradingClass=inst.trading_class)


def _multiplier(ic: IBContract, trading_class: str) -> int:
    """IB's multiplier, or the instrument table's when IB left it blank."""
    if ic.multiplier:
        return int(float(ic.multiplier))
    inst = INSTRUMENTS.get(trading_class)
    return inst.multiplier if inst is not None else 100


def from_ib(ic: IBContract) -> Contract | None:
    """Our contract for an IB option or future (None for anything else)."""
    try:
        expiry = _date(ic.lastTradeDateOrContractMonth)
    except ValueError:
        return None
    if ic.secType == "FUT":
        return Contract(ic.symbol, "FUT", expiry, multiplier=_multiplier(ic, "VX"))
    if ic.secType == "OPT" and ic.right in ("C", "P"):
        tc = ic.tradingClass or ic.symbol
        return Contract(ic.symbol, "OPT", expiry, float(ic.strike), ic.right, tc,
                        _multiplier(ic, tc))
    return None


@dataclass(frozen=True)
class Listing:
    """An option class as IB lists it: expiries and the union of their strikes."""

    symbol: str
    trading_class: str
    expiries: tuple[date, ...]
    strikes: np.ndarray


class Contracts:
    def __init__(self, ib: IB) -> None:
        self.ib = ib
        self._cache: dict[str, IBContract | None] = {}
        self._ours: dict[int, Contract] = {}
        self.indexes: dict[str, IBContract] = {}
        self.futures: dict[date, IBContract] = {}
        self.listings: dict[str, Listing] = {}

    async def setup(self, n_futures: int = 6) -> None:
        """Qualify the indexes, read the SPX/VIX option listings and the VIX futures."""
        wanted = [s for s in INDEXES if s not in self.indexes]
        if wanted:
            found = await self.ib.qualifyContractsAsync(
                *(Index(s, INDEXES[s], "USD") for s in wanted))
            for s, c in zip(wanted, found):
                if isinstance(c, IBContract) and c.conId:
                    self.indexes[s] = c
                else:
                    log.warning("contract %s index not found", s)
        for sym in ("SPX", "VIX"):
            und = self.indexes.get(sym)
            if und is not None:
                listing = await self._listing(sym, und.conId)
                if listing is not None:
                    self.listings[sym] = listing
        details = await self.ib.reqContractDetailsAsync(
            Future("VIX", exchange="CFE", currency="USD"))
        futs = sorted((d.contract for d in details or [] if d.contract is not None
                       and d.contract.tradingClass in ("VX", "")),
                      key=lambda c: c.lastTradeDateOrContractMonth)
        self.futures = {}
        for fc in futs[:n_futures]:
            ours = from_ib(fc)
            if ours is not None:
                self.futures[ours.expiry] = fc
                self._remember(ours, fc)

    async def _listing(self, symbol: str, con_id: int) -> Listing | None:
        rows = await self.ib.reqSecDefOptParamsAsync(symbol, "", "IND", con_id)
        mine = [r for r in rows or [] if r.tradingClass == symbol]
        if not mine:
            log.warning("no %s option listing with trading class %s", symbol, symbol)
            return None
        best = next((r for r in mine if r.exchange == "SMART"), mine[0])
        exps = tuple(sorted({_date(e) for e in best.expirations}))
        return Listing(symbol, symbol, exps, np.array(sorted(set(best.strikes)), dtype=float))

    def _remember(self, ours: Contract, ic: IBContract) -> None:
        self._cache[ours.key] = ic
        self._ours[ic.conId] = ours

    def known(self, c: Contract) -> bool:
        return c.key in self._cache

    def get(self, c: Contract) -> IBContract | None:
        return self._cache.get(c.key)

    def ours(self, ic: IBContract) -> Contract | None:
        return self._ours.get(ic.conId) or from_ib(ic)

    async def qualify(self, contracts: list[Contract]) -> dict[str, IBContract | None]:
        """Qualified IB contracts by key; None for what IB does not know (cached both ways)."""
        todo = list({c.key: c for c in contracts if c.key not in self._cache}.values())
        for i in range(0, len(todo), BATCH):
            chunk = todo[i:i + BATCH]
            found = await self.ib.qualifyContractsAsync(*(to_ib(c) for c in chunk))
            for c, ic in zip(chunk, found):
                if isinstance(ic, IBContract) and ic.conId:
                    self._remember(c, ic)
                else:
                    self._cache[c.key] = None
        return {c.key: self._cache.get(c.key) for c in contracts}

    def forget_unknown(self) -> None:
        """After a reconnect, contracts IB did not know may be asked again."""
        self._cache = {k: v for k, v in self._cache.items() if v is not None}
