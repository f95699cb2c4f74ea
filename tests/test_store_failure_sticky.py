"""A failed store write while the guard already shows REDUCING (daily loss) or HALTED.

The daily-loss REDUCING ends with the trading day; the REDUCING a store failure sets lasts
until a resume issued after it. Before, `_store_check` recorded the failure only when the
guard was ACTIVE, so on the next trading day the bot returned to ACTIVE as if the store
had never failed.
"""

from __future__ import annotations

import sqlite3

from bot import control
from bot.risk import ACTIVE, HALTED, REDUCING
from tests.conftest import read_events
from tests.simrun import build


def _state_write_fails(d) -> list[str]:
    """The daemon's next state write raises "database or disk is full" (once); the write
    is made at once (a heartbeat's forced write), the step after it sees the failure."""
    put, failed = d.store.put, []

    def once(*a, **kw):
        if not failed:
            failed.append(a[0])
            raise sqlite3.OperationalError("database or disk is full")
        return put(*a, **kw)

    d.store.put = once
    d._persist(d.clock.now(), force=True)
    return failed


async def _daily_loss(s, fraction: float):
    d = build(s)
    await d.start()
    await d.step()  # the day's starting net liquidation (entries wait 15 minutes)
    d.broker.cash -= fraction * s.sim.initial_cash
    d.clock.advance(60)
    await d.step()
    return d


async def test_store_failure_under_a_daily_loss_reduce_outlasts_the_day(settings_factory,
                                                                        log_file):
    s = settings_factory()
    d = await _daily_loss(s, 0.04)  # past the 3% reduce limit, short of the halt limit
    assert d.guard.state == REDUCING and d.guard.flags["operator"] == ACTIVE
    failed = _state_write_fails(d)
    d.clock.advance(60)
    await d.step()
    names = [e["event"] for e in read_events(log_file)]
    assert failed and "store.write_failed" in names
    assert d.guard.flags["operator"] == REDUCING and "risk.flag_set" in names
    d.clock.advance(24 * 3600)  # the next trading day: the daily rule's REDUCING ends
    await d.step()
    assert d.guard.flags["daily"] == ACTIVE
    assert d.guard.state == REDUCING  # the store failure's does not
    control.write(s.control_file, "run")  # a resume issued after the failure lifts it
    await d.poll_control()
    assert d.guard.state == ACTIVE
    d.store.close()


async def test_store_failure_while_halted_stays_halted(settings_factory, log_file):
    s = settings_factory()
    d = await _daily_loss(s, 0.06)  # past the halt limit
    assert d.guard.state == HALTED
    failed = _state_write_fails(d)
    d.clock.advance(60)
    await d.step()
    assert failed and d.guard.state == HALTED
    d.clock.advance(24 * 3600)
    await d.step()
    assert d.guard.state == HALTED
    d.store.close()
