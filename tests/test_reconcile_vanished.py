"""Reconciliation of an order the executor is walking that the broker no longer knows.

Recovery runs again while the daemon trades (after a reconnect, a clock jump, or a
modification the broker refused). An open intent whose order the broker no longer reports
is folded as done (never reached the broker, or filled while down); the executor must then
stop tracking it: left in `executor.working` it kept the daemon busy (no flatten could
finish, no entry could follow), and a later fold of the same intent could come twice.
"""

from __future__ import annotations

from strategies.tvm import Status
from tests.conftest import read_events
from tests.simrun import working_entry


def _spy_places(d) -> list:
    sent: list = []
    place = d.broker.place

    async def spy(req):
        sent.append(req)
        return await place(req)

    d.broker.place = spy
    return sent


async def test_a_vanished_order_is_no_longer_walked(settings_factory, log_file):
    d = await working_entry(settings_factory())
    (key, w), = d.executor.working.items()
    del d.broker._orders[w.order_id]  # the broker forgot it (a reset, another day's order)
    sent = _spy_places(d)
    await d.recover()
    assert key not in d.executor.working and not d.executor.busy
    ev = read_events(log_file)
    assert [e for e in ev if e["event"] == "reconcile.not_sent" and e["key"] == key]
    assert [e["order_id"] for e in ev if e["event"] == "reconcile.untracked"] == [w.order_id]
    assert d.store.intent(key)["status"] == "cancelled"
    assert d.state.pending is None and d.state.status is not Status.ENTERING
    for _ in range(6):  # every walk step that order would have had
        d.clock.advance(10)
        await d.step(decide=False)
    assert not [r for r in sent if r.order_id == w.order_id]  # no modify for it
    assert not [e for e in read_events(log_file)
                if e["event"] in ("order.walked", "order.cancel_requested", "tick.failed")
                and e.get("key") == key]
    d.store.close()


async def test_an_order_done_while_tracked_is_folded_once(settings_factory, log_file):
    d = await working_entry(settings_factory())
    (key, w), = d.executor.working.items()
    await d.broker.cancel(w.order_id)  # done at the broker before the executor saw it
    folds: list = []
    fold = d._fold
    d._fold = lambda done, now: (folds.append(done.intent.key), fold(done, now))
    await d.recover()
    assert key not in d.executor.working
    d.clock.advance(10)
    await d.step(decide=False)
    assert folds.count(key) == 1
    d.store.close()


async def test_an_order_still_working_keeps_its_walk_through_a_recovery(settings_factory,
                                                                         log_file):
    """Recovery while trading (a reconnect) finds the order working: the executor's record
    stands. Re-adopted at the last walk step, the order was cancelled at its next due time
    instead of walking on."""
    d = await working_entry(settings_factory(orders={"walk_steps": 4, "walk_seconds": 10}))
    (key, w), = d.executor.working.items()
    await d.recover()
    assert d.executor.working[key] is w and w.step == 0
    d.clock.advance(10)
    await d.step(decide=False)
    ev = read_events(log_file)
    assert [e["step"] for e in ev if e["event"] == "order.walked" and e["key"] == key][:1] == [1]
    assert not [e for e in ev if e["event"] == "order.cancel_requested" and e.get("key") == key]
    d.store.close()
