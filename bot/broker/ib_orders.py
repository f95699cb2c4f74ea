"""IBBroker's own record of its orders: status, error text and fills, fed by ib_async events.

ib_async marks an order Cancelled on any error for its id, including a refused modification
of an order that stays live at IB; so status comes only from TWS's own openOrder/orderStatus
messages (IB's names mapped to `OrderStatus` by bot.broker.ib_errors), and errors are judged
here: a refused new order is REJECTED with the error text, a refused modification leaves the
order as it was, codes that end an order (201/202/203) end it. Acknowledgements (placed,
modified, cancelled) are futures keyed by order id. After a (re)connect, `reconcile` rebuilds
the record from TWS's open orders and today's executions: an order neither open nor fully
executed is over.

Fills are in combo units: a combo's executions share a time; the BAG execution gives quantity
and signed combo price; the legs' commission reports give the commission (their sum). A fill is
reported once all its leg commissions are in (or after `COMMISSION_WAIT` seconds without).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from time import monotonic
from typing import Any

from bot.broker.base import BrokerError, OrderRequest, OrderState, OrderStatus
from bot.broker.ib_errors import (
    DONE,
    ORDER_ENDING,
    WORKING,
    error_kind,
    is_order_failure,
    order_status,
)
from strategies.types import Fill

COMMISSION_WAIT = 5.0
ACKED = ("PreSubmitted", "Submitted", "Filled", "Cancelled", "ApiCancelled", "Inactive")


@dataclass
class Exec:
    exec_id: str
    con_id: int
    is_bag: bool
    time: datetime
    side: str
    shares: float
    price: float
    multiplier: float
    commission: float | None = None
    seen: float = field(default_factory=monotonic)


@dataclass
class Tracked:
    order_id: int
    order_ref: str
    qty: int
    limit: float
    status: OrderStatus = OrderStatus.PENDING
    filled: float = 0.0
    avg: float = 0.0
    error: str = ""
    trade: Any = None
    bag: Any = None
    ratios: dict[int, int] = field(default_factory=dict)  # leg conId -> signed ratio
    execs: dict[str, Exec] = field(default_factory=dict)


def _finite(x: Any, default: float) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) and abs(v) < 1e300 else default


class OrderBook:
    def __init__(self) -> None:
        self.client_id = -1
        self.orders: dict[int, Tracked] = {}
        self.listeners: list[Callable[[], None]] = []  # IBBroker.add_order_listener
        self._acks: dict[int, tuple[asyncio.Future, str]] = {}

    # --- placing -----------------------------------------------------------------------------
    def add(self, order_id: int, req: OrderRequest, trade: Any, bag: Any) -> Tracked:
        ratios = {leg.conId: (leg.ratio if leg.action == "BUY" else -leg.ratio)
                  for leg in getattr(bag, "comboLegs", []) or []}
        o = Tracked(order_id, req.order_ref, req.qty, req.limit, trade=trade, bag=bag,
                    ratios=ratios)
        self.orders[order_id] = o
        return o

    def by_ref(self, order_ref: str) -> Tracked | None:
        return next((o for o in self.orders.values() if o.order_ref == order_ref), None)

    def expect(self, order_id: int, kind: str) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        old = self._acks.pop(order_id, None)
        if old is not None and not old[0].done():
            old[0].cancel()
        self._acks[order_id] = (fut, kind)
        return fut

    def _ack(self, order_id: int, exc: BaseException | None = None) -> None:
        pending = self._acks.pop(order_id, None)
        if pending is not None and not pending[0].done():
            if exc is None:
                pending[0].set_result(None)
            else:
                pending[0].set_exception(exc)

    def fail_all(self, exc: BaseException) -> None:
        for oid in list(self._acks):
            self._ack(oid, exc)

    # --- ib_async events -----------------------------------------------------------------------
    def on_trade(self, trade: Any) -> None:
        order = trade.order
        if order.clientId not in (self.client_id, 0) or order.orderId <= 0:
            return
        o = self.orders.get(order.orderId)
        if o is None:
            o = Tracked(order.orderId, order.orderRef or "", int(_finite(order.totalQuantity, 0)),
                        _finite(order.lmtPrice, 0.0))
            self.orders[order.orderId] = o
        o.trade = trade
        if trade.log and getattr(trade.log[-1], "errorCode", 0):
            return  # ib_async's own reaction to an error: judged in on_error instead
        st = trade.orderStatus
        if st.status in WORKING or st.status in DONE:
            o.status = order_status(st.status)
            o.filled = _finite(st.filled, o.filled)
            o.avg = _finite(st.avgFillPrice, o.avg)
        o.qty = int(_finite(order.totalQuantity, o.qty))
        o.limit = _finite(order.lmtPrice, o.limit)
        o.order_ref = order.orderRef or o.order_ref
        pending = self._acks.get(order.orderId)
        if pending is not None and st.status in ACKED:
            if pending[1] != "cancel" or st.status in DONE:
                self._ack(order.orderId)

    def on_exec(self, fill: Any) -> None:
        ex, c = fill.execution, fill.contract
        if ex.clientId not in (self.client_id, 0):
            return
        o = self.orders.get(ex.orderId)
        if o is None:
            o = Tracked(ex.orderId, ex.orderRef or "", 0, 0.0, status=OrderStatus.FILLED)
            self.orders[ex.orderId] = o
        if ex.execId in o.execs:
            return
        report = fill.commissionReport
        comm = report.commission if report is not None and report.execId else None
        o.execs[ex.execId] = Exec(ex.execId, c.conId, c.secType == "BAG", ex.time, ex.side,
                                  float(ex.shares), float(ex.price),
                                  _finite(c.multiplier or 100, 100.0), comm)

    def on_commission(self, fill: Any, report: Any) -> None:
        o = self.orders.get(fill.execution.orderId)
        if o is None or report.execId not in o.execs:
            self.on_exec(fill)
            o = self.orders.get(fill.execution.orderId)
        if o is not None and report.execId in o.execs:
            o.execs[report.execId].commission = float(report.commission)

    def notify(self, *_: Any) -> None:
        """An order event was folded in (registered after on_trade/on_exec/on_commission):
        tell the listeners. One listener failing does not keep it from the others."""
        failed: list[Exception] = []
        for fn in list(self.listeners):
            try:
                fn()
            except Exception as e:
                failed.append(e)
        if failed:
            raise failed[0]

    def on_error(self, req_id: int, code: int, message: str) -> bool:
        """Judge an error for an order id. False if `req_id` is not one of our orders."""
        o = self.orders.get(req_id)
        pending = self._acks.get(req_id)
        if o is None and pending is None:
            return False
        text = f"[{code}] {message}"
        if code == 202:
            if o is not None and o.status.working:
                o.status, o.error = OrderStatus.CANCELLED, o.error or text
            self._ack(req_id)
            return True
        if not is_order_failure(code):
            return True
        if pending is not None:
            if pending[1] == "new" and o is not None:
                o.status, o.error = OrderStatus.REJECTED, text
            elif o is not None:
                o.error = text
            self._ack(req_id, BrokerError(error_kind(code, message), message, code=code))
        elif o is not None:
            o.error = text
            if code in ORDER_ENDING and o.status.working:
                o.status = OrderStatus.CANCELLED
        return True

    # --- after a (re)connect -----------------------------------------------------------------
    def reconcile(self, open_trades: list[Any], fills: list[Any]) -> list[int]:
        """Rebuild from TWS's open orders and executions; returns ids found no longer open."""
        open_ids = set()
        for trade in open_trades:
            if trade.order.clientId == self.client_id:
                self.on_trade(trade)
                open_ids.add(trade.order.orderId)
        for f in fills:
            self.on_exec(f)
        gone = []
        for o in self.orders.values():
            if o.status.done or o.order_id in open_ids:
                continue
            got = sum(f.qty for f in self.fills(o, force=True))
            if o.qty and got >= o.qty:
                o.status, o.filled = OrderStatus.FILLED, got
            elif o.qty == 0 and got:
                o.status, o.qty, o.filled = OrderStatus.FILLED, got, got
            else:
                o.status = OrderStatus.CANCELLED
                o.error = o.error or "not open at the broker after reconnect"
            gone.append(o.order_id)
        return gone

    # --- reading ---------------------------------------------------------------------------------
    def fills(self, o: Tracked, force: bool = False) -> list[Fill]:
        groups: dict[datetime, list[Exec]] = {}
        for e in o.execs.values():
            groups.setdefault(e.time, []).append(e)
        out = []
        now = monotonic()
        for when in sorted(groups):
            execs = groups[when]
            bag = [e for e in execs if e.is_bag]
            legs = [e for e in execs if not e.is_bag]
            pending = [e for e in legs or bag if e.commission is None]
            if pending and not force and now - min(e.seen for e in pending) < COMMISSION_WAIT:
                continue
            if bag:
                qty = sum(e.shares for e in bag)
                price = sum(e.shares * e.price for e in bag) / qty if qty else 0.0
            else:
                first = legs[0]
                qty = first.shares / abs(o.ratios.get(first.con_id, 1) or 1)
                m0 = first.multiplier
                signed = sum((1 if e.side == "BOT" else -1) * e.shares * e.price * e.multiplier
                             for e in legs)
                price = signed / (qty * m0) if qty else 0.0
            commission = sum(e.commission or 0.0 for e in (legs or bag))
            exec_id = (bag or legs)[0].exec_id
            out.append(Fill(o.order_ref, int(round(qty)), round(price, 6), round(commission, 6),
                            when, exec_id))
        return out

    def state(self, o: Tracked) -> OrderState:
        fills = self.fills(o)
        got = sum(f.qty for f in fills)
        status = o.status
        if status is OrderStatus.FILLED and got < o.filled:
            status = OrderStatus.WORKING  # executions or commissions still on their way
        avg = sum(f.qty * f.price for f in fills) / got if got else o.avg
        return OrderState(o.order_id, o.order_ref, status, o.qty, filled=int(round(max(got, 0))),
                          avg_price=round(avg, 6), limit=o.limit, error=o.error, fills=fills)

    def states(self) -> list[OrderState]:
        return [self.state(o) for o in sorted(self.orders.values(), key=lambda o: o.order_id)]
