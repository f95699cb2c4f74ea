"""A close-then-open roll whose open cannot be built waits a bounded time, then stops.

The close has filled, so nothing of the condor is held; before, when no next expiry was
listed (or no strikes sat in the delta band) the campaign stayed ROLLING for good, its
hedges held, logging `roll.waiting` once. Now it waits through the rest of that session
and the whole next one, then stops (`roll_open_failed`, a cool-down, hedges closed).
"""

from __future__ import annotations

from datetime import date

from strategies import tvm
from strategies.expiry import exchange_date
from strategies.params import StrategyParams
from strategies.types import Campaign, Context, State, Status
from tests.synth import at, snapshot

P = StrategyParams()


def _rolling(snap) -> State:
    last = max(snap.chains)  # rolled from the last listed expiry: no next one to open in
    camp = Campaign("C0001-20260105", step=1, next_qty=2, next_wing=50.0, rolled_from=last,
                    realized=-1200.0)
    return State(status=Status.ROLLING, campaign=camp)


def _decide(state: State, day: date, hour: int, minute: int = 0):
    snap = snapshot(at(day, hour, minute), 5000.0, 18.0)
    return tvm.decide(state, snap, P, Context())


def test_the_open_waits_through_the_next_session_then_the_campaign_stops():
    monday, tuesday, wednesday = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
    state = _rolling(snapshot(at(monday, 11), 5000.0, 18.0))
    d = _decide(state, monday, 11)
    assert d.state.status is Status.ROLLING and not d.intents
    (name, fields), = d.events
    assert name == "roll.waiting" and fields["why"] == "no_next_expiry"
    # the close of Tuesday's session (16:15 New York, SPX options)
    assert fields["until"] == at(tuesday, 16, 15).isoformat()
    since = d.state.campaign.open_wait_since
    assert since == at(monday, 11)
    d = _decide(d.state, tuesday, 16, 10)  # still inside the wait: it stands from Monday
    assert d.state.status is Status.ROLLING and d.state.campaign.open_wait_since == since
    d = _decide(d.state, wednesday, 9, 35)
    assert d.state.status is Status.COOLDOWN and not d.intents
    (name, fields), = [e for e in d.events if e[0] == "campaign.stopped"]
    assert fields["why"] == "roll_open_failed" and fields["waiting_since"] == since.isoformat()
    assert exchange_date(d.state.cooldown_until) > wednesday


def test_a_wait_over_a_weekend_still_gets_the_next_session():
    friday, monday, tuesday = date(2026, 3, 6), date(2026, 3, 9), date(2026, 3, 10)
    state = _rolling(snapshot(at(friday, 15), 5000.0, 18.0))
    d = _decide(state, friday, 15)
    d = _decide(d.state, monday, 15)  # the session after Friday's is Monday's: still waiting
    assert d.state.status is Status.ROLLING
    d = _decide(d.state, tuesday, 9, 35)
    assert d.state.status is Status.COOLDOWN
