"""The daemon's time: when it steps, decides, walks orders and beats.

Simulated clock (`sim_driver`): the driver owns time. It runs a step, then advances simulated
time by `tick_seconds` (or `walk_seconds` while an order is working), sleeping tick/speed wall
seconds; closed hours are skipped by jumping to the next open. Decisions depend only on
simulated time, so a run is reproducible whatever the wall clock does.

Live clock (`live_loop`, the IB path): every interval is in the broker clock's seconds, so an
emulator at `--speed R` runs a compressed session. The first decision is taken at once after
connect and reconcile, then every `tick_seconds`; the executor runs whenever a walk step is
due or the broker reports an order event. Both paths walk orders through `Daemon.step`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from bot import logs
from bot.broker.base import BrokerError
from bot.orders import listen_orders
from strategies import expiry as xp

log = logs.get("bot.daemon")
MIN_WALL = 0.1  # wall seconds: the shortest wait between two scheduled runs
RESYNC_WALL = 1.0  # wall seconds: the longest wait before the broker clock is read again


async def sim_driver(d: Any) -> None:
    next_decision = d.clock.now()
    session: tuple[datetime, datetime] | None = None
    while not d.stopping.is_set():
        now = d.clock.now()
        session = xp.session_at(now, session)  # (the step before's, while inside it)
        if session is None or now >= session[1] or now < session[0]:
            nxt = xp.next_spx_open(now)
            if d.s.sim.days is not None and d.sessions >= d.s.sim.days:
                log.info("sim.days_done", days=d.sessions)
                d.stop(0)
                return
            d.clock.set(nxt)
            next_decision = nxt
            continue
        if _is_new_session(d, now):
            d.sessions += 1
            if d.s.sim.days is not None and d.sessions > d.s.sim.days:
                d.stop(0)
                return
        await d.step(decide=now >= next_decision)
        if now >= next_decision:
            next_decision = now + timedelta(seconds=d.s.tick_seconds)
        dt = d.s.orders.walk_seconds if d.executor.busy else d.s.tick_seconds
        dt = min(dt, (next_decision - now).total_seconds()) or dt
        if not d.clock.skip(dt):  # (as fast as possible, and no turn of the loop due)
            await d.clock.sleep(dt)


def _is_new_session(d: Any, now: datetime) -> bool:
    day = xp.exchange_date(now)
    if getattr(d, "_session_day", None) != day:
        d._session_day = day
        return True
    return False


async def live_loop(d: Any) -> None:
    """The live schedule, every interval in the broker clock's seconds (an emulator at
    `--speed R` is a compressed session): decide now, then every `tick_seconds`; run the
    executor whenever a walk step is due (`walk_seconds` after the last price) or the
    broker reports an order event, whichever comes first; heartbeat every
    `heartbeat_seconds`. One step function serves ticks, walks and events."""
    listening = listen_orders(d.broker, d._order_event.set)
    log.info("executor.cadence", walk_seconds=d.s.orders.walk_seconds,
             tick_seconds=d.s.tick_seconds, order_events=listening)
    now = d.clock.now()
    next_tick, next_beat = now, now + timedelta(seconds=d.s.heartbeat_seconds)
    while not d.stopping.is_set():
        now = d.clock.now()
        event, due = d._order_event.is_set(), d.executor.due(now)
        d._order_event.clear()
        if now >= next_tick:
            next_tick = now + timedelta(seconds=d.s.tick_seconds)
            await d._live_tick()
        elif event or due:
            await d.step(decide=False)
        if now >= next_beat:
            next_beat = now + timedelta(seconds=d.s.heartbeat_seconds)
            await d.heartbeat()
        wake = min(next_tick, next_beat, d.executor.next_due() or next_tick)
        await wait_until(d, wake)


async def wait_until(d: Any, when: datetime) -> None:
    """Wait until broker-clock time `when`, an order event or stop: in wall slices of at
    most RESYNC_WALL, re-reading the server time after each full slice (the clock's rate
    is learnt from those reads: a fresh connection to a fast emulator starts at 1x).
    A clock that is set rather than read (SimClock under test) jumps to `when`."""
    if hasattr(d.clock, "set"):
        if not d._order_event.is_set():
            d.clock.set(max(when, d.clock.now()))
            d._jumps.check(d.clock.now())  # moved by us, not a jump
        await asyncio.sleep(0)
        return
    rate = getattr(d.clock, "speed", None) or 1.0
    left = (when - d.clock.now()).total_seconds() / rate
    wall = min(max(left, MIN_WALL), RESYNC_WALL)
    waiters = [asyncio.ensure_future(e.wait()) for e in (d._order_event, d.stopping)]
    done, pending = await asyncio.wait(waiters, timeout=wall,
                                       return_when=asyncio.FIRST_COMPLETED)
    for w in pending:
        w.cancel()
    if not done and left > wall:
        try:
            await d.broker.server_time()
        except BrokerError as e:
            log.warning("clock.resync_failed", code=e.code, error=e.message)


async def heartbeat(d: Any) -> None:
    """The beat: market, state and account into the store (status and the web page read it)
    and the log; the daemon's state is written with it. A failed store write (disk full) is
    logged and puts the guard in REDUCING; the schedule, and every close, goes on."""
    snap = d._last_snap
    beat = {
        "wall_time": datetime.now().astimezone().isoformat(),
        "market_time": d.clock.now().isoformat(),
        "status": d.state.status.value,
        "mode": d.mode,
        "trading_state": d.guard.state,
        "spx": round(snap.spx, 2) if snap else None,
        "vix": round(snap.vix, 2) if snap else None,
        "net_liquidation": round(snap.account.net_liquidation, 2) if snap else None,
        "sessions": d.sessions,
        "log_records_lost": logs.write_failures(),  # log disk full: the store still tells
    }
    try:
        d.store.put("heartbeat", beat)
    except sqlite3.Error as e:
        log.error("store.write_failed", what="heartbeat", error=str(e), action="REDUCING")
        d.executor.store_failed = str(e)
    d._persist(d.clock.now(), force=True)
    d._store_check()
    log.info("heartbeat", **beat)
