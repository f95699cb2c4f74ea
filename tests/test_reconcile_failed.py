"""A reconciliation that fails part-way (a store write: disk full; a broker request).

Before, the error left `recover` half done: on a reconnect the daemon went on deciding at
the same step (the reconnect was counted already, so recovery was never run again), with
orders the broker knew and the executor did not, so a decision could place one again; at
start it ended the daemon. Now nothing is decided until a reconciliation finishes, it is
run again at every step, a failed store write sets REDUCING as any other does, and the
orders the executor does track walk on meanwhile (a step still snapshots, walks and records).
"""

from __future__ import annotations

import sqlite3

from bot.broker.base import BrokerError, ErrorKind
from bot.risk import REDUCING
from strategies.tvm import Status
from tests.conftest import read_events
from tests.simrun import working_entry


def _spy(d, name: str) -> list:
    calls: list = []
    fn = getattr(d.broker, name)

    async def spy(*a, **kw):
        calls.append(a)
        return await fn(*a, **kw)

    setattr(d.broker, name, spy)
    return calls


async def test_a_store_write_failing_in_reconcile_decides_nothing_until_it_finishes(
        settings_factory, log_file):
    d = await working_entry(settings_factory())
    (key, w), = d.executor.working.items()
    del d.broker._orders[w.order_id]  # the broker forgot it: reconcile folds it (one write)
    update, failures = d.store.update_intent, []

    def full(*a, **kw):
        if len(failures) < 2:  # this recovery and the retry at the next step
            failures.append(a[0])
            raise sqlite3.OperationalError("database or disk is full")
        return update(*a, **kw)

    d.store.update_intent = full
    placed = _spy(d, "place")
    await d.recover()
    assert d.unreconciled == "database or disk is full"
    assert key in d.executor.working and d.state.status is Status.ENTERING  # nothing folded
    for _ in range(2):
        d.clock.advance(300)
        await d.step()
    assert failures == [key, key]
    assert d.unreconciled is None  # the third run (the second step) finished
    assert d.guard.state == REDUCING  # the failed writes, as any failed store write
    ev = read_events(log_file)
    failed = [e for e in ev if e["event"] == "reconcile.failed"]
    # (the retry that failed the same way is not logged again)
    assert len(failed) == 1 and failed[0]["what"] == "store write"
    assert [e for e in ev if e["event"] == "reconcile.recovered"]
    assert d.store.intent(key)["status"] == "cancelled"
    assert key not in d.executor.working and d.state.pending is None
    # deciding resumed only after the reconciliation: REDUCING opens nothing new either
    assert not [r for r in placed if r[0].order_ref != key]
    d.store.close()


async def test_a_broker_request_failing_in_a_reconnect_recovery_holds_the_decision(
        settings_factory, log_file):
    d = await working_entry(settings_factory())
    orders, down = d.broker.orders, [1]

    async def flaky():
        if down:
            down.pop()
            raise BrokerError(ErrorKind.TIMEOUT, "reqAllOpenOrders timed out")
        return await orders()

    d.broker.orders = flaky
    decided: list = []
    decide = d.decide
    d.decide = lambda *a: (decided.append(a[1].time), decide(*a))[1]
    d.broker.reconnects = 1  # the link dropped and came back: recovery runs first
    d.clock.advance(300)
    await d.step()
    assert d.unreconciled == "broker: reqAllOpenOrders timed out" and decided == []
    # the order the executor tracks walks on meanwhile (a step's walk, not a decision)
    (key,) = d.executor.working
    walked = [e for e in read_events(log_file) if e["event"] == "order.walked"]
    assert [e["key"] for e in walked] == [key]
    d.clock.advance(300)
    await d.step()
    assert d.unreconciled is None and len(decided) == 1
    ev = read_events(log_file)
    assert [e["what"] for e in ev if e["event"] == "reconcile.failed"] == ["broker request"]
    assert not [e for e in ev if e["event"] == "tick.broker_error"]
    d.store.close()
