"""Found while testing #14 item 3: a heartbeat whose store write fails (disk full) ends the
live schedule (the IB path): `Daemon.heartbeat` writes `store.put("heartbeat", ...)`
unguarded and `bot.cadence.live_loop` awaits it outside any step's error handling, so the
driver task dies and no step (no close) runs again while `run()` waits for a stop.

`heartbeat` now guards its write as `_persist` does: store.write_failed is logged and the
guard goes REDUCING (closing orders only), and the schedule goes on.
"""

from __future__ import annotations

import asyncio
import sqlite3

from tests.conftest import read_events
from tests.simrun import build


async def test_live_schedule_outlives_a_failed_heartbeat_write(settings_factory, log_file):
    s = settings_factory(tick_seconds=60, heartbeat_seconds=120)
    d = build(s)
    d.clock.advance(20 * 60)
    await d.start()
    put = d.store.put

    def heartbeat_fails(key, *a, **kw):
        if key == "heartbeat":
            raise sqlite3.OperationalError("database or disk is full")
        return put(key, *a, **kw)

    d.store.put = heartbeat_fails
    steps: list = []

    def hook(daemon, snap):
        steps.append(snap.time)
        if len(steps) >= 30:
            daemon.stop()

    d.step_hooks.append(hook)
    try:
        await asyncio.wait_for(d._live_loop(), 30)
    finally:
        d.store.close()
    assert len(steps) >= 30
    assert d.guard.state == "REDUCING"
    assert any(e["event"] == "store.write_failed" and e.get("what") == "heartbeat"
               for e in read_events(log_file))
