"""Roll fund ledger: credits, debits, carry-over, per-layer P&L and money-weighted return."""

import math
from datetime import datetime, timedelta

import pytest

from strategies import ledger as lg

T0 = datetime(2026, 1, 5, 15, 0)


def test_two_flow_irr_matches_the_closed_form():
    for days, ratio in ((365, 1.10), (30, 1.02), (182.5, 0.9), (10, 0.5)):
        flows = [lg.Flow(T0, -100.0), lg.Flow(T0 + timedelta(days=days), 100.0 * ratio)]
        expected = ratio ** (365.0 / days) - 1.0
        assert lg.irr(flows) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_multi_flow_irr_zeroes_the_npv_and_undefined_cases_are_nan():
    flows = [lg.Flow(T0, -300.0), lg.Flow(T0 + timedelta(days=20), -200.0),
             lg.Flow(T0 + timedelta(days=40), 260.0), lg.Flow(T0 + timedelta(days=90), 290.0)]
    r = lg.irr(flows)
    npv = sum(f.amount / (1 + r) ** ((f.time - T0).days / 365.0) for f in flows)
    assert abs(npv) < 1e-6
    assert math.isnan(lg.irr([])) and math.isnan(lg.irr([lg.Flow(T0, 5.0)]))
    assert math.isnan(lg.irr([lg.Flow(T0, -5.0), lg.Flow(T0 + timedelta(days=3), -1.0)]))


def test_fund_credits_debits_and_carry_balance():
    led = lg.Ledger()
    led, ev = lg.realize_layer(led, "C1", "tail", 400.0)
    assert ev[0] == "ledger.credited" and ev[1]["fund"] == 400.0
    led, ev = lg.realize_layer(led, "C1", "event", -150.0)
    assert ev[0] == "ledger.debited" and led.fund("C1") == 250.0
    led, _ = lg.book(led, "C1", -1000.0, "roll")
    assert led.fund("C1") == -750.0 and led.drawn == 1000.0
    led, ev = lg.close_campaign(led, "C1")
    assert ev[1]["amount"] == -750.0 and led.carried == -750.0 and led.fund("C1") == 0.0
    led, _ = lg.book(led, "C2", 900.0, "roll")
    assert led.credits - led.debits == pytest.approx(led.balance) == pytest.approx(150.0)
    assert led.pnl("tail") == 400.0 and led.pnl("event") == -150.0
    with pytest.raises(ValueError):
        lg.credit(led, "C2", -1.0, "hedge")
