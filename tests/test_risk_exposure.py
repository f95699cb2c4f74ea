"""Exposure counts working orders; max loss at the limit price (#14 items 4 and 5).

Numbers by hand, with the fixtures of test_risk.py (condor 4850/4900/5300/5350 at mid -4.20,
natural -3.80; a VIX 25/30 call spread at 0.20 / 0.40).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from test_risk import (
    EXP2,
    T0,
    VEXP,
    condor_legs,
    guard,
    held,
    intent,
    make_chain,
    opt,
    snap,
    wi,
)

from strategies.types import Intent, Leg

VIX_CHAIN = {VEXP: make_chain(VEXP, "VIX", strikes=np.arange(15.0, 41.0, 5.0))}
SPREAD = (Leg(opt(25, "C", VEXP, "VIX"), 1), Leg(opt(30, "C", VEXP, "VIX"), -1))


def layer(name: str, qty: int = 2) -> Intent:
    return Intent(f"c1:hedge:{name}:open:1", "c1", "hedge_open", SPREAD, qty, 0.2, 0.4)


def vsnap(**kw):
    return snap(vix_chains=VIX_CHAIN, **kw)


# --- item 4: held + working for every cap -----------------------------------------------------
def test_two_layers_approved_on_one_snapshot_cannot_both_pass_the_cap():
    g = guard(max_contracts_total=6)
    s = vsnap()
    assert g.check(layer("event"), s, wi(), T0).approved  # 4 contracts
    v = g.check(layer("tail"), s, wi(), T0)  # 4 more would make 8
    assert (v.code, v.numbers) == ("contracts_total", {"held": 0, "after": 8, "limit": 6,
                                                       "working_orders": 1})
    # the same intent checked again is not counted twice
    assert g.check(layer("event"), s, wi(), T0).approved


def test_a_later_snapshot_holds_the_fill_instead():
    g = guard(max_contracts_total=8)
    assert g.check(layer("event"), vsnap(), wi(), T0).approved
    t = T0 + timedelta(seconds=60)
    filled = vsnap(positions=held(SPREAD, 2), time=t)
    assert g.check(layer("tail"), filled, wi(), t).approved  # 4 held + 4 = 8


def test_working_orders_passed_in_count_with_their_partial_fills():
    g = guard(max_contracts_total=10)
    condor = intent(qty=2, mid=-4.2, natural=-3.8)  # 8 contracts, working
    # one of two filled and already held: 4 held + 4 still to fill + 4 of the layer = 12
    s = vsnap(positions=held(condor_legs(), 1))
    v = g.check(layer("event"), s, wi(), T0, working=[(condor, 1)])
    assert (v.code, v.numbers["after"], v.numbers["held"]) == ("contracts_total", 12, 4)

    @dataclass
    class Working:  # the executor's record: .intent (and, if known, .filled)
        intent: Intent

    # an Intent alone, or the executor's record without .filled, counts as not filled at all
    for w in (condor, Working(condor)):
        v = g.check(layer("event"), vsnap(), wi(), T0, working=[w])
        assert (v.code, v.numbers["after"]) == ("contracts_total", 12)
    assert g.check(layer("event", 1), vsnap(), wi(), T0, working=[condor]).approved  # 8 + 2


def test_a_working_roll_counts_as_filled_or_not_whichever_is_worse():
    # held: 1 condor (4); working: the roll closing it and opening 1 of a May condor (4 more
    # legs). Filled or not, 4 contracts are held; a 2-contract layer makes 6, within the cap.
    g = guard(max_contracts_total=6)
    legs = condor_legs(sign=-1) + condor_legs(expiry=EXP2)
    roll = Intent("c1:roll:1:0", "c1", "roll", legs, 1, 0.0, 0.4, 1)
    s = vsnap(positions=held(condor_legs(), 1))
    assert g.check(layer("event", 1), s, wi(), T0, working=[roll]).approved
    v = g.check(layer("event", 2), s, wi(), T0, working=[roll])
    assert (v.code, v.numbers["after"]) == ("contracts_total", 8)


def test_working_orders_count_against_the_margin_cap():
    # the broker's what-if prices this order alone; a working 50-wide condor x 2 needs
    # 50 x 100 x 2 = 10,000 more
    g = guard(margin_cap_pct=0.5)
    condor = intent(qty=2)
    s = vsnap(nl=200_000.0)
    assert g.check(layer("event"), s, wi(90_000.0), T0, working=[condor]).approved
    v = g.check(layer("event"), s, wi(90_000.01), T0, working=[condor])
    assert (v.code, v.numbers["working_margin"]) == ("margin_cap", 10_000.0)


def test_closes_are_never_blocked_by_size_caps():
    g = guard(max_contracts_per_order=20, max_contracts_total=20, margin_cap_pct=0.01)
    positions = held(condor_legs(), 30)  # 120 contracts, far beyond both caps
    close = intent(condor_legs(sign=-1), qty=30, mid=4.2, natural=4.6, action="close")
    s = snap(positions, cushion=0.0)
    assert g.check(close, s, None, T0, working=[intent(qty=5)]).approved


def test_a_second_close_of_what_a_working_close_takes_adds_exposure():
    g = guard()
    positions = held(condor_legs(), 3)
    close = intent(condor_legs(sign=-1), qty=3, mid=4.2, natural=4.6, action="close")
    again = Intent("c1:close:0:1", "c1", "close", close.legs, 1, 4.2, 4.6)
    assert g.check(close, snap(positions), None, T0).approved
    v = g.check(again, snap(positions), None, T0)  # the same snapshot: the first is working
    assert (v.code, v.numbers["working_orders"]) == ("close_adds_exposure", 1)
    t = T0 + timedelta(seconds=60)
    s = snap(positions, time=t)
    assert g.check(again, s, None, t, working=[(close, 2)]).approved  # 1 of 3 left to close


# --- item 5: max loss at the limit, and again at each price sent -------------------------------
def test_max_loss_is_taken_at_the_dearest_price_by_default():
    # at mid: 15,000 - 1,260 = 13,740; at natural + tolerance (-3.70): 15,000 - 1,110 = 13,890
    g = guard(max_campaign_loss_pct=0.10, margin_cap_pct=1.0, min_cushion=0.0)
    s = snap(nl=138_000.0)  # cap 13,800: passes at mid, not at the dearest price
    v = g.check(intent(), s, wi(1.0), T0)
    assert (v.code, v.numbers["max_loss"], v.numbers["price"]) == ("campaign_max_loss", 13890.0,
                                                                    -3.7)
    assert g.check(intent(), s, wi(1.0), T0, limit=-4.20).approved


def test_each_price_sent_keeps_the_max_loss_within_the_cap():
    g = guard(max_campaign_loss_pct=0.10, margin_cap_pct=1.0, min_cushion=0.0)
    it = intent()
    assert g.check(it, snap(nl=138_000.0), wi(1.0), T0, limit=-4.20).approved
    assert g.check_price(it, -4.20).approved
    assert g.check_price(it, -4.00).approved  # 15,000 - 1,200 = 13,800: at the cap
    v = g.check_modify(it, -3.95, T0)  # 13,815 > 13,800
    assert (v.code, v.numbers) == ("campaign_max_loss", {"max_loss": 13815.0, "limit": 13800.0,
                                                         "price": -3.95})
    # an intent never approved here is priced on its range alone
    assert g.check_price(intent(mid=-4.2, natural=-3.8, qty=1), -3.7).approved


def test_a_roll_is_charged_what_it_pays_beyond_its_mid():
    # the roll's new condor costs its legs' mids (-4.20 x 100); a limit of mid + 0.50 adds 50
    g = guard(max_campaign_loss_pct=0.10, margin_cap_pct=1.0, min_cushion=0.0)
    legs = condor_legs(sign=-1) + condor_legs(expiry=EXP2)
    roll = Intent("c1:roll:1:0", "c1", "roll", legs, 1, 0.0, 0.4, 1)
    s = snap(held(condor_legs(), 1), nl=1_000_000.0)
    v = g.check(roll, s, wi(1.0), T0, limit=0.5)
    assert v.approved and v.numbers["max_loss"] == 5000.0 - 420.0 + 50.0
