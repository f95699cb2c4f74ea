"""The risk guard, check by check, with hand-computed numbers."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from bot.broker.base import WhatIf
from bot.config import RiskSettings
from bot.risk import HALTED, REDUCING, RiskGuard, Verdict, max_loss, uncovered_shorts
from strategies.types import Account, Chain, Contract, Intent, Leg, Position, Snapshot

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 10:00 New York
EXP = date(2026, 4, 17)
EXP2 = date(2026, 5, 15)
VEXP = date(2026, 3, 18)
STRIKES = np.arange(4700.0, 5501.0, 50.0)

# put/call (bid, ask) at the condor strikes: condor mid = 1.10 - 3.00 - 2.50 + 0.20 = -4.20
QUOTES = {(4850.0, "P"): (1.00, 1.20), (4900.0, "P"): (2.90, 3.10),
          (5300.0, "C"): (2.40, 2.60), (5350.0, "C"): (0.10, 0.30)}


def make_chain(expiry=EXP, symbol="SPX", as_of=None, over=None, strikes=STRIKES) -> Chain:
    n = len(strikes)
    q = {**QUOTES, **(over or {})}
    arr = {k: np.full(n, 1.0) for k in ("cb", "ca", "pb", "pa")}
    for k in arr:
        arr[k] = arr[k] * (0.9 if k.endswith("b") else 1.1)
    for i, s in enumerate(strikes):
        if (s, "C") in q:
            arr["cb"][i], arr["ca"][i] = q[(s, "C")]
        if (s, "P") in q:
            arr["pb"][i], arr["pa"][i] = q[(s, "P")]
    z = np.zeros(n)
    return Chain(symbol, symbol, expiry, 0.1, np.asarray(strikes, float), arr["cb"], arr["ca"],
                 arr["pb"], arr["pa"], z, z, z, z, z, z, 100, as_of)


def opt(strike, right, expiry=EXP, symbol="SPX") -> Contract:
    return Contract(symbol, "OPT", expiry, float(strike), right, symbol, 100)


def condor_legs(lp=4850, sp=4900, sc=5300, lc=5350, expiry=EXP, sign=1):
    return (Leg(opt(lp, "P", expiry), sign), Leg(opt(sp, "P", expiry), -sign),
            Leg(opt(sc, "C", expiry), -sign), Leg(opt(lc, "C", expiry), sign))


def intent(legs=None, qty=3, mid=-4.20, natural=-3.80, action="open", step=0) -> Intent:
    return Intent(f"c1:{action}:{step}", "c1", action, legs or condor_legs(), qty, mid, natural,
                  step)


def held(legs, qty):
    return tuple(Position(leg.contract, leg.ratio * qty) for leg in legs)


def snap(positions=(), nl=1_000_000.0, cushion=0.9, chains=None, vix_chains=None,
         vix_futures=None, time=T0) -> Snapshot:
    chains = {EXP: make_chain(), EXP2: make_chain(EXP2)} if chains is None else chains
    return Snapshot(time, 5100.0, 18.0, chains, Account(nl, cushion=cushion), tuple(positions),
                    vix_futures or {}, vix_chains or {})


def wi(margin_after=15_000.0) -> WhatIf:
    return WhatIf(margin_after, margin_after, margin_after, margin_after)


def guard(**over) -> RiskGuard:
    return RiskGuard(RiskSettings(**over), max_steps=3)


def test_condor_is_approved_with_its_numbers():
    # max loss at the dearest limit check_price accepts: natural -3.80 + 0.10 tolerance
    # 50 x 100 x 3 - 3.70 x 100 x 3 = 15,000 - 1,110
    v = guard().check(intent(), snap(), wi(), T0)
    assert v == Verdict(True, "ok", {"contracts_after": 12, "margin_after": 15000.0,
                                     "margin_cap": 500000.0, "max_loss": 13890.0,
                                     "max_loss_cap": 100000.0})


# --- defined risk ---------------------------------------------------------------------------
def test_uncovered_shorts():
    assert uncovered_shorts(intent()) == []
    naked_put = (Leg(opt(4900, "P"), -1), Leg(opt(5300, "C"), -1), Leg(opt(5350, "C"), 1))
    assert uncovered_shorts(intent(naked_put)) == ["SPX:P:20260417"]
    ratio = (Leg(opt(4850, "P"), 1), Leg(opt(4900, "P"), -2))
    assert uncovered_shorts(intent(ratio)) == ["SPX:P:20260417"]
    # a long that expires before the short does not cover it; a later one does (calendar)
    early_long = (Leg(opt(5300, "C", EXP), 1), Leg(opt(5300, "C", EXP2), -1))
    assert uncovered_shorts(intent(early_long)) == ["SPX:C:20260515"]
    calendar = (Leg(opt(5300, "C", EXP), -1), Leg(opt(5300, "C", EXP2), 1))
    assert uncovered_shorts(intent(calendar)) == []
    # a put does not cover a call; VIX does not cover SPX
    wrong_right = (Leg(opt(5300, "C"), -1), Leg(opt(5350, "P"), 1))
    assert uncovered_shorts(intent(wrong_right)) == ["SPX:C:20260417"]
    wrong_symbol = (Leg(opt(25, "C", VEXP, "VIX"), 1), Leg(opt(5300, "C"), -1))
    assert uncovered_shorts(intent(wrong_symbol)) == ["SPX:C:20260417"]
    short_future = (Leg(Contract("VIX", "FUT", VEXP, multiplier=1000), -1),)
    assert uncovered_shorts(intent(short_future)) == ["VIX:FUT:20260318"]


def test_naked_short_rejected():
    legs = (Leg(opt(4900, "P"), -1), Leg(opt(5300, "C"), -1), Leg(opt(5350, "C"), 1))
    v = guard().check(intent(legs, mid=-5.3, natural=-5.0), snap(), wi(), T0)
    assert (v.approved, v.code, v.numbers) == (False, "naked_short",
                                               {"uncovered": ["SPX:P:20260417"]})


def test_close_of_the_wings_only_would_leave_naked_shorts():
    wings = (Leg(opt(4850, "P"), -1), Leg(opt(5350, "C"), -1))
    v = guard().check(intent(wings, mid=-1.3, natural=-1.1, action="close"),
                      snap(held(condor_legs(), 3)), None, T0)
    assert v.code == "naked_after_trade" and not v.approved
    assert v.numbers["uncovered"] == {"SPX:P:20260417": 3, "SPX:C:20260417": 3}


def test_close_must_reduce_held_positions():
    close = intent(condor_legs(sign=-1), mid=4.2, natural=4.6, action="close")
    v = guard().check(close, snap(), None, T0)  # nothing held
    assert (v.approved, v.code) == (False, "close_adds_exposure")
    v = guard().check(close, snap(held(condor_legs(), 2)), None, T0)  # holds 2, closes 3
    assert v.code == "close_adds_exposure"
    assert v.numbers["opening"] == {leg.contract.key: -leg.ratio for leg in condor_legs()}
    assert guard().check(close, snap(held(condor_legs(), 3)), None, T0).approved


# --- contracts ------------------------------------------------------------------------------
def test_contracts_per_order():
    g = guard(max_contracts_per_order=20, max_contracts_total=500)
    assert g.check(intent(qty=20), snap(), wi(), T0).approved
    v = g.check(intent(qty=21), snap(), wi(), T0)
    assert (v.code, v.numbers) == ("contracts_per_order", {"contracts": 21, "limit": 20})
    ratio2 = tuple(Leg(leg.contract, 2 * leg.ratio) for leg in condor_legs())
    v = g.check(intent(ratio2, qty=11, mid=-8.4, natural=-7.6), snap(), wi(), T0)
    assert (v.code, v.numbers["contracts"]) == ("contracts_per_order", 22)


def test_contracts_total_counts_held_positions():
    g = guard(max_contracts_total=80)
    other = condor_legs(expiry=EXP2)
    v = g.check(intent(), snap(held(other, 17)), wi(), T0)  # 68 + 12 = 80
    assert v.approved and v.numbers["contracts_after"] == 80
    v = g.check(intent(), snap(held(other, 18)), wi(), T0)  # 72 + 12 = 84
    assert (v.code, v.numbers) == ("contracts_total", {"held": 72, "after": 84, "limit": 80})


def test_closing_is_exempt_from_the_total():
    g = guard(max_contracts_total=80)
    positions = held(condor_legs(), 3) + held(condor_legs(expiry=EXP2), 20)  # 92 held
    close = intent(condor_legs(sign=-1), mid=4.2, natural=4.6, action="close")
    assert g.check(close, snap(positions), None, T0).approved


def test_roll_nets_against_held_condor_and_prices_the_new_legs():
    # hold 2 of the EXP condor; roll to 3 of a 75-wide EXP2 condor in one combo
    new = condor_legs(4825, 4900, 5300, 5375, EXP2)
    chains = {EXP: make_chain(), EXP2: make_chain(EXP2, strikes=np.arange(4700.0, 5501.0, 25.0),
                                                   over={(4825.0, "P"): (0.9, 1.1),
                                                         (5375.0, "C"): (0.05, 0.15)})}
    close = condor_legs(sign=-1)
    legs = tuple(Leg(lg.contract, 2 * lg.ratio) for lg in close) + tuple(
        Leg(lg.contract, 3 * lg.ratio) for lg in new)
    roll = intent(legs, qty=1, mid=-3.0, natural=-1.0, action="roll", step=1)
    g = guard(max_contracts_total=20)
    v = g.check(roll, snap(held(condor_legs(), 2), chains=chains), wi(), T0)
    # held 8 + gross legs 20 would be 28 > 20; after the roll only the new 12 remain
    assert v.approved and v.numbers["contracts_after"] == 12
    # new condor credit at mid: 1.0 - 3.0 - 2.5 + 0.1 = -4.4; 75 x 100 x 3 - 4.4 x 100 x 3,
    # plus what the combo may pay beyond its mid -3.0: up to natural -1.0 + 0.1, x 100
    assert v.numbers["max_loss"] == pytest.approx(22500 - 1320 + 210)


def test_roll_step_limit():
    g = guard()
    assert g.check(intent(action="roll", step=3), snap(), wi(), T0).approved
    v = g.check(intent(action="roll", step=4), snap(), wi(), T0)
    assert (v.code, v.numbers) == ("roll_step", {"step": 4, "limit": 3})
    assert guard().check(intent(step=-1), snap(), wi(), T0).code == "roll_step"


# --- campaign max loss ------------------------------------------------------------------------
def test_max_loss_of_the_50_wide_condor():
    # at a limit of mid: 50 x 100 x 3 - 4.20 x 100 x 3 = 15,000 - 1,260 = 13,740
    # -> cap 10% of 137,400 is exact
    g = guard(max_campaign_loss_pct=0.10, margin_cap_pct=1.0, min_cushion=0.0)
    assert g.check(intent(), snap(nl=137_400.0), wi(1.0), T0, limit=-4.20).approved
    v = g.check(intent(), snap(nl=137_390.0), wi(1.0), T0, limit=-4.20)
    assert (v.code, v.numbers) == ("campaign_max_loss", {"max_loss": 13740.0, "limit": 13739.0,
                                                         "net_liquidation": 137390.0,
                                                         "price": -4.2})


def test_max_loss_helper_shapes():
    legs = condor_legs(4800, 4900, 5300, 5350)  # broken wing: worst side is the 100-wide put
    parts = {lg.contract.key: (lg.contract, lg.ratio) for lg in legs}
    assert max_loss(parts, -300.0) == pytest.approx(10_000 - 300)
    debit = {"a": (opt(5300, "C"), 1), "b": (opt(5350, "C"), -1)}
    assert max_loss(debit, 150.0) == pytest.approx(150.0)  # a debit spread risks its debit
    assert max_loss({"b": (opt(5350, "C"), -1)}, -100.0) == math.inf
    fut = Contract("VIX", "FUT", VEXP, multiplier=1000)
    assert max_loss({fut.key: (fut, 1)}, 19_500.0) == pytest.approx(19_500.0)


def test_futures_calendar_is_covered_and_bounded():
    # short the March VIX future at 19.0, long April at 20.0: debit 1.00 x 1000; both legs
    # move with one VIX level at expiry, so the debit is all that is at risk
    apr = date(2026, 4, 15)
    legs = (Leg(Contract("VIX", "FUT", VEXP, multiplier=1000), -1),
            Leg(Contract("VIX", "FUT", apr, multiplier=1000), 1))
    s = snap(vix_futures={VEXP: 19.0, apr: 20.0})
    v = guard().check(intent(legs, qty=1, mid=1.0, natural=1.05, action="hedge_open"), s, wi(), T0,
                      limit=1.0)
    assert v.approved and v.numbers["max_loss"] == pytest.approx(1000.0)
    # reversed (long March, short April): the April short outlives its cover
    rev = tuple(Leg(lg.contract, -lg.ratio) for lg in legs)
    v = guard().check(intent(rev, qty=1, mid=-1.0, natural=-0.95, action="hedge_open"), s, wi(), T0)
    assert (v.code, v.numbers) == ("naked_short", {"uncovered": ["VIX:FUT:20260415"]})


# --- margin, cushion, what-if ----------------------------------------------------------------
def test_what_if_required_for_opening():
    v = guard().check(intent(), snap(), None, T0)
    assert (v.approved, v.code) == (False, "what_if_missing")


def test_margin_cap():
    g = guard(margin_cap_pct=0.5)
    assert g.check(intent(), snap(nl=200_000.0), wi(100_000.0), T0).approved
    v = g.check(intent(), snap(nl=200_000.0), wi(100_000.01), T0)
    assert (v.code, v.numbers) == ("margin_cap", {"margin_after": 100000.01, "cap": 100000.0,
                                                  "net_liquidation": 200000.0})
    assert g.check(intent(), snap(), wi(float("nan")), T0).code == "what_if_invalid"


def test_cushion():
    g = guard(min_cushion=0.2)
    assert g.check(intent(), snap(cushion=0.2), wi(), T0).approved
    v = g.check(intent(), snap(cushion=0.19), wi(), T0)
    assert (v.code, v.numbers) == ("cushion", {"cushion": 0.19, "limit": 0.2})
    assert g.check(intent(), snap(cushion=float("nan")), wi(), T0).code == "bad_account"
    assert g.check(intent(), snap(nl=0.0), wi(), T0).code == "bad_account"


# --- pacing -----------------------------------------------------------------------------------
def test_orders_per_minute():
    g = guard(max_orders_per_minute=3)
    for k in range(3):
        g.record_order(T0 + timedelta(seconds=10 * k))  # at 0, 10, 20 s
    v = g.check(intent(), snap(time=T0 + timedelta(seconds=59)), wi(), T0 + timedelta(seconds=59))
    assert (v.code, v.numbers) == ("orders_per_minute", {"orders_last_minute": 3, "limit": 3})
    t = T0 + timedelta(seconds=60)  # the order at 0 s has left the window
    assert g.check(intent(), snap(time=t), wi(), t).approved
    assert g.orders_last_minute(t) == 2


# --- quotes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("over,code", [
    ({(4900.0, "P"): (float("nan"), 3.1)}, "quote_not_finite"),
    ({(4900.0, "P"): (0.0, 0.0)}, "quote_zero"),
    ({(4900.0, "P"): (3.2, 3.1)}, "quote_crossed"),
    ({(5350.0, "C"): (0.0, 0.3)}, None),  # a zero bid under a positive ask is a real quote
])
def test_bad_quotes(over, code):
    v = guard().check(intent(), snap(chains={EXP: make_chain(over=over)}), wi(), T0)
    assert v.approved if code is None else (v.code == code and not v.approved)


def test_missing_quotes():
    g = guard()
    only_may = snap(chains={EXP2: make_chain(EXP2)})
    assert g.check(intent(), only_may, wi(), T0).code == "quote_missing"
    v = g.check(intent(condor_legs(4825, 4900, 5300, 5350)), snap(), wi(), T0)
    assert (v.code, v.numbers) == ("quote_missing", {"contract": "SPX:SPX:20260417:P:4825"})
    weekly = tuple(Leg(Contract("SPX", "OPT", EXP, lg.contract.strike, lg.contract.right, "SPXW"),
                       lg.ratio) for lg in condor_legs())
    assert g.check(intent(weekly), snap(), wi(), T0).code == "quote_missing"


def test_stale_quotes():
    g = guard(max_quote_age_seconds=120)
    fresh = snap(chains={EXP: make_chain(as_of=T0 - timedelta(seconds=120))})
    assert g.check(intent(), fresh, wi(), T0).approved
    stale = snap(chains={EXP: make_chain(as_of=T0 - timedelta(seconds=121))})
    v = g.check(intent(), stale, wi(), T0)
    assert (v.code, v.numbers["age_seconds"], v.numbers["limit"]) == ("quote_stale", 121.0, 120)
    # no as_of: the snapshot time is the quote time
    later = T0 + timedelta(seconds=300)
    assert g.check(intent(), snap(), wi(), later).code == "quote_stale"
    # a clock that jumped back: quotes from the future are not trusted either
    assert g.check(intent(), snap(), wi(), T0 - timedelta(seconds=300)).code == "quote_stale"


def test_vix_options_and_futures_quotes():
    vc = make_chain(VEXP, "VIX", strikes=np.arange(15.0, 41.0, 5.0))
    spread = (Leg(opt(25, "C", VEXP, "VIX"), 1), Leg(opt(30, "C", VEXP, "VIX"), -1))
    hedge = intent(spread, qty=2, mid=0.2, natural=0.4, action="hedge_open")
    g = guard()
    v = g.check(hedge, snap(vix_chains={VEXP: vc}), wi(), T0, limit=0.2)
    assert v.approved and v.numbers["max_loss"] == pytest.approx(40.0)  # 0.20 x 100 x 2
    assert g.check(hedge, snap(), wi(), T0).code == "quote_missing"  # not in snap.chains
    fut = intent((Leg(Contract("VIX", "FUT", VEXP, multiplier=1000), 1),), qty=1, mid=19.5,
                 natural=19.55, action="hedge_open")
    assert g.check(fut, snap(), wi(), T0).code == "quote_missing"
    assert g.check(fut, snap(vix_futures={VEXP: float("nan")}), wi(), T0).code == "quote_not_finite"
    v = g.check(fut, snap(vix_futures={VEXP: 19.5}), wi(), T0)  # at 19.55 + 0.10 tolerance
    assert v.approved and v.numbers["max_loss"] == pytest.approx(19_650.0)


# --- trading states ---------------------------------------------------------------------------
def test_halted_denies_everything_reducing_only_closes():
    g = guard()
    positions = held(condor_legs(), 3)
    close = intent(condor_legs(sign=-1), mid=4.2, natural=4.6, action="close")
    g.state = REDUCING
    v = g.check(intent(), snap(positions), wi(), T0)
    assert (v.code, v.numbers) == ("reducing_only_closing", {"action": "open"})
    assert g.check(close, snap(positions), None, T0).approved
    g.state = HALTED
    assert g.check(close, snap(positions), None, T0).code == "halted"
    assert g.check_modify(close, 4.4, T0).code == "halted"
    with pytest.raises(ValueError):
        g.state = "PAUSED"


def test_bad_intents():
    g = guard()
    assert g.check(intent(qty=0), snap(), wi(), T0).code == "bad_intent"
    assert g.check(intent(mid=float("nan")), snap(), wi(), T0).code == "bad_intent"
    assert g.check(intent(action="yolo"), snap(), wi(), T0).code == "bad_intent"
    no_legs = Intent("k", "c1", "open", (), 1, -1.0, -0.9)
    assert g.check(no_legs, snap(), wi(), T0).numbers == {"problem": "no legs"}
    half = (Leg(opt(4850, "P"), 1), Leg(opt(4900, "X"), -1))
    assert g.check(intent(half), snap(), wi(), T0).code == "bad_intent"


# --- limit price ------------------------------------------------------------------------------
def test_check_price():
    g = guard(price_tolerance=0.10)
    it = intent()  # mid -4.20, natural -3.80
    for limit in (-4.30, -4.20, -4.00, -3.80, -3.70):
        assert g.check_price(it, limit).approved, limit
    v = g.check_price(it, -3.65)
    assert (v.code, v.numbers["low"], v.numbers["high"]) == ("price_out_of_range", -4.3, -3.7)
    assert g.check_price(it, -4.35).code == "price_out_of_range"
    assert g.check_price(it, float("nan")).code == "price_not_finite"
    # a small credit whose natural is a debit: never sent at a debit, even within tolerance
    thin = intent(mid=-0.05, natural=0.05)
    assert g.check_price(thin, 0.0).approved
    assert g.check_price(thin, 0.05).code == "credit_at_debit"
    # closing a condor is a debit: mid 4.20, natural 4.60
    close = intent(condor_legs(sign=-1), mid=4.2, natural=4.6, action="close")
    assert g.check_price(close, 4.7).approved and not g.check_price(close, 4.75).approved


def test_limits_off_the_tick_grid_and_contracts_without_rules_are_refused():
    g = guard(price_tolerance=0.10)
    v = g.check_price(intent(), -4.03)  # an SPX condor trades in 0.05
    assert (v.code, v.numbers) == ("price_off_tick", {"limit": -4.03, "tick": 0.05})
    vix = (Leg(opt(25, "C", VEXP, "VIX"), 1), Leg(opt(30, "C", VEXP, "VIX"), -1))
    assert g.check_price(intent(vix, mid=3.27, natural=3.41), 3.33).approved  # 0.01
    spy = (Leg(Contract("SPY", "OPT", EXP, 500.0, "C", "SPY", 100), 1),)
    assert g.check(intent(spy, mid=1.0, natural=1.1), snap(), wi(), T0).code == "bad_intent"
    assert g.check_price(intent(spy, mid=1.0, natural=1.1), 1.05).code == "bad_intent"
    mini = tuple(Leg(Contract(c.symbol, "OPT", c.expiry, c.strike, c.right, "SPX", 10), lg.ratio)
                 for lg in condor_legs() for c in (lg.contract,))
    v = g.check(intent(mini), snap(), wi(), T0)
    assert v.code == "bad_intent" and "multiplier 10" in v.numbers["problem"]
