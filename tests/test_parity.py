"""Parity: the same seeded scenario, once on SimBroker in-process and once over the TWS wire
(the emulator serving the same SimBroker, IBBroker through ib_async), takes the same
decisions — entries, rolls, hedges, exits, with their keys and limits — over several
sessions. Both runs use the daemon's simulated driver on the same simulated clock (the
emulator's clock is manual: it moves only when the driver moves it, and each snapshot
pumps it first), so nothing depends on wall time.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot.broker.ib import IBBroker, plan_for
from bot.broker.sim import make_sim_broker
from bot.config import IBSettings
from bot.daemon import Daemon
from bot.sim.gateway import Faults, Gateway
from bot.store import Store
from tests.conftest import read_events

sys.path.insert(0, str(Path(__file__).parent))
from ib_helpers import ib_errors  # noqa: F401  (fails the test on ib_async ERRORs)

DECISIONS = ("entry.decided", "campaign.entered", "roll.step", "campaign.rolled",
             "hedge.opened", "hedge.closed", "campaign.closed", "campaign.stopped",
             "order.submitted", "order.walked", "risk.rejected")
FIELDS = ("key", "campaign", "action", "qty", "limit", "strikes", "expiry", "reason", "code",
          "layer", "step", "credit")


def _settings(settings_factory, name: str):
    s = settings_factory(
        sim={"speed": "max", "days": 5, "scenario": "calm", "seed": 11}, tick_seconds=3600,
        orders={"walk_steps": 2, "walk_seconds": 10},
        # some churn: roll_delta just above the entry delta, so five sessions hold entries,
        # roll steps and exits rather than one quiet condor
        strategy={"roll_delta": 0.17, "roll_delta_hard": 0.25, "macd_max_wait_minutes": 0,
                  "cooldown_days": 0, "vix_min": 5, "dte_min": 30, "dte_max": 90,
                  "entry_blackout_days": 0, "take_profit_pct": 0.05,
                  # rolls funded by their size-up: with main's default (hedges pay a same-size
                  # roll) every roll here stopped the campaign unfunded, so nothing rolled
                  "roll_funding": "any"})
    return s.model_copy(update={"store_path": s.store_path.with_name(f"{name}.db")})


def _decisions(events: list[dict]) -> list[tuple]:
    return [(e["event"], *(str(e.get(k)) for k in FIELDS)) for e in events
            if e["event"] in DECISIONS]


async def test_sim_and_wire_take_the_same_decisions(settings_factory, log_file):
    # in-process: the SimBroker, rolling as close + open like IBBroker (no combo roll)
    s = _settings(settings_factory, "inproc")
    broker, clock = make_sim_broker(s)
    broker.supports_combo_roll = False
    store = Store(s.store_path)
    assert await Daemon(s, broker, clock, store).run() == 0
    store.close()
    first = read_events(log_file)

    # over the wire: the same SimBroker behind the emulator, IBBroker in front
    s = _settings(settings_factory, "wire")
    sim, clock = make_sim_broker(s)
    gw = Gateway(sim, speed=None, faults=Faults())
    await gw.start()
    ib = IBBroker(IBSettings(port=gw.port, client_id=5, timeout=10, max_msgs_per_sec=50),
                  strategy=s.strategy, reconnect_delays=(0.05,), connect_attempts=1,
                  plan=plan_for(s.strategy, quote_wait=0.5))  # the emulator answers at once
    real_snapshot = ib.snapshot

    async def pumped_snapshot():
        await gw.pump()  # the emulator reports the market at the driver's time
        await ib.server_time()  # a round trip: every tick it sent is in
        return await real_snapshot()

    real_quotes = ib.quote_snapshot

    async def pumped_quotes(legs):
        await gw.pump()  # a walk step reads the working legs' quotes, at the driver's time too
        await ib.server_time()
        return await real_quotes(legs)

    ib.snapshot, ib.quote_snapshot = pumped_snapshot, pumped_quotes
    store = Store(s.store_path)
    try:
        assert await Daemon(s, ib, clock, store).run() == 0
    finally:
        store.close()
        await gw.close()
    second = read_events(log_file)[len(first):]

    a, b = _decisions(first), _decisions(second)
    kinds = {d[0] for d in a}
    assert {"campaign.entered", "roll.step"} <= kinds, sorted(kinds)
    sessions = [e for e in second if e["event"] == "daemon.stopped"]
    assert sessions and not [e for e in second if e["event"] == "tick.failed"]
    diff = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    assert a == b, (len(a), len(b), a[max(0, diff - 2):diff + 2], b[max(0, diff - 2):diff + 2])
