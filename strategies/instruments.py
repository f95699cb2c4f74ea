"""Instrument rules for what condorbot trades: SPX, SPXW and VIX options, VIX (VX) futures.

One table, used by the executor (limit prices on the tick grid), the risk guard (a limit off
the grid is refused), the simulator (quotes and fills on the grid) and the IB adapter
(multipliers, trading classes, exchanges). Prices are per unit of underlying.

Tick rules (minimum price increments), as published by Cboe / CFE:
- SPX and SPXW options, single leg: 0.05 below 3.00, 0.10 at or above; complex orders
  (spreads, condors): 0.05 at any net price (Cboe complex book rules for SPX).
- VIX options, single leg: 0.01 below 3.00, 0.05 at or above (Cboe's tick change of
  November 2022; before it 0.05 / 0.10); complex orders of any ratio: 0.01 at any net price.
- VIX (VX) futures: 0.05 index points ($50 a contract at the $1,000 multiplier). condorbot
  sends no futures spreads, so futures combos use the single-leg tick.
Settlement: SPX standard monthlies are AM-settled (special opening quotation on the
expiry day; last trade the session before), SPXW PM-settled at the close, both cash and
European. VIX options and VX futures settle AM on the VIX expiry (the Wednesday 30 days
before the next SPX standard expiry; `strategies.expiry.vix_expiry`) to the special
opening quotation VRO, in cash; the options are European.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from strategies.types import Contract, Leg

__all__ = ["INSTRUMENTS", "Instrument", "combo_tick", "for_contract", "leg_tick", "on_grid",
           "to_tick"]


@dataclass(frozen=True)
class Instrument:
    trading_class: str  # IB tradingClass: SPX, SPXW, VIX, VX
    symbol: str  # the underlying index: SPX or VIX
    sec_type: str  # OPT or FUT
    exchange: str  # listing exchange: CBOE (options) or CFE (futures)
    multiplier: int  # dollars per point of price
    tick_small: float  # single-leg tick below `tick_break`
    tick_big: float  # single-leg tick at or above `tick_break`
    tick_break: float  # price at which the single-leg tick widens (inf: never)
    complex_tick: float  # net price increment of a complex (multi-leg) order, any price
    settlement: str  # AM_SOQ | PM_CLOSE | AM_VRO
    style: str = "european"  # exercise style ("" for futures)
    cash_settled: bool = True

    def tick(self, price: float) -> float:
        """Single-leg tick at `price` (sign ignored: a debit and a credit tick alike)."""
        return self.tick_small if abs(price) < self.tick_break else self.tick_big


INSTRUMENTS: dict[str, Instrument] = {
    "SPX": Instrument("SPX", "SPX", "OPT", "CBOE", 100, 0.05, 0.10, 3.0, 0.05, "AM_SOQ"),
    "SPXW": Instrument("SPXW", "SPX", "OPT", "CBOE", 100, 0.05, 0.10, 3.0, 0.05, "PM_CLOSE"),
    "VIX": Instrument("VIX", "VIX", "OPT", "CBOE", 100, 0.01, 0.05, 3.0, 0.01, "AM_VRO"),
    "VX": Instrument("VX", "VIX", "FUT", "CFE", 1000, 0.05, 0.05, math.inf, 0.05, "AM_VRO",
                     style=""),
}


def for_contract(c: Contract) -> Instrument:
    """The rules of contract `c`; ValueError for anything condorbot does not trade."""
    if c.sec_type == "FUT":
        if c.symbol == "VIX":
            return INSTRUMENTS["VX"]
    elif c.sec_type == "OPT":
        inst = INSTRUMENTS.get(c.trading_class or c.symbol)
        if inst is not None and inst.sec_type == "OPT" and inst.symbol == c.symbol:
            return inst
    raise ValueError(f"no instrument rules for {c.sec_type} {c.symbol} trading class "
                     f"{c.trading_class!r}: condorbot trades SPX/SPXW/VIX options and VIX futures")


def leg_tick(c: Contract, price: float) -> float:
    return for_contract(c).tick(price)


def combo_tick(legs: Iterable[Leg], price: float) -> float:
    """Tick of an order's (net, per-unit) limit: a single leg's own tick at `price`, a
    complex order's net-price tick otherwise (the coarsest of its legs' classes)."""
    legs = tuple(legs)
    if not legs:
        raise ValueError("an order needs at least one leg")
    if len(legs) == 1 and abs(legs[0].ratio) == 1:
        return leg_tick(legs[0].contract, price)
    return max(for_contract(leg.contract).complex_tick for leg in legs)


def to_tick(price: float, tick: float, down: bool) -> float:
    """Round to a multiple of `tick`, down (floor) or up (ceil)."""
    n = price / tick
    n = math.floor(n + 1e-9) if down else math.ceil(n - 1e-9)
    return round(n * tick, 2)


def on_grid(price: float, tick: float) -> bool:
    """Is `price` a whole multiple of `tick` (to a thousandth of a tick)?"""
    n = price / tick
    return abs(n - round(n)) < 1e-3
