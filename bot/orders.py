"""Order execution: combo limit at mid, walked toward natural, one order id per intent.

`submit` persists the intent first, then places it (orderRef = intent key). `process` runs
every driver step: it folds fills into the store, walks the price (modifying the working order
in place, same order id) every `walk_seconds`, and cancels after `walk_steps` prices. It
returns the intents whose orders are done, with their filled quantity and average price.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot import logs
from bot.broker.base import Broker, BrokerError, ErrorKind, OrderRequest, OrderState, OrderStatus
from bot.config import OrderSettings
from bot.store import Store
from strategies import instruments, walk
from strategies.types import Intent, Snapshot

log = logs.get("bot.orders")
PACED = ("orders_per_minute",)  # walk refusals that pass with time
# a failed modification: the order is done or gone at the broker (stop walking, reconcile);
# no answer in time (the outcome is unknown: reconcile); anything else (disconnected,
# pacing...): keep tracking it, the next step tries again
STOP_WALKING = (ErrorKind.CANNOT_MODIFY, ErrorKind.NOT_FOUND)
RECONCILE = (*STOP_WALKING, ErrorKind.TIMEOUT)


def listen_orders(broker: Any, fn: Callable[[], None]) -> bool:
    """Have `fn()` called on every order status or execution the broker reports; False when
    it reports none (the executor then runs on its timer alone).

    A broker offers this as `add_order_listener(fn)` (an optional extension of the Broker
    protocol, `bot.broker.base.OrderEvents`): IBBroker calls `fn` after its order book has
    folded the event in; SimBroker has none (its orders change only inside a step).
    """
    add = getattr(broker, "add_order_listener", None)
    if not callable(add):
        return False
    add(fn)
    return True


def walk_price(intent: Intent, step: int, steps: int, max_slippage: float) -> float:
    """The limit for walk step `step` (0-based): mid, then toward natural, capped
    (`strategies.walk.limit`), on the order's own tick grid: a single leg's tick at the
    natural price, a complex order's net-price tick (SPX 0.05, VIX 0.01 at any price)."""
    tick = instruments.combo_tick(intent.legs, intent.natural)
    return walk.limit(intent.mid, intent.natural, step, steps, max_slippage, tick)


@dataclass
class Working:
    intent: Intent
    order_id: int
    step: int
    placed_at: datetime
    fills_seen: set[str] = field(default_factory=set)
    unsaved: dict[str, Any] = field(default_factory=dict)  # store columns not yet written
    new_row: bool = False  # a close sent while its intent row could not be written
    filled: int = 0  # contracts of it filled so far (the positions hold them)
    walking: bool = True  # False: the broker refused a modification; reconciliation decides


@dataclass(frozen=True)
class Done:
    intent: Intent
    filled: int
    avg_price: float
    commission: float
    status: OrderStatus
    error: str = ""


class Executor:
    def __init__(self, broker: Broker, store: Store, settings: OrderSettings,
                 guard: Any = None) -> None:
        self.broker = broker
        self.store = store
        self.s = settings
        self.guard = guard  # the risk guard checks every price sent, placement or walk step
        self.working: dict[str, Working] = {}
        self.store_failed: str | None = None  # the last store write error (daemon: REDUCING)
        self.reconcile_due: str | None = None  # why the broker's view must be read again

    @property
    def busy(self) -> bool:
        return bool(self.working)

    def next_due(self) -> datetime | None:
        """When the next walk step (or the cancel after the last) is due, broker-clock time."""
        return min((w.placed_at + timedelta(seconds=(w.step + 1) * self.s.walk_seconds)
                    for w in self.working.values() if w.walking), default=None)

    def due(self, now: datetime) -> bool:
        nxt = self.next_due()
        return nxt is not None and now >= nxt

    async def submit(self, intent: Intent, now: datetime) -> Done | None:
        """Persist, then place. Returns Done at once if the broker refused the order."""
        if self.store.has_intent(intent.key):
            log.error("order.duplicate_refused", key=intent.key)
            return None
        written = self._write(intent.key, "intent", lambda: self.store.add_intent(intent, now))
        if not written and not intent.closing:
            # write-ahead: an opening order is never sent before its intent is on disk
            return Done(intent, 0, 0.0, 0.0, OrderStatus.REJECTED, "store.write_failed")
        # a close goes out even on a full disk (it only reduces risk); its row follows later
        price = walk_price(intent, 0, self.s.walk_steps, self.s.max_slippage)
        if self.guard is not None:
            v = self.guard.check_price(intent, price)
            if not v.approved:
                self._write(intent.key, "intent_update", lambda: self.store.update_intent(
                    intent.key, now, status="rejected", error=v.code))
                log.warning("risk.rejected", key=intent.key, campaign=intent.campaign_id,
                            code=v.code, **v.numbers)
                return Done(intent, 0, 0.0, 0.0, OrderStatus.REJECTED, v.code)
        req = OrderRequest(intent.key, intent.legs, intent.qty, price)
        try:
            st = await self.broker.place(req)
        except BrokerError as e:
            err = str(e)
            self._write(intent.key, "intent_update", lambda: self.store.update_intent(
                intent.key, now, status="rejected", error=err))
            log.error("order.rejected", key=intent.key, campaign=intent.campaign_id, code=e.code,
                      kind=e.kind.value, error=e.message)
            return Done(intent, 0, 0.0, 0.0, OrderStatus.REJECTED, e.message)
        if self.guard is not None:
            self.guard.record_order(now)
        # tracked in memory first: the order is at the broker whatever the disk says next
        w = self.working[intent.key] = Working(intent, st.order_id, 0, now)
        log.info("order.submitted", key=intent.key, campaign=intent.campaign_id,
                 action=intent.action, order_id=st.order_id, qty=intent.qty, limit=price,
                 mid=round(intent.mid, 2), natural=round(intent.natural, 2), step=intent.step,
                 layer=intent.layer or None)
        w.unsaved = {"status": "working", "order_id": st.order_id, "limit_price": price}
        w.new_row = not written
        self._save(w, now)
        return None

    def _write(self, key: str, what: str, fn: Callable[[], Any]) -> bool:
        """One store write; a failure (disk full, I/O error) is logged as store.write_failed
        and flagged for the daemon (REDUCING), never raised into the trading path."""
        try:
            fn()
            return True
        except sqlite3.Error as e:
            self.store_failed = str(e)
            log.error("store.write_failed", key=key, what=what, error=str(e),
                      action="order tracked in memory; REDUCING; retried every step")
            return False

    def _save(self, w: Working, now: datetime) -> bool:
        """Write the order's pending columns (the "working" update after placeOrder)."""
        if w.new_row and self._write(w.intent.key, "intent",
                                     lambda: self.store.add_intent(w.intent, w.placed_at)):
            w.new_row = False
        if not w.new_row and w.unsaved and self._write(
                w.intent.key, "intent_update",
                lambda: self.store.update_intent(w.intent.key, now, **w.unsaved)):
            w.unsaved = {}
        return not w.unsaved and not w.new_row

    def adopt(self, intent: Intent, order_id: int, step: int, placed_at: datetime,
              state: OrderState | None = None) -> None:
        """Track an order placed before a restart (found again by reconciliation); fills the
        store already has are not reported again."""
        seen = {f.exec_id for f in state.fills} if state is not None else set()
        self.working[intent.key] = Working(intent, order_id, step, placed_at, seen)

    async def process(self, now: datetime, snap: Snapshot | None = None) -> list[Done]:
        """Fills, finished orders and due walk steps; `snap` (the step's snapshot) is what
        each walk step's quotes are checked against."""
        if not self.working:
            return []
        states = {st.order_id: st for st in await self.broker.orders()}
        done: list[Done] = []
        for key, w in list(self.working.items()):
            st = states.get(w.order_id)
            self._save(w, now)  # the disk may be back: the "working" row is written then
            if st is None:
                continue
            if not self._record_fills(w, st, now):
                continue  # the fill is not on disk yet: fold it when it is
            if st.done:
                fin = self._finish(w, st, now)
                if fin is not None:
                    done.append(fin)
                continue
            due = (now - w.placed_at).total_seconds() >= (w.step + 1) * self.s.walk_seconds
            if not due or not w.walking:
                continue
            if w.step + 1 >= self.s.walk_steps:
                await self._cancel(w, now)
                continue
            bad = self._bad_quotes(w.intent, snap, now)
            if bad is not None:  # never walk on NaN, crossed or stale quotes: cancel instead
                log.warning("order.walk_bad_quotes", key=key, order_id=w.order_id,
                            code=bad.code, **bad.numbers)
                await self._cancel(w, now, bad.code)
                continue
            price = walk_price(w.intent, w.step + 1, self.s.walk_steps, self.s.max_slippage)
            if self.guard is not None:  # state, pace, price and max loss at the new price
                v = self.guard.check_modify(w.intent, price, now)
                if not v.approved:
                    # only the pace passes: the step is retried next time. Any other refusal
                    # (a price the guard will not send, halted, reducing) is one every later
                    # step would meet too: the order is cancelled, not left at its old price
                    retry = v.code in PACED
                    log.warning("order.walk_refused", key=key, order_id=w.order_id, code=v.code,
                                then="retry next step" if retry else "cancel", **v.numbers)
                    if not retry:
                        await self._cancel(w, now, v.code)
                    continue
            w.step += 1
            req = OrderRequest(key, w.intent.legs, w.intent.qty, price, order_id=w.order_id)
            try:
                st = await self.broker.place(req)
            except BrokerError as e:
                stop, again = e.kind in STOP_WALKING, e.kind in RECONCILE
                log.warning("order.modify_failed", key=key, order_id=w.order_id, code=e.code,
                            kind=e.kind.value, error=e.message,
                            action="stop walking; reconcile" if stop
                            else "reconcile" if again else "keep tracking")
                if stop:
                    w.walking = False
                if again:
                    self.reconcile_due = f"{key}: modify {e.kind.value}"
                continue
            if self.guard is not None:
                self.guard.record_order(now)
            w.unsaved["limit_price"] = price
            self._save(w, now)
            # late: how far behind its schedule (placed_at + step x walk_seconds) the step ran
            late = (now - w.placed_at).total_seconds() - w.step * self.s.walk_seconds
            log.info("order.walked", key=key, order_id=w.order_id, step=w.step, limit=price,
                     late_seconds=round(late, 1))
            if self._record_fills(w, st, now) and st.done:
                fin = self._finish(w, st, now)
                if fin is not None:
                    done.append(fin)
        return done

    def _bad_quotes(self, intent: Intent, snap: Snapshot | None, now: datetime) -> Any:
        """The guard's verdict on the legs' current quotes (missing, NaN, zero, crossed,
        stale), or None when they are fine or there is nothing to check them against."""
        if snap is None or self.guard is None or not hasattr(self.guard, "_quotes"):
            return None
        _, bad = self.guard._quotes(intent, snap, now)
        return bad

    async def cancel_all(self, now: datetime, why: str) -> None:
        for w in list(self.working.values()):
            await self._cancel(w, now, why)

    async def _cancel(self, w: Working, now: datetime, why: str = "walk_exhausted") -> None:
        try:
            await self.broker.cancel(w.order_id)
            log.info("order.cancel_requested", key=w.intent.key, order_id=w.order_id, why=why)
        except BrokerError as e:
            log.warning("order.cancel_failed", key=w.intent.key, order_id=w.order_id,
                        code=e.code, kind=e.kind.value, error=e.message)

    def _record_fills(self, w: Working, st: OrderState, now: datetime) -> bool:
        """Store the order's new fills; False while the store cannot take them."""
        for f in st.fills:
            if f.exec_id in w.fills_seen:
                continue
            added: list[bool] = []

            def add(f: Any = f, added: list[bool] = added) -> None:
                added.append(self.store.add_fill(f))

            if not self._write(w.intent.key, "fill", add):
                return False
            w.fills_seen.add(f.exec_id)
            if added[0]:
                log.info("order.filled", key=w.intent.key, campaign=w.intent.campaign_id,
                         order_id=w.order_id, qty=f.qty, price=round(f.price, 2),
                         commission=round(f.commission, 2), exec_id=f.exec_id)
        w.filled = st.filled
        w.unsaved.update(filled=st.filled, avg_price=st.avg_price,
                         commission=sum(f.commission for f in st.fills))
        self._save(w, now)
        return True

    def _finish(self, w: Working, st: OrderState, now: datetime) -> Done | None:
        """The order is done: once its final row is on disk, stop tracking it (None until)."""
        status = "filled" if st.status is OrderStatus.FILLED else "cancelled"
        w.unsaved.update(status=status, error=st.error)
        if not self._save(w, now):
            return None
        del self.working[w.intent.key]
        comm = sum(f.commission for f in st.fills)
        if status == "cancelled":
            log.info("order.cancelled", key=w.intent.key, order_id=w.order_id, filled=st.filled,
                     error=st.error or None)
        return Done(w.intent, st.filled, st.avg_price, comm, st.status, st.error)
