"""Data that crosses the strategy boundary: contracts, legs, chains, the market snapshot, intents,
and the campaign state that `decide` folds (the daemon stores it between ticks).

Everything here is immutable. `bot` builds a `Snapshot`, `strategies` turn it into `Intent`s.
The campaign types live here, not in `tvm` or `alvh`, so that the condor state machine and
the hedge layers both use them and neither imports the other's module back.
Prices are per unit of underlying (IB convention); multiply by `multiplier` for dollars.
A combo's `price` is signed: positive = we pay (debit), negative = we receive (credit).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any

import numpy as np

from strategies.events import EventCalendar
from strategies.frozen import fast_init
from strategies.ledger import Ledger
from strategies.params import HedgeParams


@fast_init
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

    @functools.cached_property
    def key(self) -> str:
        """Stable text id, used to match positions between the store and a broker (kept on
        the object: it is frozen, and a held leg's key is asked every tick)."""
        if self.sec_type == "FUT":
            return f"{self.symbol}:FUT:{self.expiry:%Y%m%d}"
        return (f"{self.symbol}:{self.trading_class}:{self.expiry:%Y%m%d}:{self.right}:"
                f"{self.strike:g}")


@fast_init
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


@fast_init
@dataclass(frozen=True)
class Position:
    contract: Contract
    qty: int  # signed
    avg_cost: float = 0.0  # per unit of underlying, signed like a price (paid > 0)


@fast_init
@dataclass(frozen=True)
class Account:
    net_liquidation: float
    init_margin: float = 0.0
    maint_margin: float = 0.0
    excess_liquidity: float = 0.0
    cushion: float = 1.0  # excess liquidity / net liquidation
    realized_pnl_today: float = 0.0
    unrealized_pnl: float = 0.0


@fast_init
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


@fast_init
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


Event = tuple[str, dict[str, Any]]  # (event name, numbers): what the daemon logs


class Status(str, Enum):
    IDLE = "IDLE"
    ENTERING = "ENTERING"
    OPEN = "OPEN"
    ROLLING = "ROLLING"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"
    COOLDOWN = "COOLDOWN"


@fast_init
@dataclass(frozen=True)
class Campaign:
    id: str
    step: int = 0
    legs: tuple[Leg, ...] = ()  # the condor held, opening ratios per unit
    qty: int = 0
    credit: float = 0.0  # per-unit credit received for the condor held (> 0)
    wing_width: float = 0.0
    entry_vix: float = 0.0
    entered_at: datetime | None = None
    realized: float = 0.0  # dollars, net of commissions, of this campaign's condor trades
    premium: float = 0.0  # dollars of credit collected (entries and rolls), for the hedge budget
    attempts: int = 0  # order attempts, part of the idempotency key
    triggered_at: datetime | None = None  # when a roll trigger was first seen
    next_qty: int = 0  # close-then-open roll: the open still to send
    next_wing: float = 0.0
    rolled_from: date | None = None  # close-then-open roll: the expiry closed
    open_wait_since: datetime | None = None  # close-then-open roll: first open not buildable
    stop_reason: str = ""


@fast_init
@dataclass(frozen=True)
class Layer:
    """One ALVH hedge layer bought for a campaign (see `strategies.alvh`)."""

    name: str
    campaign_id: str
    tag: str  # what it was opened for: an event date, or the signal and date
    status: str = "opening"  # opening | open | closing
    legs: tuple[Leg, ...] = ()
    qty: int = 0
    cost: float = 0.0  # dollars paid to open, commissions included
    entry_vix: float = 0.0
    event_date: date | None = None
    opened_at: datetime | None = None
    pending: Intent | None = None
    attempts: int = 0
    peak: float = 0.0  # dollars: highest mark-to-mid value seen while open (trailing exit)


@dataclass(frozen=True)
class Context:
    """What decide needs besides the market: hedge settings, the event calendar, the broker."""

    hedge: HedgeParams | None = None  # None: no hedge layers
    calendar: EventCalendar | None = None  # for blackouts and layers 1-2
    combo_roll: bool = True  # the broker takes one combo for close + open
    flatten: bool = False  # operator flatten: close everything, open nothing
    # the executor's walk (orders.walk_steps / max_slippage): a roll is funded at the limit
    # the walk ends at, the worst price it will send
    walk_steps: int = 4
    max_slippage: float = 1.0
    # risk.max_campaign_loss_pct: the running-loss cap checked before every roll (None: off)
    max_campaign_loss_pct: float | None = None


@fast_init
@dataclass(frozen=True)
class State:
    status: Status = Status.IDLE
    seq: int = 0  # campaigns started so far
    campaign: Campaign | None = None
    pending: Intent | None = None  # the condor intent whose order is working
    cooldown_until: datetime | None = None
    ledger: Ledger = field(default_factory=Ledger)
    hedges: tuple[Layer, ...] = ()  # one per open hedge layer
    hedged: tuple[str, ...] = ()  # tags of recent layers opened (an event is hedged once)


@fast_init
@dataclass(frozen=True)
class Decision:
    state: State
    intents: tuple[Intent, ...] = ()
    events: tuple[Event, ...] = ()

    def then(self, other: Decision) -> Decision:
        # (frozen: an empty side leaves the other as it is, most ticks decide nothing)
        if not (other.intents or other.events):
            if other.state is self.state:
                return self
            if not (self.intents or self.events):
                return other
            return Decision(other.state, self.intents, self.events)
        if not (self.intents or self.events):
            return other
        return Decision(other.state, self.intents + other.intents, self.events + other.events)
