"""Data that crosses the strategy boundary: contracts, legs, chains, the market snapshot, intents.

Everything here is immutable. `bot` builds a `Snapshot`, `strategies` turn it into `Intent`s.
Prices are per unit of underlying (IB convention); multiply by `multiplier` for dollars.
A combo's `price` is signed: positive = we pay (debit), negative = we receive (credit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Contract:
    """An option (secType OPT) or a future (FUT) on SPX or VIX."""

    symbol: str  # "SPX" or "VIX"
    sec_type: str  # "OPT" or "FUT"
    expiry: date
    strike: float = 0.0
    right: str = ""  # "C" / "P" for options, "" for futures
    trading_class: str = ""  # "SPX" (standard monthly), "VIX", ...
    multiplier: int = 100

    @property
    def key(self) -> str:
        """Stable text id, used to match positions between the store and a broker."""
        if self.sec_type == "FUT":
            return f"{self.symbol}:FUT:{self.expiry:%Y%m%d}"
        return f"{self.symbol}:{self.trading_class}:{self.expiry:%Y%m%d}:{self.right}:{self.strike:g}"


@dataclass(frozen=True)
class Leg:
    """One leg of a combo: `ratio` > 0 buys, < 0 sells, per one combo unit."""

    contract: Contract
    ratio: int


@dataclass(frozen=True)
class Chain:
    """One expiry of one option class, as arrays aligned on `strikes` (ascending).

    Missing quotes are NaN. Greeks are per option (delta in [-1, 1]); vega per vol point.
    """

    symbol: str
    trading_class: str
    expiry: date
    t: float  # years to expiry
    strikes: np.ndarray
    call_bid: np.ndarray
    call_ask: np.ndarray
    put_bid: np.ndarray
    put_ask: np.ndarray
    call_delta: np.ndarray
    put_delta: np.ndarray
    call_iv: np.ndarray
    put_iv: np.ndarray
    call_vega: np.ndarray
    put_vega: np.ndarray
    multiplier: int = 100
    as_of: datetime | None = None  # when these quotes were taken (None = snapshot time)

    def index(self, strike: float) -> int:
        i = int(np.searchsorted(self.strikes, strike))
        if i >= len(self.strikes) or self.strikes[i] != strike:
            raise KeyError(f"strike {strike} not listed for {self.symbol} {self.expiry}")
        return i

    def quote(self, strike: float, right: str) -> tuple[float, float]:
        i = self.index(strike)
        if right == "C":
            return float(self.call_bid[i]), float(self.call_ask[i])
        return float(self.put_bid[i]), float(self.put_ask[i])

    def delta(self, strike: float, right: str) -> float:
        i = self.index(strike)
        return float(self.call_delta[i] if right == "C" else self.put_delta[i])

    def vega(self, strike: float, right: str) -> float:
        i = self.index(strike)
        return float(self.call_vega[i] if right == "C" else self.put_vega[i])

    def contract(self, strike: float, right: str) -> Contract:
        return Contract(
            symbol=self.symbol,
            sec_type="OPT",
            expiry=self.expiry,
            strike=float(strike),
            right=right,
            trading_class=self.trading_class,
            multiplier=self.multiplier,
        )


@dataclass(frozen=True)
class Position:
    contract: Contract
    qty: int  # signed
    avg_cost: float = 0.0  # per unit of underlying, signed like a price (paid > 0)


@dataclass(frozen=True)
class Account:
    net_liquidation: float
    init_margin: float = 0.0
    maint_margin: float = 0.0
    excess_liquidity: float = 0.0
    cushion: float = 1.0  # excess liquidity / net liquidation
    realized_pnl_today: float = 0.0
    unrealized_pnl: float = 0.0


@dataclass(frozen=True)
class Snapshot:
    """Everything one decision tick may look at. Built by the broker, never mutated."""

    time: datetime  # timezone-aware UTC
    spx: float
    vix: float
    chains: Mapping[date, Chain]  # SPX standard monthlies (trading class SPX), by expiry
    account: Account
    positions: tuple[Position, ...] = ()
    vix_futures: Mapping[date, float] = field(default_factory=dict)
    vix_chains: Mapping[date, Chain] = field(default_factory=dict)
    bars: Any = None  # pandas DataFrame of daily bars: close, ad_line (index: date)
    minutes_since_open: float = 0.0
    market_open: bool = True


@dataclass(frozen=True)
class Intent:
    """What the strategy wants done. The risk guard approves it; the executor places it.

    `key` is the idempotency key: the same key is never placed twice, and it is the orderRef.
    `mid` and `natural` are the combo's signed per-unit prices when the intent was made
    (natural = the price that crosses the spread, the worst one we would accept).
    """

    key: str
    campaign_id: str
    action: str  # open | close | roll | roll_close | roll_open | hedge_open | hedge_close
    legs: tuple[Leg, ...]
    qty: int
    mid: float
    natural: float
    step: int = 0
    layer: str = ""  # "" for the condor; "event", "fomc", "tail" for hedge layers
    reason: Mapping[str, Any] = field(default_factory=dict)

    @property
    def closing(self) -> bool:
        return self.action in ("close", "roll_close", "hedge_close")


@dataclass(frozen=True)
class Fill:
    """A (possibly partial) fill of an intent's combo, in combo units."""

    intent_key: str
    qty: int
    price: float  # signed per-unit combo price (debit > 0, credit < 0)
    commission: float = 0.0
    time: datetime | None = None
    exec_id: str = ""
