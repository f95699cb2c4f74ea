"""The guard's trading states: the daily-loss rule and the operator's flag, hand-computed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from test_risk import T0, condor_legs, guard, intent, snap

from bot.risk import ACTIVE, HALTED, REDUCING


# --- daily loss -------------------------------------------------------------------------------
def _nl(nl, t):
    return snap(nl=nl, time=t)


def test_daily_loss_reduces_then_halts():
    g = guard(daily_loss_limit=0.03, daily_halt_limit=0.05)
    ev = g.observe(_nl(1_000_000.0, T0), T0)
    assert ev == [("risk.day_start", {"date": "2026-03-02", "start_nl": 1000000.0})]
    assert g.observe(_nl(970_001.0, T0), T0) == [] and g.state == ACTIVE
    ev = g.observe(_nl(970_000.0, T0), T0)
    assert ev == [("risk.state", {"previous": ACTIVE, "state": REDUCING, "why": "daily_loss_limit",
                                  "loss": 30000.0, "limit": 30000.0, "start_nl": 1000000.0})]
    assert g.observe(_nl(990_000.0, T0), T0) == [] and g.state == REDUCING  # no way back today
    ev = g.observe(_nl(950_000.0, T0), T0)
    assert ev[0][1]["state"] == HALTED and ev[0][1]["limit"] == 50000.0


def test_reducing_ends_next_trading_day_halted_does_not():
    g = guard()
    g.observe(_nl(1_000_000.0, T0), T0)
    g.observe(_nl(960_000.0, T0), T0)
    assert g.state == REDUCING
    t1 = T0 + timedelta(days=1)
    ev = g.observe(_nl(960_000.0, t1), t1)
    assert ("risk.state", {"previous": REDUCING, "state": ACTIVE, "why": "new_trading_day"}) in ev
    assert g.state == ACTIVE
    g.observe(_nl(900_000.0, t1), t1)
    assert g.state == HALTED
    t2 = t1 + timedelta(days=1)
    g.observe(_nl(900_000.0, t2), t2)
    assert g.state == HALTED
    ev = g.resume()
    assert g.state == ACTIVE and ev[0][1]["why"] == "operator_resume"


def test_day_start_is_the_last_value_before_the_new_date():
    # the overnight gap counts: Friday's last NL is Monday's start
    g = guard()
    fri = datetime(2026, 2, 27, 20, 59, tzinfo=UTC)  # 15:59 New York
    g.observe(_nl(1_000_000.0, fri), fri)
    ev = g.observe(_nl(960_000.0, T0), T0)
    assert ev[0] == ("risk.day_start", {"date": "2026-03-02", "start_nl": 1000000.0})
    assert g.state == REDUCING
    # the New York date, not the UTC date: 23:30 New York is still the same day
    late = datetime(2026, 3, 3, 4, 30, tzinfo=UTC)
    assert g.observe(_nl(960_000.0, late), late) == [] and g.state == REDUCING


def test_resume_rebases_the_day_and_operator_reducing_persists():
    g = guard()
    g.observe(_nl(1_000_000.0, T0), T0)
    g.observe(_nl(940_000.0, T0), T0)
    assert g.state == HALTED
    assert g.resume()[0][1]["start_nl"] == 940_000.0
    assert g.observe(_nl(940_000.0, T0), T0) == [] and g.state == ACTIVE
    g.observe(_nl(911_000.0, T0), T0)  # 29,000 of 940,000 = 3.09%
    assert g.state == REDUCING
    assert g.set_state(REDUCING, "operator_reduce") == []
    t1 = T0 + timedelta(days=1)
    g.observe(_nl(911_000.0, t1), t1)
    assert g.state == REDUCING  # the operator's REDUCING does not expire
    assert g.set_state(HALTED, "reconcile_mismatch")[0][1] == {
        "previous": REDUCING, "state": HALTED, "why": "reconcile_mismatch"}


def test_assigning_active_is_a_resume_too():
    # the daemon's control path assigns guard.state; that must not be undone by the next tick
    g = guard()
    g.observe(_nl(1_000_000.0, T0), T0)
    g.observe(_nl(940_000.0, T0), T0)
    assert g.state == HALTED
    g.state = ACTIVE
    assert g.observe(_nl(940_000.0, T0), T0) == [] and g.state == ACTIVE


def test_bad_net_liquidation_is_reported_once():
    g = guard()
    assert g.observe(_nl(float("nan"), T0), T0)[0][0] == "risk.bad_account"
    assert g.observe(_nl(float("nan"), T0), T0) == []
    assert g.state == ACTIVE


def test_export_restore_keeps_the_daily_memory():
    g = guard()
    g.observe(_nl(1_000_000.0, T0), T0)
    g.observe(_nl(965_000.0, T0), T0)
    h = guard()
    h.restore(g.export())
    assert h.state == REDUCING
    assert h.observe(_nl(949_000.0, T0), T0)[0][1]["state"] == HALTED
    k = guard()
    k.restore(g.export())
    t1 = T0 + timedelta(days=1)
    k.observe(_nl(965_000.0, t1), t1)
    assert k.state == ACTIVE


# --- the operator's flag and the daily-loss flag (#14 item 6) --------------------------------
def test_operator_reduce_never_loosens_a_halt():
    g = guard()
    g.observe(_nl(1_000_000.0, T0), T0)
    g.observe(_nl(940_000.0, T0), T0)  # 6% down: the daily rule halts
    assert g.set_state(REDUCING, "operator_reduce") == [] and g.state == HALTED
    g.state = REDUCING  # the daemon's path assigns the state
    assert g.state == HALTED and g.flags == {"operator": REDUCING, "daily": HALTED}
    assert g.check_modify(intent_close(), 4.4, T0).code == "halted"
    g.resume()
    assert g.state == ACTIVE and g.flags == {"operator": ACTIVE, "daily": ACTIVE}


def intent_close():
    return intent(condor_legs(sign=-1), mid=4.2, natural=4.6, action="close")


def test_a_new_day_clears_the_daily_flag_never_the_operators():
    g = guard()
    g.observe(_nl(1_000_000.0, T0), T0)
    g.observe(_nl(965_000.0, T0), T0)  # the daily rule: REDUCING
    g.set_state(REDUCING, "operator_reduce")  # and the operator says reduce too
    assert g.flags == {"operator": REDUCING, "daily": REDUCING}
    saved = json.loads(json.dumps(g.export()))
    t1 = T0 + timedelta(days=1)
    for h in (g, guard()):
        if h is not g:
            h.restore(saved)  # the same after a restart
        h.observe(_nl(965_000.0, t1), t1)
        assert h.state == REDUCING and h.flags == {"operator": REDUCING, "daily": ACTIVE}


def test_daily_reducing_under_an_operator_reducing_expires_alone():
    g = guard()
    g.set_state(REDUCING, "operator_reduce")
    g.observe(_nl(1_000_000.0, T0), T0)
    g.observe(_nl(965_000.0, T0), T0)
    assert g.flags == {"operator": REDUCING, "daily": REDUCING}
    g.observe(_nl(930_000.0, T0), T0)  # 7% down: the stricter wins
    assert g.state == HALTED
    g.resume()
    g.observe(_nl(930_000.0, T0), T0)  # the resume acknowledged the loss
    assert g.state == ACTIVE


def test_restore_reads_the_older_one_state_form():
    old_daily = {"state": REDUCING, "day": "2026-03-02", "start_nl": 1e6, "last_nl": 965_000.0,
                 "reduced_on": "2026-03-02"}
    old_operator = {**old_daily, "reduced_on": None}
    t1 = T0 + timedelta(days=1)
    g, h = guard(), guard()
    g.restore(old_daily)
    h.restore(old_operator)
    g.observe(_nl(965_000.0, t1), t1)
    h.observe(_nl(965_000.0, t1), t1)
    assert (g.state, h.state) == (ACTIVE, REDUCING)
    with pytest.raises(ValueError):
        guard().restore({**old_daily, "operator": "MAYBE", "daily": ACTIVE})
