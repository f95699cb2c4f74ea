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
