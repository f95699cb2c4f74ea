"""The emulator's order desk: placeOrder / cancelOrder against the SimBroker, and the
openOrder / orderStatus / execDetails / commissionReport stream TWS would send back.

Orders are keyed like TWS keys them, by (clientId, orderId); a placeOrder that repeats a live
key modifies that order in place. Every placeOrder is journaled (one JSON line each). A combo
is accepted in either convention (BUY at a negative limit for a credit, or SELL at a positive
one) and reported in the one it was sent in. A combo fill is reported as one execution for
the BAG (the order's side, BOT or SLD, its signed price, `shares` = combo units, no
commission) plus one per leg (leg price, BOT/SLD, commission split by contracts); all of one
fill share a time and the execId prefix ``<permId hex>.<fill seq hex>``.

As at IB, executions and completed orders are only reported for the current trading day, and
DAY orders (tif DAY or unset) still working at their session's close are cancelled then.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.broker.base import BrokerError, OrderRequest, OrderState, OrderStatus
from bot.broker.ib_errors import ib_status_name
from bot.sim.gateway_book import BAG_CON_ID, Registry
from bot.tws.encode_orders import (
    ExecutionSpec,
    OrderStateSpec,
    commission_report,
    completed_order,
    exec_details,
    open_order,
    order_status,
)
from bot.tws.encode_session import error_msg
from bot.tws.wire import ParsedOrder, WireContract
from strategies import expiry as xp
from strategies.types import Fill, Leg, Snapshot

log = logging.getLogger("bot.sim.gateway")


@dataclass
class GwOrder:
    client_id: int
    order_id: int
    perm_id: int
    sim_id: int
    parsed: ParsedOrder
    legs: tuple[Leg, ...]  # as bought per combo unit (a SELL order's legs are flipped)
    expires_at: datetime | None = None  # a DAY order: the close of its trading day
    status: OrderStatus = OrderStatus.WORKING  # as last reported to the client
    fills_sent: int = 0
    done_at: datetime | None = None  # when it was filled, cancelled or expired

    @property
    def sign(self) -> int:
        """+1 for BUY, -1 for SELL: reported prices are in the convention the order was sent
        (a SELL at +1.85 fills as SLD at +1.85; the sim holds it as BUY at -1.85)."""
        return -1 if self.parsed.action == "SELL" else 1


@dataclass(frozen=True)
class ExecRecord:
    client_id: int
    spec: ExecutionSpec
    commission: float | None  # None: no commission report (the BAG line)


def day_close(t: datetime) -> datetime:
    """When a DAY order placed at `t` expires: the close of the session it is working in (the
    next session's close when placed after a close or on a closed day)."""
    s = xp.spx_option_session(xp.exchange_date(t))
    if s is not None and t < s[1]:
        return s[1]
    opened = xp.next_spx_open(t)
    nxt = xp.spx_option_session(xp.exchange_date(opened))
    assert nxt is not None
    return nxt[1]


class Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class OrderDesk:
    def __init__(self, sim: Any, registry: Registry, account: str,
                 send: Callable[[int, bytes], None], journal: str | Path | None = None) -> None:
        self.sim = sim
        self.reg = registry
        self.account = account
        self.send = send  # (clientId, bytes) -> written to that client's session if connected
        self.orders: dict[tuple[int, int], GwOrder] = {}
        self.execs: list[ExecRecord] = []
        self.journal: list[dict[str, Any]] = []
        self.journal_path = Path(journal) if journal else None
        self.reject_next = 0  # fault injection: reject this many coming orders with 201
        self._perm = itertools.count(1_000_001)
        self._fill_seq = itertools.count(1)

    # --- requests --------------------------------------------------------------------------------
    def _legs(self, p: ParsedOrder) -> tuple[tuple[Leg, ...], int, float]:
        """(legs as bought per combo unit, qty, signed limit) of a placeOrder."""
        if p.orderType != "LMT" or p.lmtPrice is None or not math.isfinite(p.lmtPrice):
            raise Refused(201, "Order rejected - reason:the emulator accepts limit orders only")
        sign = {"BUY": 1, "SELL": -1}.get(p.action)
        qty = p.totalQuantity
        if sign is None or qty != int(qty) or qty <= 0:
            raise Refused(201, f"Order rejected - reason:bad action/quantity {p.action} {qty}")
        if p.contract.secType == "BAG":
            pairs = [(leg.conId, leg.ratio * (1 if leg.action == "BUY" else -1))
                     for leg in p.comboLegs]
        else:
            pairs = [(p.contract.conId, 1)]
        legs = []
        for con_id, ratio in pairs:
            c = self.reg.contract(con_id)
            if c is None or ratio == 0:
                raise Refused(200, f"No security definition has been found for conId {con_id}")
            legs.append(Leg(c, sign * ratio))
        if not legs:
            raise Refused(201, "Order rejected - reason:a combo needs legs")
        return tuple(legs), int(qty), sign * p.lmtPrice

    def record(self, p: ParsedOrder, client_id: int, now: datetime) -> None:
        entry = {
            "time": now.isoformat(), "clientId": client_id, "orderId": p.orderId,
            "orderRef": p.orderRef, "whatIf": p.whatIf, "action": p.action,
            "totalQuantity": p.totalQuantity, "lmtPrice": p.lmtPrice, "orderType": p.orderType,
            "legs": [{"conId": leg.conId, "ratio": leg.ratio, "action": leg.action,
                      "contract": getattr(self.reg.contract(leg.conId), "key", None)}
                     for leg in p.comboLegs],
        }
        self.journal.append(entry)
        if self.journal_path is not None:
            with self.journal_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    async def what_if(self, p: ParsedOrder, client_id: int, snap: Snapshot) -> list[bytes]:
        try:
            legs, qty, limit = self._legs(p)
            w = await self.sim.what_if(OrderRequest(p.orderRef, legs, qty, limit))
        except (Refused, BrokerError) as e:
            return [error_msg(p.orderId, e.code or 201, e.message)]
        nl = snap.account.net_liquidation
        state = OrderStateSpec(
            "PreSubmitted", w.init_margin_after - w.init_margin_change,
            w.maint_margin_after - w.maint_margin_change, nl, w.init_margin_change,
            w.maint_margin_change, -w.commission, w.init_margin_after, w.maint_margin_after,
            nl - w.commission, commission=w.commission, minCommission=w.commission,
            maxCommission=w.commission, commissionCurrency="USD")
        return [open_order(p, state, perm_id=0, client_id=client_id)]

    async def place(self, p: ParsedOrder, client_id: int, snap: Snapshot) -> list[bytes]:
        key = (client_id, p.orderId)
        old = self.orders.get(key)
        try:
            legs, qty, limit = self._legs(p)
            if old is None and self.reject_next > 0:
                self.reject_next -= 1
                raise Refused(201, "Order rejected - reason:emulator fault injection")
            req = OrderRequest(p.orderRef, legs, qty, limit, old.sim_id if old else None)
            st = await self.sim.place(req)
        except (Refused, BrokerError) as e:
            return [error_msg(p.orderId, e.code or 201, e.message)]
        if old is None:
            old = GwOrder(client_id, p.orderId, next(self._perm), st.order_id, p, legs,
                          expires_at=day_close(snap.time) if p.tif in ("", "DAY") else None)
            self.orders[key] = old
        old.parsed = p
        out = [open_order(p, OrderStateSpec("Submitted"), perm_id=old.perm_id,
                              client_id=client_id),
               self._status(old, st, OrderStatus.WORKING, upto=old.fills_sent)]
        out += self._progress(old, st, snap)
        return out

    async def expire(self, now: datetime) -> None:
        """DAY orders whose trading day closed by `now` are cancelled, as TWS does at the close;
        their clients get a Cancelled orderStatus."""
        states = {st.order_id: st for st in await self.sim.orders()}
        for o in self.orders.values():
            if o.expires_at is None or o.expires_at > now:
                continue
            expired_at, o.expires_at = o.expires_at, None  # settled either way
            st = states.get(o.sim_id)
            if st is None or not st.working:
                continue
            await self.sim.cancel(o.sim_id)
            o.done_at = expired_at
            log.info("gateway.order_expired client_id=%s order_id=%s ref=%s", o.client_id,
                     o.order_id, o.parsed.orderRef)
            self.send(o.client_id, self._status(o, st, OrderStatus.CANCELLED))

    def next_expiry(self) -> datetime | None:
        """The earliest close at which a live DAY order expires."""
        times = [o.expires_at for o in self.orders.values()
                 if o.expires_at is not None and o.done_at is None]
        return min(times, default=None)

    async def cancel(self, client_id: int, order_id: int) -> list[bytes]:
        o = self.orders.get((client_id, order_id))
        if o is None:
            return [error_msg(order_id, 10147,
                                  f"OrderId {order_id} that needs to be cancelled is not found.")]
        states = {st.order_id: st for st in await self.sim.orders()}
        st = states[o.sim_id]
        if not st.working:
            return [error_msg(order_id, 161, "Cancel attempted when order is not in a "
                                                 f"cancellable state. Order permId ={o.perm_id}")]
        await self.sim.cancel(o.sim_id)
        o.status, o.done_at = OrderStatus.CANCELLED, self.sim.clock.now()
        return [error_msg(order_id, 202, "Order Canceled - reason:"),
                self._status(o, st, OrderStatus.CANCELLED)]

    def open_orders(self, client_id: int | None, states: dict[int, OrderState]) -> list[bytes]:
        out = []
        for o in self.orders.values():
            st = states.get(o.sim_id)
            if st is None or not st.working or (client_id is not None and o.client_id != client_id):
                continue
            out.append(open_order(o.parsed, OrderStateSpec(ib_status_name(st.status)),
                                  perm_id=o.perm_id, client_id=o.client_id))
            out.append(self._status(o, st, st.status))
        return out

    def completed(self, states: dict[int, OrderState], now: datetime) -> list[bytes]:
        """reqCompletedOrders: today's filled, cancelled and expired orders, every client's
        (TWS keys them by permId and forgets them with the trading day, like executions)."""
        today = xp.exchange_date(now)
        out = []
        for o in self.orders.values():
            st = states.get(o.sim_id)
            if st is None or not st.done or o.done_at is None:
                continue
            if xp.exchange_date(o.done_at) != today:
                continue
            out.append(completed_order(o.parsed, ib_status_name(st.status), perm_id=o.perm_id,
                                       filled=st.filled, completed_time=o.done_at))
        return out

    def executions(self, client_id: int, req_id: int, now: datetime) -> list[bytes]:
        """reqExecutions: only the current trading day's executions, as IB returns them
        ("since midnight"); older ones are forgotten."""
        today = xp.exchange_date(now)
        self.execs = [r for r in self.execs if xp.exchange_date(r.spec.time) >= today]
        out = []
        for r in self.execs:
            if client_id and r.client_id != client_id:
                continue
            out.append(exec_details(req_id, r.spec))
            if r.commission is not None:
                out.append(commission_report(r.spec.execId, r.commission))
        return out

    # --- fills and status changes -----------------------------------------------------------------
    def pump(self, states: dict[int, OrderState], snap: Snapshot) -> bool:
        """Report fills and status changes the sim made since the last call. True if any."""
        changed = False
        for o in self.orders.values():
            st = states.get(o.sim_id)
            if st is None:
                continue
            msgs = self._progress(o, st, snap)
            if st.done and o.done_at is None:
                o.done_at = snap.time
            if st.status is not o.status and not msgs:
                if st.status is OrderStatus.CANCELLED and st.error:
                    msgs.append(error_msg(o.order_id, 202, f"Order Canceled - reason:{st.error}"))
                msgs.append(self._status(o, st, st.status))
            if msgs:
                changed = True
                self.send(o.client_id, b"".join(msgs))
        return changed

    def _status(self, o: GwOrder, st: OrderState, status: OrderStatus,
                upto: int | None = None) -> bytes:
        """orderStatus as of the first `upto` fills (all by default), `status` under IB's
        name for it."""
        o.status = status
        fills = st.fills[:upto] if upto is not None else st.fills
        filled = sum(f.qty for f in fills)
        avg = o.sign * sum(f.qty * f.price for f in fills) / filled if filled else 0.0
        last = o.sign * fills[-1].price if fills else 0.0
        return order_status(o.order_id, ib_status_name(status), filled, st.qty - filled,
                            round(avg, 6), o.perm_id, 0, round(last, 6), o.client_id)

    def _progress(self, o: GwOrder, st: OrderState, snap: Snapshot) -> list[bytes]:
        new = st.fills[o.fills_sent:]
        if not new:
            return []
        out: list[bytes] = []
        cum = sum(f.qty for f in st.fills[:o.fills_sent])
        for f in new:
            cum += f.qty
            out += self._fill_msgs(o, f, cum, st, snap)
        o.fills_sent = len(st.fills)
        if st.done and o.done_at is None:
            o.done_at = new[-1].time or snap.time
        out.append(self._status(o, st, st.status))
        return out

    def _fill_msgs(self, o: GwOrder, f: Fill, cum: int, st: OrderState,
                   snap: Snapshot) -> list[bytes]:
        base = f"{o.perm_id:08x}.{next(self._fill_seq):08x}"
        when = f.time or snap.time
        symbol = o.legs[0].contract.symbol
        bag = WireContract(BAG_CON_ID, symbol, "BAG", "", 0.0, "", "", "SMART", "", "USD",
                           "", "COMB")
        side = "SLD" if o.sign < 0 else "BOT"  # the BAG line reports the order as sent
        bag_spec = ExecutionSpec(bag, f"{base}.01", when, self.account, side, f.qty,
                                 round(o.sign * f.price, 6), o.perm_id, o.client_id, o.order_id,
                                 cumQty=cum, avgPrice=round(o.sign * st.avg_price, 6),
                                 orderRef=o.parsed.orderRef)
        specs: list[tuple[ExecutionSpec, float | None]] = [(bag_spec, None)]
        prices = self._leg_prices(o.legs, f.price, snap)
        n_contracts = sum(abs(leg.ratio) for leg in o.legs)
        for i, (leg, px) in enumerate(zip(o.legs, prices)):
            shares = abs(leg.ratio) * f.qty
            spec = ExecutionSpec(
                self.reg.wire(leg.contract), f"{base}.{i + 2:02d}", when, self.account,
                "BOT" if leg.ratio > 0 else "SLD", shares, round(px, 4), o.perm_id, o.client_id,
                o.order_id, cumQty=shares, avgPrice=round(px, 4), orderRef=o.parsed.orderRef)
            specs.append((spec, round(f.commission * abs(leg.ratio) / n_contracts, 4)))
        out = []
        for spec, comm in specs:
            self.execs.append(ExecRecord(o.client_id, spec, comm))
            out.append(exec_details(-1, spec))
        out += [commission_report(s.execId, c) for s, c in specs if c is not None]
        return out

    @staticmethod
    def _leg_prices(legs: tuple[Leg, ...], price: float, snap: Snapshot) -> list[float]:
        """Leg prices at the natural quote, shifted evenly so they sum to the combo price."""
        m0 = legs[0].contract.multiplier
        quotes, natural, weights = [], 0.0, 0.0
        for leg in legs:
            c = leg.contract
            px = 0.0
            if c.sec_type == "FUT":
                px = float(snap.vix_futures.get(c.expiry, 0.0))
            else:
                ch = (snap.chains if c.symbol == "SPX" else snap.vix_chains).get(c.expiry)
                try:
                    bid, ask = ch.quote(c.strike, c.right) if ch else (0.0, 0.0)
                    px = ask if leg.ratio > 0 else bid
                except KeyError:
                    pass
            px = px if math.isfinite(px) else 0.0
            w = abs(leg.ratio) * c.multiplier / m0
            quotes.append(px)
            natural += math.copysign(w, leg.ratio) * px
            weights += w
        adj = (price - natural) / weights if weights else 0.0
        return [max(0.0, px + (adj if leg.ratio > 0 else -adj)) for px, leg in zip(quotes, legs)]
