"""IBBroker's order methods: combo (BAG) limit orders, what-if, modify in place, cancel.

A mixin over IBBroker's state (ib, cx, book, s, account, _errors, _require, _guard,
_resync_now); see bot.broker.ib for the rules they follow.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from ib_async import ComboLeg, LimitOrder
from ib_async import Contract as IBContract
from ib_async.order import OrderState as IBOrderState

from bot import logs
from bot.broker.base import BrokerError, ErrorKind, OrderRequest, OrderState, WhatIf
from bot.broker.ib_errors import error_kind, meaning

log = logs.get("bot.broker.ib")
NOT_CONNECTED = 504  # IB "Not connected"


class Trading:
    ib: Any
    cx: Any
    book: Any
    s: Any
    account: str
    _errors: dict[int, tuple[int, str]]

    def _require(self) -> None: ...

    async def _guard(self, coro: Any) -> Any: ...

    async def _resync_now(self) -> None: ...

    async def _bag(self, req: OrderRequest) -> IBContract:
        found = await self.cx.qualify([leg.contract for leg in req.legs])
        missing = [k for k, ic in found.items() if ic is None]
        if missing:
            raise BrokerError(ErrorKind.NO_SECURITY_DEFINITION,
                              f"No security definition has been found for {', '.join(missing)}",
                              code=200)
        legs = []
        for leg in req.legs:
            ic = found[leg.contract.key]
            legs.append(ComboLeg(conId=ic.conId, ratio=abs(leg.ratio),
                                 action="BUY" if leg.ratio > 0 else "SELL",
                                 exchange="CFE" if ic.secType == "FUT" else "SMART"))
        return IBContract(secType="BAG", symbol=req.legs[0].contract.symbol, exchange="SMART",
                          currency="USD", comboLegs=legs)

    def _order(self, req: OrderRequest) -> LimitOrder:
        if not math.isfinite(req.limit) or req.qty <= 0:
            raise BrokerError(ErrorKind.INVALID_PRICE if req.qty > 0 else ErrorKind.REJECTED,
                              f"Order rejected - reason:limit {req.limit} / qty {req.qty}")
        return LimitOrder("BUY", req.qty, round(req.limit, 2), orderRef=req.order_ref,
                          account=self.account, tif="DAY")

    async def what_if(self, req: OrderRequest) -> WhatIf:
        self._require()
        await self._guard(self._resync_now())
        bag = await self._guard(self._bag(req))
        order = self._order(req)
        order.whatIf = True
        req_id = self.ib.client.getReqId()
        future = self.ib.wrapper.startReq(req_id, bag)
        self.ib.client.placeOrder(req_id, bag, order)
        try:
            res = await asyncio.wait_for(future, self.s.timeout)
        except TimeoutError:
            raise BrokerError(ErrorKind.TIMEOUT,
                              f"no what-if answer within {self.s.timeout}s") from None
        except ConnectionError:
            raise BrokerError(ErrorKind.DISCONNECTED, "connection lost during what-if",
                              code=NOT_CONNECTED) from None
        if not isinstance(res, IBOrderState):
            code, msg = self._errors.pop(req_id, (0, "what-if refused without a reason"))
            raise BrokerError(error_kind(code, msg) if code else ErrorKind.REJECTED, msg,
                              code=code or None)
        n = res.numeric(4)
        return WhatIf(n.initMarginChange or 0.0, n.maintMarginChange or 0.0,
                      n.initMarginAfter if n.initMarginAfter is not None else math.nan,
                      n.maintMarginAfter if n.maintMarginAfter is not None else math.nan,
                      n.commission or 0.0)

    async def place(self, req: OrderRequest) -> OrderState:
        self._require()
        if req.order_id is not None:
            return await self._modify(req)
        await self._guard(self._resync_now())  # after an IB outage: reconcile first
        prior = self.book.by_ref(req.order_ref)
        if prior is not None:
            raise BrokerError(ErrorKind.DUPLICATE, f"orderRef {req.order_ref} was already sent "
                                                   f"as order {prior.order_id}: never twice")
        bag = await self._guard(self._bag(req))
        order = self._order(req)
        self._require()  # qualification awaited: check again right before sending
        order_id = self.ib.client.getReqId()
        order.orderId = order_id
        ack = self.book.expect(order_id, "new")
        trade = self.ib.placeOrder(bag, order)
        o = self.book.add(order_id, req, trade, bag)
        log.info("broker.order_sent", order_id=order_id, order_ref=req.order_ref, qty=req.qty,
                 limit=order.lmtPrice, legs=[leg.contract.key for leg in req.legs])
        await self._await_ack(ack, o.order_id, "placed")
        return self.book.state(o)

    async def _modify(self, req: OrderRequest) -> OrderState:
        o = self.book.orders.get(req.order_id)  # type: ignore[arg-type]
        if o is None or o.trade is None:
            raise BrokerError(ErrorKind.NOT_FOUND, f"Can't find order with id = {req.order_id}",
                              code=135)
        if o.status.done:
            raise BrokerError(ErrorKind.CANNOT_MODIFY,
                              f"Cannot modify a {o.status} order. orderId={o.order_id}", code=104)
        order = o.trade.order
        order.lmtPrice, order.totalQuantity = round(req.limit, 2), req.qty
        ack = self.book.expect(o.order_id, "modify")
        # the client call, not IB.placeOrder: ib_async may already hold this trade as done
        self.ib.client.placeOrder(o.order_id, o.bag or o.trade.contract, order)
        log.info("broker.order_modified", order_id=o.order_id, order_ref=o.order_ref,
                 limit=order.lmtPrice, qty=req.qty)
        await self._await_ack(ack, o.order_id, "modified")
        return self.book.state(o)

    async def _await_ack(self, ack: asyncio.Future, order_id: int, what: str) -> None:
        try:
            await asyncio.wait_for(ack, self.s.timeout)
        except BrokerError as e:
            log.error("broker.order_refused", order_id=order_id, code=e.code, kind=e.kind,
                      error=e.message, meaning=meaning(e.code).name if e.code else None)
            raise
        except (TimeoutError, ConnectionError) as e:
            log.warning("broker.order_unacknowledged", order_id=order_id, what=what,
                        error=repr(e), action="reconciled later")

    async def cancel(self, order_id: int) -> None:
        self._require()
        o = self.book.orders.get(order_id)
        if o is None:
            raise BrokerError(ErrorKind.NOT_FOUND, f"Can't find order with id = {order_id}",
                              code=135)
        if o.status.done:
            return
        ack = self.book.expect(order_id, "cancel")
        self.ib.client.cancelOrder(order_id, "")
        await self._await_ack(ack, order_id, "cancelled")

    async def orders(self) -> list[OrderState]:
        return self.book.states()
