"""bot.baselines.Cndr marks the held condor lazily (a day keeps only its last value): its
daily values and mark must equal marking at every snapshot, as it did before."""

from __future__ import annotations

from datetime import datetime

from bot.baselines import Cndr
from bot.broker.sim import SimBroker
from bot.clock import SimClock
from strategies import expiry as xp


async def test_lazy_marks_equal_eager_marks() -> None:
    b = SimBroker(SimClock(datetime(2026, 1, 5, 9, 45, tzinfo=xp.NY)), "crash_2020", 7)
    lazy, eager = Cndr(1_000_000.0), Cndr(1_000_000.0)
    marks = set()
    for _ in range(13 * 36):
        snap = await b.snapshot()
        for c in (lazy, eager):
            c.on_snapshot(snap, 0.04, b.market.opens)
        marks.add(eager.mark)  # read at every step: marked then, as before
        b.clock.advance(1800)
        if not xp.is_spx_open(b.clock.now()):
            b.clock.set(xp.next_spx_open(b.clock.now()))
    assert len(marks) > 20 and lazy.cycles  # marked through moves, and a cycle settled
    assert lazy.daily == eager.daily and len(lazy.daily) >= 10
    assert lazy.mark == eager.mark and lazy.cash == eager.cash


async def test_a_snapshot_that_quotes_the_condor_lets_the_earlier_ones_go() -> None:
    """`mark` reads the newest snapshot that quotes the held condor, so once one does, the
    snapshots before it are not kept (a day's chains held to its end cost memory and
    cache misses); the marks stay those of marking at every step."""
    b = SimBroker(SimClock(datetime(2026, 1, 5, 9, 45, tzinfo=xp.NY)), "chop", 7)
    lazy, eager = Cndr(1_000_000.0), Cndr(1_000_000.0)
    held = 0
    for _ in range(200):
        snap = await b.snapshot()
        for c in (lazy, eager):
            c.on_snapshot(snap, 0.04, b.market.opens)
        eager.mark  # noqa: B018 (read at every step: marked then)
        if lazy.pos is not None:
            held += 1
            assert len(lazy._unmarked) == 1 and lazy._unmarked[0][0] is snap.chains
        b.clock.advance(600)
        if not xp.is_spx_open(b.clock.now()):
            b.clock.set(xp.next_spx_open(b.clock.now()))
    assert held > 100
    assert lazy.daily == eager.daily and lazy.mark == eager.mark
