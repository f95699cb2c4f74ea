"""End to end on the embedded sim (accelerated): the daemon enters and exits a condor."""

from tests.conftest import read_events
from tests.simrun import run


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
        assert e["timestamp"].endswith("Z") and e["level"] and "." in e["event"] or e["event"] == "heartbeat"


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
