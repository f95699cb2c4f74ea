"""End to end on the embedded sim (accelerated): the daemon enters and exits a condor."""

import asyncio
from datetime import datetime

from bot.orders import walk_price
from bot.risk import RiskGuard
from strategies.tvm import Status
from tests.conftest import read_events
from tests.simrun import build, run


async def test_enters_and_exits_a_condor(settings_factory, log_file):
    # the plain condor: no roll steps, no hedges — entry and exit only
    s = settings_factory(sim={"speed": "max", "days": 45, "scenario": "calm"}, tick_seconds=300,
                         strategy={"max_steps": 0},
                         hedge={"event_layer": False, "fomc_layer": False, "tail_layer": False})
    code, d = await run(s)
    assert code == 0
    ev = read_events(log_file)
    names = [e["event"] for e in ev]
    entered = [e for e in ev if e["event"] == "campaign.entered"]
    closed = [e for e in ev if e["event"] in ("campaign.closed", "campaign.stopped")]
    assert entered and closed, names[-20:]
    first = entered[0]
    assert len(first["strikes"]) == 4 and first["strikes"] == sorted(first["strikes"])
    assert first["qty"] == s.strategy.base_qty and first["credit"] > 0 and first["expiry"]
    assert closed[0]["reason"] in ("take_profit", "time_exit", "steps_exhausted")
    assert not [e for e in ev if e["event"] in ("roll.step", "hedge.opened")]
    # every order was approved by the guard first, and persisted with its fills
    submitted = [e["key"] for e in ev if e["event"] == "order.submitted"]
    approved = [e["key"] for e in ev if e["event"] == "risk.approved"]
    assert submitted and set(submitted) <= set(approved)
    assert names.index("daemon.started") < names.index("campaign.entered")
    assert names[-1] == "daemon.stopped"
    for e in ev:
        assert (e["timestamp"].endswith("Z") and e["level"] and "." in e["event"]
                or e["event"] == "heartbeat")


async def test_same_seed_same_decisions(settings_factory, log_file, tmp_path):
    s = settings_factory(sim={"speed": "max", "days": 8, "seed": 3}, tick_seconds=300)
    await run(s)
    def decisions(events):
        return [(e["event"], e["market_time"], e.get("strikes"), e.get("price"), e.get("credit"))
                for e in events if e["event"] in ("campaign.entered", "order.filled")]

    first_run = read_events(log_file)
    first = decisions(first_run)
    (tmp_path / "state" / "condorbot.db").unlink()
    await run(s)
    second = decisions(read_events(log_file)[len(first_run):])
    assert first and first == second


async def _live_schedule(settings, stop_when, max_steps=400):
    """Run the daemon's live schedule (the IB path's) on a simulated clock, which it sets
    instead of waiting: start 20 minutes into the session, stop when `stop_when(d)` holds."""
    d = build(settings)
    d.clock.advance(20 * 60)
    await d.start()
    start = d.clock.now()
    steps = []

    def hook(daemon, snap):
        steps.append(snap.time)
        if stop_when(daemon) or len(steps) >= max_steps:
            daemon.stop()

    d.step_hooks.append(hook)
    try:
        await asyncio.wait_for(d._live_loop(), 60)  # a guard against a schedule that spins
    finally:
        d.store.close()
    return d, start, steps


async def test_live_schedule_decides_at_start_and_walks_on_its_own_clock(settings_factory,
                                                                          log_file):
    s = settings_factory(tick_seconds=60, orders={"walk_steps": 4, "walk_seconds": 10},
                         hedge={"event_layer": False, "fomc_layer": False, "tail_layer": False})
    d, start, steps = await _live_schedule(s, lambda d: d.state.status is Status.OPEN)
    assert d.state.status is Status.OPEN
    ev = read_events(log_file)
    submitted = [e for e in ev if e["event"] == "order.submitted"]
    walked = [e for e in ev if e["event"] == "order.walked"]
    # the first decision is taken at start, not a tick later
    assert submitted and submitted[0]["market_time"] == start.isoformat()
    # each walk step walk_seconds after the last, though the decision tick is 60 s
    t0 = datetime.fromisoformat(submitted[0]["market_time"])
    times = [(datetime.fromisoformat(e["market_time"]) - t0).total_seconds() for e in walked]
    assert times == [10.0, 20.0, 30.0][:len(times)] and times
    # decisions still every tick_seconds: steps at start + k*60 among the walk steps
    offsets = {(t - start).total_seconds() for t in steps}
    assert {0.0, 10.0, 20.0} <= offsets


async def test_live_schedule_ticks_every_tick_seconds_when_idle(settings_factory, log_file):
    s = settings_factory(tick_seconds=120)
    s = s.model_copy(update={"strategy": s.strategy.model_copy(update={"vix_max": 1.0})})
    d, start, steps = await _live_schedule(s, lambda d: False, max_steps=5)
    assert [(t - start).total_seconds() for t in steps] == [0.0, 120.0, 240.0, 360.0, 480.0]


def test_decisions_see_the_executors_walk_and_the_campaign_loss_cap(settings_factory, log_file):
    # a roll is funded at the walk's last limit and checked against the running-loss cap
    # (#12 item 3): decide must get the settings the executor and the guard use
    s = settings_factory(orders={"walk_steps": 6, "max_slippage": 0.5},
                         risk={"max_campaign_loss_pct": 0.07})
    d = build(s)
    try:
        assert (d.ctx.walk_steps, d.ctx.max_slippage, d.ctx.max_campaign_loss_pct) == (6, 0.5,
                                                                                       0.07)
    finally:
        d.store.close()


async def test_the_guard_counts_working_orders_and_takes_max_loss_at_the_limit(settings_factory,
                                                                               log_file):
    # #14 items 4-5: every check gets the executor's working orders and the first limit sent
    s = settings_factory(sim={"speed": "max", "days": 8, "seed": 3}, tick_seconds=300)
    d = build(s)
    calls: list[tuple] = []

    class Recording(RiskGuard):
        def check(self, intent, snap, what_if=None, now=None, working=(), limit=None):
            calls.append((intent, working, limit))
            return super().check(intent, snap, what_if, now, working, limit)

    g = Recording(s.risk, s.strategy.max_steps)
    g.state = d.guard.state
    d.guard = d.executor.guard = g
    try:
        await d.run()
    finally:
        d.store.close()
    assert calls
    for intent, working, limit in calls:
        assert isinstance(working, list) and limit is not None
        assert limit == walk_price(intent, 0, s.orders.walk_steps, s.orders.max_slippage)


async def test_the_daemon_decides_with_the_function_it_is_given(settings_factory, log_file):
    # the backtest's plain twin passes its decide to the Daemon: no global tvm.decide swap
    from bot.broker.sim import make_sim_broker
    from bot.daemon import Daemon
    from bot.store import Store
    from strategies import tvm

    seen = []

    def decide(state, snap, p, ctx):
        seen.append(snap.time)
        return tvm.decide(state, snap, p, ctx)

    s = settings_factory(sim={"speed": "max", "days": 3, "seed": 3}, tick_seconds=300)
    broker, clock = make_sim_broker(s)
    store = Store(s.store_path)
    try:
        assert await Daemon(s, broker, clock, store, decide=decide).run() == 0
    finally:
        store.close()
    assert seen and tvm.decide is not decide
