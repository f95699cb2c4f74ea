"""Roll funding and the campaign's running-loss cap, on hand-made quotes (DESIGN §1, issue 12).

Two SPX monthlies. The condor held (+P4850 -P4900 -C5100 +C5150, 2 lots) is tested: closing
it costs 10.35 at mid, 11.50 at natural (the walk's last price). The next expiry quotes a
same-size re-centred condor at -6.00 mid / -5.60 natural, and the stepped-up one (wings
x1.5 snap out to 4800/5200, 3 lots) at -10.00 mid / -9.60 natural.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np

from strategies import ledger as lg
from strategies import rolls, tvm
from strategies.params import StrategyParams
from strategies.types import Account, Campaign, Chain, Context, Leg, Snapshot, State, Status

NOW = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
E1, E2 = date(2026, 4, 17), date(2026, 5, 15)
STRIKES = [4800.0, 4850.0, 4875.0, 4900.0, 5100.0, 5125.0, 5150.0, 5200.0]
# (strike, right): (bid, ask, delta)
HELD = {(4850.0, "P"): (20.0, 21.0, -0.35), (4900.0, "P"): (30.0, 31.0, -0.45),
        (5100.0, "C"): (0.5, 0.7, 0.03), (5150.0, "C"): (0.2, 0.3, 0.01)}
NEXT = {(4800.0, "P"): (3.0, 3.2, -0.05), (4850.0, "P"): (5.0, 5.2, -0.08),
        (4875.0, "P"): (6.0, 6.2, -0.12), (4900.0, "P"): (8.0, 8.2, -0.16),
        (5100.0, "C"): (7.0, 7.2, 0.16), (5125.0, "C"): (5.5, 5.7, 0.12),
        (5150.0, "C"): (4.0, 4.2, 0.08), (5200.0, "C"): (2.0, 2.2, 0.05)}


def chain(exp: date, quotes: dict[tuple[float, str], tuple[float, float, float]]) -> Chain:
    ks = np.array(STRIKES)
    nan = np.full(len(ks), np.nan)

    def col(right: str, i: int) -> np.ndarray:
        return np.array([quotes.get((k, right), (np.nan,) * 3)[i] for k in STRIKES])

    return Chain("SPX", "SPX", exp, (exp - NOW.date()).days / 365, ks,
                 col("C", 0), col("C", 1), col("P", 0), col("P", 1), col("C", 2), col("P", 2),
                 nan, nan, nan, nan)


def snap(net_liq: float = 1_000_000.0) -> Snapshot:
    return Snapshot(time=NOW, spx=4920.0, vix=30.0,
                    chains={E1: chain(E1, HELD), E2: chain(E2, NEXT)},
                    account=Account(net_liquidation=net_liq), minutes_since_open=60.0)


HELD_LEGS = tuple(Leg(chain(E1, HELD).contract(k, r), q)
                  for k, r, q in ((4850.0, "P", 1), (4900.0, "P", -1), (5100.0, "C", -1),
                                  (5150.0, "C", 1)))


def plan(funding: str, fund: float, carried: float = 0.0, **kw: object):
    p = StrategyParams(roll_funding=funding, **kw)
    return rolls.plan(HELD_LEGS, 2, 50.0, fund, snap(), p, Context(), carried=carried)


def test_a_size_up_without_hedge_gains_is_unfunded_under_hedges() -> None:
    got, numbers = plan("hedges", fund=0.0)
    assert got is None and numbers["why"] == "unfunded"
    # close at natural 11.50 x 2 x 100 = 2300; same-size credit at natural 5.60 x 2 x 100 = 1120
    assert numbers["close_cost_limit"] == 2300.0
    assert numbers["same_size_credit"] == 1120.0
    assert numbers["net_debit"] == 1180.0 and numbers["fund_available"] == 0.0


def test_the_same_size_up_is_funded_under_any() -> None:
    got, numbers = plan("any", fund=0.0)
    # new credit 10.00 x 3 x 100 = 3000 >= close cost at mid 10.35 x 2 x 100 = 2070
    assert got is not None and got.qty == 3 and numbers["funded"] is True
    assert numbers["new_credit"] == 3000.0 and numbers["close_cost"] == 2070.0


def test_hedge_gains_and_carried_remainders_fund_the_roll_to_the_dollar() -> None:
    got, numbers = plan("hedges", fund=700.0, carried=480.0)  # 1180 available: just enough
    assert got is not None and got.qty == 3 and numbers["net_debit"] == 1180.0
    got, numbers = plan("hedges", fund=700.0, carried=479.0)
    assert got is None and numbers["why"] == "unfunded"
    got, _ = plan("hedges", fund=1500.0, carried=-5000.0)  # a negative carry is not drawn
    assert got is not None


def _open_state(fund: float) -> State:
    camp = Campaign(id="C0001-20260302", legs=HELD_LEGS, qty=2, credit=6.0, wing_width=50.0,
                    entry_vix=20.0, realized=1200.0, premium=1200.0)
    led, _ = lg.credit(lg.Ledger(), camp.id, fund, "hedge")
    return State(status=Status.OPEN, seq=1, campaign=camp, ledger=led)


def test_the_running_loss_cap_stops_the_campaign() -> None:
    # loss so far: close at 2300 against 1200 received = 1100; the only candidate that could
    # fit, the same-size step, can lose (50 - 5.60) x 2 x 100 = 8880: 9980 > 10% of 90,000
    p = StrategyParams(roll_policy="shrink")
    ctx = Context(max_campaign_loss_pct=0.10)
    state = _open_state(fund=5000.0)
    d = tvm.decide(state, snap(net_liq=90_000.0), p, ctx)
    skipped = dict(d.events)["roll.skipped"]
    assert skipped["why"] == "campaign_loss_cap" and skipped["fits_cap"] is False
    assert skipped["realized_loss"] == 1100.0 and skipped["new_max_loss"] == 8880.0
    assert skipped["loss_cap"] == 9000.0
    (close,) = d.intents
    assert close.action == "close" and close.reason["trigger"] == "campaign_loss_cap"
    done = tvm.on_order_done(d.state, close, close.qty, 11.5, 0.0, NOW, p.cooldown_days)
    stopped = dict(done.events)["campaign.stopped"]
    assert stopped["why"] == "campaign_loss_cap" and done.state.status is Status.COOLDOWN
    # with room for it (net liq 100,000: cap 10,000 >= 9980) the same-size step is taken
    d = tvm.decide(state, snap(net_liq=100_000.0), p, ctx)
    step = dict(d.events)["roll.step"]
    assert step["new_qty"] == 2 and step["shrunk"] is True and step["running_loss"] == 9980.0


def test_a_funded_roll_draws_its_net_debit_and_not_the_size_up_credit() -> None:
    p = StrategyParams()
    state = _open_state(fund=2000.0)
    d = tvm.decide(state, snap(), p, Context())
    (roll,) = d.intents
    assert roll.action == "roll" and roll.reason["net_debit"] == 1180.0
    # the combo fills at its natural: the close (+11.50 x 2) and the new 3 lots (-9.60 x 3)
    done = tvm.on_order_done(d.state, roll, 1, (11.5 * 2 - 9.6 * 3), 0.0, NOW, p.cooldown_days)
    assert done.state.ledger.fund(state.campaign.id) == 2000.0 - 1180.0
    assert done.state.ledger.drawn == 1180.0
    assert done.state.campaign is not None and done.state.campaign.qty == 3


def test_close_then_open_roll_draws_the_net_debit_once() -> None:
    p = StrategyParams()
    state = _open_state(fund=2000.0)
    cid = state.campaign.id if state.campaign else ""
    d = tvm.decide(state, snap(), p, Context(combo_roll=False))
    (close,) = d.intents
    assert close.action == "roll_close"
    done = tvm.on_order_done(d.state, close, close.qty, 11.5, 0.0, NOW, p.cooldown_days)
    assert done.state.ledger.fund(cid) == 2000.0 - 1180.0
    d = tvm.decide(done.state, snap(), p, Context(combo_roll=False))
    (open_,) = d.intents
    assert open_.action == "roll_open" and open_.qty == 3
    done = tvm.on_order_done(d.state, open_, open_.qty, -9.6, 0.0, NOW, p.cooldown_days)
    assert done.state.ledger.fund(cid) == 2000.0 - 1180.0  # the size-up credit is not funding
    assert done.state.ledger.drawn == 1180.0 and done.state.status is Status.OPEN
