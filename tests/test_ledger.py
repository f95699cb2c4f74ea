"""Roll fund ledger: credits, debits, carry-over, per-layer P&L and money-weighted return."""

import json
import math
from datetime import datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from strategies import ledger as lg

T0 = datetime(2026, 1, 5, 15, 0)


def test_two_flow_irr_matches_the_closed_form():
    for days, ratio in ((365, 1.10), (30, 1.02), (182.5, 0.9), (10, 0.5)):
        flows = [lg.Flow(T0, -100.0), lg.Flow(T0 + timedelta(days=days), 100.0 * ratio)]
        expected = ratio ** (365.0 / days) - 1.0
        assert lg.irr(flows) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_multi_flow_irr_zeroes_the_npv_and_undefined_cases_are_none_with_a_reason():
    flows = [lg.Flow(T0, -300.0), lg.Flow(T0 + timedelta(days=20), -200.0),
             lg.Flow(T0 + timedelta(days=40), 260.0), lg.Flow(T0 + timedelta(days=90), 290.0)]
    r = lg.irr(flows)
    npv = sum(f.amount / (1 + r) ** ((f.time - T0).days / 365.0) for f in flows)
    assert abs(npv) < 1e-6
    assert lg.irr([]) is None and lg.irr([lg.Flow(T0, 5.0)]) is None
    assert lg.irr([lg.Flow(T0, -5.0), lg.Flow(T0 + timedelta(days=3), -1.0)]) is None
    same_instant = lg.money_weighted([lg.Flow(T0, -5.0), lg.Flow(T0, 6.0)])
    assert same_instant.value is None and "one instant" in (same_instant.reason or "")
    assert "paid and received" in (lg.money_weighted([lg.Flow(T0, 5.0)]).reason or "")


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


def test_irr_over_five_years_and_for_a_fast_short_trade():
    # a 5-year span used to raise OverflowError (exp of 690 * 5); 1.5x over 5 years is the
    # closed form 1.5 ** (1/5) - 1
    five = [lg.Flow(T0, -100.0), lg.Flow(T0 + timedelta(days=5 * 365), 150.0)]
    assert lg.irr(five) == pytest.approx(1.5 ** 0.2 - 1.0, rel=1e-9)
    # a 2-day +10% trade used to come back NaN (past the 1e6 bracket): 1.1 ** 182.5 - 1
    fast = [lg.Flow(T0, -100.0), lg.Flow(T0 + timedelta(days=2), 110.0)]
    assert lg.irr(fast) == pytest.approx(1.1 ** 182.5 - 1.0, rel=1e-6)
    # a near-total loss in a few days: close to -100% a year, not NaN
    wiped = [lg.Flow(T0, -100.0), lg.Flow(T0 + timedelta(days=3), 1.0)]
    assert lg.irr(wiped) == pytest.approx(0.01 ** (365 / 3) - 1.0, abs=1e-12)


_amount = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False).filter(lambda a: a != 0)


def _flows(rows: list[tuple[int, float]]) -> list[lg.Flow]:
    return [lg.Flow(T0 + timedelta(days=d), a) for d, a in rows]


@given(st.lists(st.tuples(st.integers(0, 20 * 365), _amount), min_size=0, max_size=12))
@example([(0, -2.0), (1, 1.0), (147, -5.475769439672257e-47)])  # found by a random run
def test_money_weighted_return_is_a_number_or_none_with_a_reason_for_any_finite_flows(rows):
    flows = _flows(rows)
    r = lg.money_weighted(flows)  # must never raise
    assert (r.value is None) == (r.reason is not None)
    for v in (r.value, r.log):
        assert v is None or math.isfinite(v)  # never NaN, never inf
    if not any(a > 0 for _, a in rows) or not any(a < 0 for _, a in rows):
        assert r.value is None and r.log is None and r.reason  # all one sign: undefined
        return
    by_day: dict[int, list[float]] = {}
    for d, a in rows:
        by_day.setdefault(d, []).append(a)
    # the exact net flow per day: a tiny last flow still sets the NPV's sign at very low rates
    # (rows=[(0, -2), (1, 1), (147, -5e-47)] has no sign change at the extremes)
    nz = [v for v in (math.fsum(by_day[d]) for d in sorted(by_day)) if v != 0]
    if len(nz) >= 2 and (nz[0] > 0) != (nz[-1] > 0):
        # the NPV tends to the first net flow's sign as the rate grows and to the last one's
        # as it falls: opposite signs guarantee a root, which must be found
        assert r.log is not None
    if r.log is None:
        return
    if r.value is not None:
        assert r.value == pytest.approx(math.expm1(r.log), rel=1e-12, abs=1e-300)
    # at the returned log rate the NPV changes sign within a hair of it (scaled to the flows)
    x = r.log
    ts = [(f.time - T0).total_seconds() / (365 * 86400) for f in flows]

    def npv(xx):
        m = max(-xx * t for t in ts)
        return math.fsum(f.amount * math.exp(-xx * t - m) for f, t in zip(flows, ts))

    eps = 1e-6 * max(1.0, abs(x))
    assert npv(x - eps) * npv(x + eps) <= 0 or abs(npv(x)) <= 1e-6 * sum(abs(a) for _, a in rows)


@given(st.lists(st.tuples(st.integers(0, 20 * 365), _amount), min_size=0, max_size=12))
@example([(0, 492.0), (0, -2.735694759254174e-306)])  # found by a random run: HPR was inf
def test_layer_report_is_strict_json_for_any_finite_flows(rows):
    led = lg.Ledger()
    for d, a in rows:
        led = lg.layer_flow(led, "tail", T0 + timedelta(days=d), a)
        led, _ = lg.realize_layer(led, "C1", "tail", a)
    rep = lg.layer_report(led, "tail")
    json.dumps(lg.report(led), allow_nan=False)
    json.dumps(rep, allow_nan=False)  # NaN or inf anywhere raises here
    paid = sum(-a for _, a in rows if a < 0)
    received = sum(a for _, a in rows if a > 0)
    if paid > 0 and math.isfinite(received / paid):
        assert rep["hpr"] == pytest.approx(received / paid - 1.0, rel=1e-9)
    elif paid > 0:  # a huge gain on a denormal payment: no float, but a reason
        assert rep["hpr"] is None and "float range" in rep["hpr_reason"]
    else:
        assert rep["hpr"] is None and rep["hpr_reason"] == "nothing paid"
    assert (rep["irr"] is None) == (rep["irr_reason"] is not None)
    assert (rep["hpr"] is None) <= (rep["hpr_reason"] is not None)


def test_past_float_range_keeps_the_log_rate_and_says_why():
    # +1000% in one day: e^(365 ln 11) - 1 is past float range; the log rate is not
    r = lg.money_weighted([lg.Flow(T0, -1.0), lg.Flow(T0 + timedelta(days=1), 11.0)])
    assert r.value is None and "float range" in (r.reason or "")
    assert r.log == pytest.approx(365 * math.log(11.0), rel=1e-9)
