"""Recovery on start (and after a reconnect): reconcile the store with the broker.

1. Orders by orderRef (= intent key): an open intent whose order the broker knows is adopted
   (still working: the executor tracks it again; done: its fills are folded in). An intent the
   broker never saw was never sent: it is folded as not filled. Nothing is placed again.
2. Working orders at the broker that look like ours (orderRef of a campaign) but belong to no
   open intent are cancelled: the bot no longer wants them.
3. Positions by contract: what the strategy state says we hold (condor legs x qty, hedge
   layers) against what the broker holds. A broker position the state does not know:
   `reconcile.orphan`, REDUCING, and the position is left alone. A quantity that differs:
   HALTED, with a message that says what differs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot import codec, logs
from bot.broker.base import Broker, OrderState, OrderStatus
from bot.orders import Done, Executor
from bot.risk import HALTED, REDUCING
from bot.store import RESET_KEY, Store
from strategies.types import Fill, Intent

log = logs.get("bot.recovery")
OURS = re.compile(r"^C\d{4}-\d{8}:")


@dataclass
class Outcome:
    done: list[Done] = field(default_factory=list)  # outcomes to fold into the strategy
    orphans: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)


def expected_positions(state: Any) -> dict[str, int]:
    """Contract key -> signed quantity the strategy state says we hold."""
    held: dict[str, int] = defaultdict(int)
    camp = state.campaign
    if camp is not None and camp.legs:
        for leg in camp.legs:
            held[leg.contract.key] += leg.ratio * camp.qty
    for layer in state.hedges:
        if layer.status in ("open", "closing"):
            for leg in layer.legs:
                held[leg.contract.key] += leg.ratio * layer.qty
    return {k: v for k, v in held.items() if v}


async def reconcile(broker: Broker, store: Store, executor: Executor, state: Any,
                    now: datetime, walk_steps: int) -> Outcome:
    out = Outcome()
    orders = await broker.orders()
    by_ref: dict[str, OrderState] = {}
    for o in orders:
        if o.order_ref:
            by_ref[o.order_ref] = o  # the newest of an orderRef wins
    open_rows = store.open_intents()
    open_keys = {row["key"] for row in open_rows}
    surplus: dict[str, int] | None = None  # broker positions beyond what the state expects
    for row in open_rows:
        intent: Intent = codec.loads(row["blob"])
        st = by_ref.get(intent.key)
        if st is None and surplus is None:
            surplus = await _surplus(broker, state)
        if st is None and surplus is not None:
            done = _filled_while_down(store, intent, row, surplus, now)
            if done is not None:
                out.done.append(done)
                _untrack(executor, intent.key, "filled while down")
                continue
        if st is None:
            store.update_intent(intent.key, now, status="cancelled", error="never reached broker")
            log.warning("reconcile.not_sent", key=intent.key, stored=row["status"])
            out.done.append(Done(intent, 0, 0.0, 0.0, OrderStatus.CANCELLED,
                                 "never reached broker"))
            _untrack(executor, intent.key, "unknown to the broker")
            continue
        for f in st.fills:
            fill = Fill(intent.key, f.qty, f.price, f.commission, f.time, f.exec_id)
            if store.add_fill(fill):
                log.info("reconcile.fill_adopted", key=intent.key, qty=f.qty, price=f.price,
                         exec_id=f.exec_id)
        tracked = executor.working.get(intent.key)
        if st.working and tracked is not None and tracked.order_id == st.order_id:
            # recovery while trading (a reconnect, a clock jump): the executor's own record
            # (walk step, schedule, columns not yet on disk) stands; re-adopting it at the last
            # step cancelled the walk at its next due time
            log.info("reconcile.still_working", key=intent.key, order_id=st.order_id,
                     step=tracked.step, filled=st.filled)
            continue
        if st.working:
            store.update_intent(intent.key, now, status="working", order_id=st.order_id)
            executor.adopt(intent, st.order_id, max(0, walk_steps - 1), now, st)
            log.info("reconcile.adopted", key=intent.key, order_id=st.order_id,
                     filled=st.filled, status=st.status)
        else:
            status = "filled" if st.status is OrderStatus.FILLED else "cancelled"
            comm = sum(f.commission for f in st.fills)
            store.update_intent(intent.key, now, status=status, order_id=st.order_id,
                                filled=st.filled, avg_price=st.avg_price, commission=comm)
            log.info("reconcile.completed_while_down", key=intent.key, order_id=st.order_id,
                     status=st.status, filled=st.filled, avg_price=st.avg_price)
            out.done.append(Done(intent, st.filled, st.avg_price, comm, st.status, st.error))
            _untrack(executor, intent.key, f"done at the broker ({st.status.value})")
    for st in orders:
        if st.working and OURS.match(st.order_ref or "") and st.order_ref not in open_keys:
            await broker.cancel(st.order_id)
            log.warning("reconcile.cancelled_unwanted", order_id=st.order_id, key=st.order_ref)
    return out


def _filled_while_down(store: Store, intent: Intent, row: Any, surplus: dict[str, int],
                       now: datetime) -> Done | None:
    """An open intent the broker no longer reports (IB returns only today's executions and
    expires DAY orders): what of it filled, from the fills on disk and the positions held,
    or None if nothing did. The fills on disk count even when the row was not updated after
    them (a kill between the fill's write and the row's): such an order was folded as
    "never reached broker" and its legs were left as orphans."""
    fills = store.fills_for(intent.key)
    have = int(sum(f["qty"] for f in fills))
    if _take(surplus, intent, intent.qty):
        qty, why = intent.qty, "from positions"  # all of it is held
    elif have and _take(surplus, intent, have):
        qty, why = have, "from the fills on disk; the rest expired"
    elif have:
        qty, why = have, "from the fills on disk; positions are compared next"
    else:
        return None
    if have:
        price = sum(f["qty"] * f["price"] for f in fills) / have
        comm = sum(f["commission"] or 0.0 for f in fills)
    else:
        price = row["limit_price"] if row["limit_price"] is not None else intent.mid
        comm = row["commission"] or 0.0
    status = OrderStatus.FILLED if qty >= intent.qty else OrderStatus.CANCELLED
    store.update_intent(intent.key, now, status="filled" if qty >= intent.qty else "cancelled",
                        filled=qty, avg_price=price, commission=comm,
                        error=f"filled while down ({why})")
    log.warning("reconcile.filled_while_down", key=intent.key, qty=qty, of=intent.qty,
                price=round(price, 4), order_id=row["order_id"], why=why,
                action="folded as filled" if qty >= intent.qty else "folded as partly filled")
    return Done(intent, qty, price, comm, status)


def _untrack(executor: Executor, key: str, why: str) -> None:
    """Reconciliation folded this intent (its final row is written): the executor, which
    may still track it when recovery runs while trading (a reconnect, a clock jump, a
    refused modification), stops walking it and never folds it a second time."""
    w = executor.working.pop(key, None)
    if w is not None:
        log.warning("reconcile.untracked", key=key, order_id=w.order_id, why=why,
                    action="no longer walked; folded by reconciliation")


async def _surplus(broker: Broker, state: Any) -> dict[str, int]:
    held: dict[str, int] = defaultdict(int)
    for p in await broker.positions():
        held[p.contract.key] += p.qty
    for k, q in expected_positions(state).items():
        held[k] -= q
    return {k: v for k, v in held.items() if v}


def _take(surplus: dict[str, int], intent: Intent, qty: int) -> bool:
    """Whether the surplus holds all of `qty` units of the intent's legs; if so, consume it."""
    need: dict[str, int] = defaultdict(int)
    for leg in intent.legs:
        need[leg.contract.key] += leg.ratio * qty
    if qty <= 0 or not need or any(
            n * surplus.get(k, 0) <= 0 or abs(surplus[k]) < abs(n) for k, n in need.items() if n):
        return False
    for k, n in need.items():
        surplus[k] -= n
    return True


def compare_positions(expected: dict[str, int], actual: dict[str, int],
                      skip: set[str] | frozenset[str] = frozenset()) -> Outcome:
    """Orphans and quantity mismatches; contracts in `skip` (legs of orders still working,
    whose fills may land any moment) are not compared."""
    out = Outcome()
    expected = {k: v for k, v in expected.items() if k not in skip}
    actual = {k: v for k, v in actual.items() if k not in skip and v}
    for key, qty in sorted(actual.items()):
        if key not in expected:
            out.orphans.append(f"{key} x{qty}")
        elif expected[key] != qty:
            out.mismatches.append(f"{key}: broker {qty}, store {expected[key]}")
    for key, qty in sorted(expected.items()):
        if key not in actual:
            out.mismatches.append(f"{key}: broker 0, store {qty}")
    return out


async def recover(d: Any) -> None:
    """The daemon's reconciliation (at start, after a reconnect or a clock jump): orders by
    orderRef, then positions; folds every outcome into the strategy state and sets REDUCING
    (orphans) or HALTED (mismatches) through the daemon, which stamps them (bot.control)."""
    now = d.clock.now()
    out = await reconcile(d.broker, d.store, d.executor, d.state, now, d.s.orders.walk_steps)
    for done in out.done:
        d._fold(done, now)
    fold_unsent(d, now)
    skip = {leg.contract.key for w in d.executor.working.values() for leg in w.intent.legs}
    actual: dict[str, int] = {}
    for p in await d.broker.positions():
        actual[p.contract.key] = actual.get(p.contract.key, 0) + p.qty
    res = compare_positions(expected_positions(d.state), actual, skip)
    if res.orphans:
        log.warning("reconcile.orphan", positions=res.orphans,
                    action="REDUCING; the positions are left alone")
        d._set_trading_state(REDUCING, "orphan_position")  # sticky, whatever shows now
    if res.mismatches:
        log.error("reconcile.mismatch", differences=res.mismatches,
                  action="HALTED until an operator resumes")
        d._set_trading_state(HALTED, "position_mismatch: " + "; ".join(res.mismatches))
    log.info("reconcile.done", adopted=len(d.executor.working), folded=len(out.done),
             orphans=len(res.orphans), mismatches=len(res.mismatches))
    d._persist(now)


def fold_unsent(d: Any, now: datetime) -> None:
    """A pending intent the executor is not working and the store never saw was never sent
    (its tick failed between deciding and placing): fold it as not filled."""
    pending = [d.state.pending] + [layer.pending for layer in d.state.hedges]
    for intent in pending:
        if intent is None or intent.key in d.executor.working:
            continue
        row = d.store.intent(intent.key)
        if row is None or row["status"] in ("rejected", "cancelled", "filled"):
            log.warning("intent.not_sent", key=intent.key, stored=row["status"] if row else None)
            filled = row["filled"] if row else 0
            avg = row["avg_price"] if row else 0.0
            d._fold(Done(intent, filled, avg, row["commission"] if row else 0.0,
                         OrderStatus.CANCELLED, "never sent"), now)


async def store_reset(d: Any) -> None:
    """At start, after reconciliation: a store rebuilt by `condorbot reset-store`
    (`RESET_KEY`), or one that was missing while the broker holds positions, knows nothing
    of what the bot did before: REDUCING (sticky, stamped now: only a resume issued after
    this lifts it) until an operator has looked. The reset mark is then recorded as handled,
    so a later restart goes by the persisted trading state instead."""
    now = d.clock.now()
    reset = d.store.get(RESET_KEY)
    if isinstance(reset, dict) and not reset.get("handled_at"):
        log.warning("store.reset_found", set_aside=reset.get("set_aside"),
                    reset_at=reset.get("at"), detail=reset.get("detail") or None,
                    action="REDUCING until condorbot resume")
        d._set_trading_state(REDUCING, "store_reset")
        d._persist(now, force=True)
        d.store.put(RESET_KEY, {**reset, "handled_at": now.isoformat()})
        return
    if d.store.fresh and not isinstance(reset, dict):
        held = [p.contract.key for p in await d.broker.positions() if p.qty]
        if held:
            log.warning("store.missing", path=str(d.store.path), positions=held,
                        action="REDUCING until condorbot resume")
            d._set_trading_state(REDUCING, "store_missing")
            d._persist(now, force=True)
