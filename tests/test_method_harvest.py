"""Harvest for a roll, on hand-made quotes (issue 12): an unfunded roll under
`roll_funding: hedges` first realizes just enough of the hedge layers' unrealized gains.

The condor and its roll are test_method_funding's: the roll's net debit at the current size
and wings is 1180 (close 2300 at its limit, same-size credit 1120). The campaign holds a tail
layer: 5 VIX 20/30 call spreads bought for 1000 in all (200 each). VIX calls quote 20C
12.00/12.40, 30C 5.00/5.40: closing one spread fetches 6.60 at natural (the walk's last limit),
$660, a gain of 460 a contract, 2300 on the five.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np

from strategies import harvest, tvm
from strategies.harvest import Candidate, choose
from strategies.params import HedgeParams, StrategyParams
from strategies.types import Chain, Context, Layer, Leg, Snapshot, State, Status
from tests.test_method_funding import NOW, _open_state, snap

VE = date(2026, 4, 15)
P = StrategyParams()


def vix_chain(c20: tuple[float, float] = (12.0, 12.4),
              c30: tuple[float, float] = (5.0, 5.4)) -> Chain:
    ks = np.array([20.0, 30.0])
    nan = np.full(2, np.nan)
    return Chain("VIX", "VIX", VE, (VE - NOW.date()).days / 365, ks,
                 np.array([c20[0], c30[0]]), np.array([c20[1], c30[1]]), nan, nan,
                 np.array([0.7, 0.4]), nan, nan, nan, nan, nan)


def market(**quotes: tuple[float, float]) -> Snapshot:
    return replace(snap(), vix_chains={VE: vix_chain(**quotes)}, vix_futures={VE: 30.0})


def with_tail(fund: float = 0.0, qty: int = 5, cost: float = 1000.0) -> State:
    state = _open_state(fund=fund)
    ch = vix_chain()
    legs = (Leg(ch.contract(20.0, "C"), +1), Leg(ch.contract(30.0, "C"), -1))
    assert state.campaign is not None
    # peak: the 5 spreads were marked at 3300 (6.60 each) at best so far
    layer = Layer("tail", state.campaign.id, "rsi_high:2026-02-27", "open", legs, qty, cost,
                  entry_vix=20.0, peak=3300.0 * qty / 5, attempts=1)
    return replace(state, hedges=(layer,))


def ctx(harvest_for_rolls: bool = True) -> Context:
    only_tail = HedgeParams(event_layer=False, fomc_layer=False,
                            harvest_for_rolls=harvest_for_rolls)
    return Context(hedge=only_tail)


def test_an_unfunded_roll_harvests_the_fewest_contracts_and_does_not_roll_yet() -> None:
    state = with_tail()
    d = tvm.decide(state, market(), P, ctx())
    assert [i.action for i in d.intents] == ["hedge_close"]  # no roll, no condor close
    (close,) = d.intents
    # shortfall 1180 at 460 a contract: 3 contracts (1380); 2 would realize only 920
    assert close.qty == 3 and close.layer == "tail" and close.reason["trigger"] == "roll_harvest"
    ev = dict(d.events)["roll.harvest"]
    assert ev["net_debit"] == 1180.0 and ev["fund_available"] == 0.0
    assert ev["layers"] == [{"layer": "tail", "qty": 5, "close_limit": -6.6, "unit_gain": 460.0,
                             "unrealized_gain": 2300.0}]
    assert ev["closed"] == [{"layer": "tail", "contracts": 3, "of": 5, "expected_gain": 1380.0}]
    assert d.state.status is Status.OPEN and d.state.pending is None
    # while the close is working, the roll waits for it (and nothing is harvested twice)
    again = tvm.decide(d.state, market(), P, ctx())
    assert again.intents == ()
    assert dict(again.events)["roll.waiting"]["why"] == "hedge_close_pending"


def test_after_the_harvest_fills_the_roll_is_funded_and_draws_exactly_its_debit() -> None:
    state = with_tail()
    cid = state.campaign.id if state.campaign else ""
    d = tvm.decide(state, market(), P, ctx())
    (close,) = d.intents
    # filled at 6.80, between mid 7.00 and natural 6.60: 3 x 680 - 3 x 200 = 1440 realized,
    # credited to the fund
    done = tvm.on_order_done(d.state, close, 3, -6.8, 0.0, NOW, P.cooldown_days)
    assert round(done.state.ledger.fund(cid), 6) == 1440.0
    (left,) = done.state.hedges
    assert left.qty == 2 and left.cost == 400.0 and left.status == "open"  # held on
    assert left.peak == 3300.0 * 2 / 5  # its trailing stop reads the 2 left, not all 5
    d = tvm.decide(done.state, market(), P, ctx())
    (roll,) = d.intents
    assert roll.action == "roll" and roll.reason["net_debit"] == 1180.0
    assert roll.reason["fund_available"] == 1440.0  # rounded to cents in the log
    done = tvm.on_order_done(d.state, roll, 1, (11.5 * 2 - 9.6 * 3), 0.0, NOW, P.cooldown_days)
    assert done.state.ledger.drawn == 1180.0
    assert round(done.state.ledger.fund(cid), 6) == 1440.0 - 1180.0


def test_not_enough_unrealized_gain_stops_the_campaign() -> None:
    # 30C at 8.00/8.40: a spread fetches 12.00 - 8.40 = 3.60, a gain of 160; 5 x 160 = 800 < 1180
    d = tvm.decide(with_tail(), market(c30=(8.0, 8.4)), P, ctx())
    skipped = dict(d.events)["roll.skipped"]
    assert skipped["why"] == "unfunded_roll" and skipped["harvest"] == "not_enough_gain"
    assert skipped["unrealized_gain"] == 800.0 and skipped["shortfall"] == 1180.0
    assert [i.action for i in d.intents if not i.layer] == ["close"]
    assert not [i for i in d.intents if i.reason.get("trigger") == "roll_harvest"]
    assert d.intents[0].reason["trigger"] == "unfunded_roll"


def test_a_layer_whose_closes_keep_failing_is_not_harvested_forever() -> None:
    state = with_tail()
    for _ in range(5):  # the harvest close comes back unfilled, and is sent again
        d = tvm.decide(state, market(), P, ctx())
        (close,) = d.intents
        assert close.reason["trigger"] == "roll_harvest"
        state = tvm.on_order_done(d.state, close, 0, 0.0, 0.0, NOW, P.cooldown_days).state
    d = tvm.decide(state, market(), P, ctx())  # 1 opening + 5 closes: no more
    assert dict(d.events)["roll.skipped"]["harvest"] == "not_enough_gain"
    assert [i.action for i in d.intents] == ["close"]


def test_no_harvest_when_the_funded_roll_would_break_the_loss_cap() -> None:
    # the same-size step can lose 9980 (test_method_funding): over 10% of 90,000
    c = replace(ctx(), max_campaign_loss_pct=0.10)
    s = replace(market(), account=replace(snap().account, net_liquidation=90_000.0))
    d = tvm.decide(with_tail(), s, P, c)
    skipped = dict(d.events)["roll.skipped"]
    assert skipped["why"] == "campaign_loss_cap"
    assert [i.action for i in d.intents] == ["close"]


def test_harvest_off_keeps_todays_behaviour() -> None:
    d = tvm.decide(with_tail(), market(), P, ctx(harvest_for_rolls=False))
    skipped = dict(d.events)["roll.skipped"]
    assert skipped["why"] == "unfunded_roll" and "harvest" not in skipped
    assert [i.action for i in d.intents] == ["close"]


def cand(name: str, unit: float, qty: int, i: int = 0) -> Candidate:
    return Candidate(i, name, qty, unit, -1.0, -1.0, -1.0)


def test_the_layer_covering_with_fewest_contracts_goes_first_and_the_tail_last() -> None:
    event, fomc, tail = cand("event", 100.0, 20), cand("fomc", 300.0, 5), cand("tail", 460.0, 5)
    picks, got = choose([tail, event, fomc], 1180.0)
    assert [(c.name, n) for c, n in picks] == [("fomc", 4)] and got == 1200.0
    # no single non-tail layer covers 1180: fomc whole (600), event whole (500), 1 tail (460)
    picks, got = choose([tail, cand("event", 100.0, 5), cand("fomc", 300.0, 2)], 1180.0)
    assert [(c.name, n) for c, n in picks] == [("fomc", 2), ("event", 5), ("tail", 1)]
    assert got == 1560.0
    # a losing layer is never closed for the roll, and all the gains together must cover it
    assert choose([cand("event", -50.0, 10), cand("tail", 100.0, 11)], 1180.0) == ([], 0.0)


def test_shortfall_reads_only_an_unfunded_hedges_roll() -> None:
    assert harvest.shortfall({"why": "unfunded", "funded": False, "net_debit": 1180.0,
                              "fund_available": 300.0}) == 880.0
    assert harvest.shortfall({"why": "campaign_loss_cap", "funded": True}) is None
    assert harvest.shortfall({"why": "wing_not_listed"}) is None
