"""The method on the simulator, through the daemon: calm takes profit, a crash climbs the
roll ladder to max_steps and no further, then the campaign stops and cools down."""

from datetime import datetime

from tests.conftest import read_events
from tests.simrun import run


def _by(events, *names):
    return [e for e in events if e["event"] in names]


async def test_calm_takes_profit_without_a_roll(settings_factory, log_file):
    s = settings_factory(sim={"speed": "max", "days": 20, "scenario": "calm", "seed": 2},
                         tick_seconds=300)
    assert (await run(s))[0] == 0
    ev = read_events(log_file)
    first = _by(ev, "campaign.closed", "campaign.stopped")[0]
    cid = first["campaign"]
    assert first["event"] == "campaign.closed" and first["reason"] == "take_profit"
    assert first["steps"] == 0 and first["pnl"] > 0
    assert not [e for e in _by(ev, "roll.step") if e["campaign"] == cid]
    exit_ = [e for e in _by(ev, "exit.decided") if e["campaign"] == cid][0]
    assert exit_["profit"] >= exit_["threshold"] == round(0.5 * exit_["credit"], 2)


async def test_crash_climbs_to_max_steps_then_stops_and_cools_down(settings_factory, log_file):
    # roll_funding "any" (the size-up pays for itself): every tested step is funded, so the
    # ladder is climbed to max_steps; under "hedges" a crash stops at the first unfunded step
    s = settings_factory(sim={"speed": "max", "days": 45, "scenario": "crash_2020", "seed": 7},
                         strategy={"roll_funding": "any"}, tick_seconds=300)
    assert (await run(s))[0] == 0
    ev = read_events(log_file)
    steps = _by(ev, "roll.step")
    max_steps = s.strategy.max_steps
    assert steps and all(e["step"] <= max_steps for e in steps)
    assert max(e["step"] for e in steps) == max_steps
    for e in steps:  # each step carries the numbers that decided it
        assert e["triggers"] and e["funded"] is True
        assert e["new_credit"] + e["roll_fund"] >= e["close_cost"]
    rolled = _by(ev, "campaign.rolled")
    qty = [e["qty"] for e in rolled]
    assert qty == sorted(qty) and qty[-1] <= 5  # 1 -> 2 -> 3 -> 5 at most
    stopped = _by(ev, "campaign.stopped")
    assert stopped and stopped[0]["why"] == "steps_exhausted" and stopped[0]["steps"] == max_steps
    until = datetime.fromisoformat(stopped[0]["cooldown_until"])
    stop_time = datetime.fromisoformat(stopped[0]["market_time"])
    later = [e for e in _by(ev, "campaign.entered")
             if datetime.fromisoformat(e["market_time"]) > stop_time]
    assert all(datetime.fromisoformat(e["market_time"]) >= until for e in later)
    assert not [e for e in ev if e["level"] == "error"]
