"""The Broker protocol: what the daemon needs from IB or the simulator, and the data it returns.

Prices follow IB's combo convention: a BAG order's limit is per combo unit, signed; we always
send action BUY for the combo and let the sign say debit (> 0) or credit (< 0).
Implementations: `bot.broker.sim.SimBroker` (embedded) and `bot.broker.ib.IBBroker` (ib_async).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from strategies.types import Account, Contract, Fill, Intent, Leg, Position, Snapshot

__all__ = [
    "Account",
    "Broker",
    "BrokerError",
    "ErrorKind",
    "LiveAccountRefused",
    "Contract",
    "Fill",
    "Intent",
    "Leg",
    "OrderRequest",
    "OrderState",
    "OrderEvents",
    "OrderStatus",
    "Position",
    "Snapshot",
    "WhatIf",
]

class OrderStatus(StrEnum):
    """Where an order stands, whatever the broker calls it. Compare members (`is
    OrderStatus.FILLED`, `.working`, `.done`); IB's own status names map to these in
    bot.broker.ib_errors.

    LEGACY (migration): the values are still the IB names the code used to pass around as
    strings, so `status == "Filled"` (bot/orders.py, bot/recovery.py, tests) keeps its meaning
    and the emulator (bot/sim/gateway_orders.py) still writes a valid IB status on the wire
    from SimBroker's states. Once those compare members and the emulator maps members to IB
    names itself, the values become plain lowercase words."""

    PENDING = "PendingSubmit"  # sent, not yet acknowledged by the broker
    WORKING = "Submitted"  # live at the broker (possibly partly filled)
    FILLED = "Filled"
    CANCELLED = "Cancelled"  # by us, by the broker, or expired; may be partly filled
    REJECTED = "Inactive"  # refused: never worked

    @property
    def working(self) -> bool:
        return self in (OrderStatus.PENDING, OrderStatus.WORKING)

    @property
    def done(self) -> bool:
        return not self.working

    @classmethod
    def of(cls, value: OrderStatus | str) -> OrderStatus:
        """A member from itself, its value or (LEGACY) any other IB status name."""
        if isinstance(value, OrderStatus):
            return value
        try:
            return cls(value)
        except ValueError:
            from bot.broker.ib_errors import order_status  # LEGACY (migration) only

            return order_status(value)


class ErrorKind(StrEnum):
    """Why a broker request failed, whatever the broker's own code (IB's: bot.broker.ib_errors)."""

    NO_SECURITY_DEFINITION = "no_security_definition"  # the broker does not know a contract
    REJECTED = "rejected"  # an order refused for a reason not named below
    REJECTED_MARGIN = "rejected_margin"  # refused for lack of margin / equity
    INVALID_PRICE = "invalid_price"  # limit not on the tick grid, or not a usable number
    CANNOT_MODIFY = "cannot_modify"  # the order is done, or the change is not allowed
    NOT_FOUND = "not_found"  # no such order
    CANCEL_REFUSED = "cancel_refused"  # the order is in a state that cannot be cancelled
    DUPLICATE = "duplicate"  # order id or orderRef already used (never sent twice)
    PACING = "pacing"  # too many messages or requests: slow down
    DISCONNECTED = "disconnected"  # no usable link to the broker (or the broker to its exchange)
    TIMEOUT = "timeout"  # no answer in time: the outcome is unknown, reconcile
    MARKET_DATA = "market_data"  # market data refused or unavailable
    LIVE_ACCOUNT = "live_account"  # not a paper account: never trade
    OTHER = "other"


class BrokerError(Exception):
    """A broker refused or failed a request. `kind` says why (act on it); `code` is the
    broker's own error code where there is one (IB's, for logs)."""

    def __init__(self, kind: ErrorKind, message: str, code: int | None = None) -> None:
        super().__init__(f"[{code if code is not None else kind.value}] {message}")
        self.kind = kind
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (BrokerError, (self.kind, self.message, self.code))


class LiveAccountRefused(BrokerError):
    """A managed account is not a paper account (IB paper ids are DU + digits), or none was
    reported. Never trade."""

    def __init__(self, accounts: list[str]) -> None:
        shown = ", ".join(repr(a) for a in accounts) if accounts else "<none reported>"
        super().__init__(ErrorKind.LIVE_ACCOUNT,
                         f"refusing to trade: not a paper account: {shown} "
                         "(IB paper account ids are DU followed by digits)")
        self.accounts = accounts

    def __reduce__(self) -> tuple[Any, ...]:
        return (LiveAccountRefused, (self.accounts,))


@dataclass(frozen=True)
class OrderRequest:
    """One combo limit order. `order_id` set = modify that working order in place."""

    order_ref: str  # the intent's idempotency key
    legs: tuple[Leg, ...]
    qty: int
    limit: float  # signed per-unit combo price
    order_id: int | None = None


@dataclass
class OrderState:
    """`status` is always an `OrderStatus`; a string given for it (SimBroker's IB names, while
    it migrates) is converted on every assignment."""

    order_id: int
    order_ref: str
    status: OrderStatus
    qty: int
    filled: int = 0
    avg_price: float = 0.0
    limit: float = 0.0
    error: str = ""
    fills: list[Fill] = field(default_factory=list)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "status":
            value = OrderStatus.of(value)
        super().__setattr__(name, value)

    @property
    def remaining(self) -> int:
        return self.qty - self.filled

    @property
    def working(self) -> bool:
        return self.status.working

    @property
    def done(self) -> bool:
        return self.status.done


@dataclass(frozen=True)
class WhatIf:
    """The broker's own margin answer for an order that is not placed."""

    init_margin_change: float
    maint_margin_change: float
    init_margin_after: float
    maint_margin_after: float
    commission: float = 0.0


@runtime_checkable
class Broker(Protocol):
    name: str
    supports_combo_roll: bool

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def snapshot(self) -> Snapshot: ...

    async def what_if(self, req: OrderRequest) -> WhatIf: ...

    async def place(self, req: OrderRequest) -> OrderState: ...

    async def cancel(self, order_id: int) -> None: ...

    async def orders(self) -> list[OrderState]:
        """Every order this client knows, open or done, with their fills (for reconciling)."""
        ...

    async def positions(self) -> list[Position]: ...

    async def server_time(self) -> datetime: ...


@runtime_checkable
class OrderEvents(Protocol):
    """Optional Broker extension: a broker that pushes order events (IBBroker; SimBroker, whose
    fills happen inside its own calls, need not). `fn()` is called after every order status
    change or execution, once the broker's order record has it, so `orders()` inside `fn`
    already shows the event."""

    def add_order_listener(self, fn: Callable[[], None]) -> None: ...
