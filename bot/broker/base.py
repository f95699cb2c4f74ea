"""The Broker protocol: what the daemon needs from IB or the simulator, and the data it returns.

Prices follow IB's combo convention: a BAG order's limit is per combo unit, signed; we always
send action BUY for the combo and let the sign say debit (> 0) or credit (< 0).
Implementations: `bot.broker.sim.SimBroker` (embedded) and `bot.broker.ib.IBBroker` (ib_async).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from strategies.types import Account, Contract, Fill, Intent, Leg, Position, Snapshot

__all__ = [
    "Account",
    "Broker",
    "BrokerError",
    "LiveAccountRefused",
    "Contract",
    "Fill",
    "Intent",
    "Leg",
    "OrderRequest",
    "OrderState",
    "Position",
    "Snapshot",
    "WhatIf",
]

# Order statuses, as IB names them.
WORKING = ("PendingSubmit", "PreSubmitted", "Submitted")
DONE = ("Filled", "Cancelled", "ApiCancelled", "Inactive")


class BrokerError(Exception):
    """A broker refused or failed a request. `code` is IB's error code where there is one."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message


class LiveAccountRefused(BrokerError):
    """A managed account is not a paper account (IB paper ids begin with DU). Never trade."""

    def __init__(self, accounts: list[str]) -> None:
        super().__init__(0, f"refusing to trade: not a paper account: {', '.join(accounts)} "
                            "(IB paper account ids begin with DU)")
        self.accounts = accounts


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
    order_id: int
    order_ref: str
    status: str
    qty: int
    filled: int = 0
    avg_price: float = 0.0
    limit: float = 0.0
    error: str = ""
    fills: list[Fill] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.qty - self.filled

    @property
    def working(self) -> bool:
        return self.status in WORKING

    @property
    def done(self) -> bool:
        return self.status in DONE


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
