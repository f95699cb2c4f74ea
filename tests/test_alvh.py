"""The hedge layers on synthetic markets: when they open, when they close, what they book."""

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest

from strategies import signals, tvm
from strategies.events import EventCalendar
from strategies.params import HedgeParams, StrategyParams
from strategies.types import Contract, Leg
from tests import synth

P = StrategyParams()
ONLY = {"event": dict(event_layer=True, fomc_layer=False, tail_layer=False),
        "fomc": dict(event_layer=False, fomc_layer=True, tail_layer=False),
        "tail": dict(event_layer=False, fomc_layer=False, tail_layer=True)}
FLAT = np.full(120, 6000.0)  # no RSI or divergence signal


def fold_all(state, d, snap, price=None):
    """Fill every intent of a decision at its mid (or `price(intent)`)."""
    events = list(d.events)
    for intent in d.intents:
        px = intent.mid if price is None else price(intent)
        out = tvm.on_order_done(state, intent, intent.qty, px, 0.0, snap.time, P.cooldown_days)
        state = out.state
        events += out.events
    return state, events


def entered(ctx, day=date(2026, 3, 2), history=FLAT):
    snap = synth.snapshot(synth.at(day), 6000.0, 15.0, history=history)
    d = tvm.decide(tvm.State(), snap, P, ctx)
    state, events = fold_all(d.state, d, snap)
    assert state.status is tvm.Status.OPEN, events
    return state


def names(events):
    return [n for n, _ in events]


def test_cpi_layer_opens_before_the_release_and_closes_after():
    release = date(2026, 3, 11)
    cal = EventCalendar([{"date": release.isoformat(), "kind": "CPI"}], base=False)
    ctx = tvm.Context(hedge=HedgeParams(**ONLY["event"]), calendar=cal)
    state = entered(ctx)
    opened_at = closed_at = None
    day = date(2026, 3, 3)
    while day <= release + timedelta(days=3):
        for hour in (10, 12, 15):
            snap = synth.snapshot(synth.at(day, hour), 6000.0, 15.0, history=FLAT)
            d = tvm.decide(state, snap, P, ctx)
            state, events = fold_all(d.state, d, snap)
            if "hedge.opened" in names(events):
                opened_at = snap.time
                assert dict(events)["hedge.opened"]["layer"] == "event"
            if "hedge.closed" in names(events) or "hedge.monetized" in names(events):
                closed_at = snap.time
        day += timedelta(days=1)
    when = cal.next_event("CPI", synth.at(date(2026, 3, 1))).when
    assert opened_at is not None and closed_at is not None
    assert when - timedelta(days=HedgeParams().event_lead_days) <= opened_at < when < closed_at
    assert not state.hedges


def _divergent_history():
    # SPX makes a fresh 20-day high on the last bar; the A/D line is falling: no confirmation
    closes = np.concatenate([np.linspace(5800, 5950, 100), np.linspace(5940, 6010, 20)])
    ad = np.concatenate([np.linspace(0, 5000, 100), np.linspace(5000, 3000, 20)])
    return closes, ad


def test_ad_divergence_opens_the_tail_layer():
    closes, ad = _divergent_history()
    b = synth.bars(date(2026, 3, 2), closes, ad)
    assert signals.ad_divergence(b["close"], b["ad_line"], 20).iloc[-1] < 0  # the premise
    ctx = tvm.Context(hedge=HedgeParams(**ONLY["tail"]), calendar=EventCalendar(base=False))
    state = entered(ctx, history=FLAT)
    snap = synth.snapshot(synth.at(date(2026, 3, 3)), 6010.0, 15.0, history=closes)
    snap = type(snap)(**{**snap.__dict__, "bars": synth.bars(date(2026, 3, 2), closes, ad)})
    d = tvm.decide(state, snap, P, ctx)
    state, events = fold_all(d.state, d, snap)
    opened = [f for n, f in events if n == "hedge.opened"]
    assert opened and opened[0]["layer"] == "tail" and opened[0]["tag"].startswith("ad_divergence")


def test_vix_spike_monetizes_and_credits_the_fund_by_exactly_the_gain():
    closes, ad = _divergent_history()
    ctx = tvm.Context(hedge=HedgeParams(**ONLY["tail"], tail_exit="fixed"),
                      calendar=EventCalendar(base=False))
    state = entered(ctx, history=FLAT)
    snap = synth.snapshot(synth.at(date(2026, 3, 3)), 6010.0, 15.0)
    snap = type(snap)(**{**snap.__dict__, "bars": synth.bars(date(2026, 3, 2), closes, ad)})
    d = tvm.decide(state, snap, P, ctx)
    state, _ = fold_all(d.state, d, snap)
    layer = state.hedges[0]
    open_price = next(i.mid for i in d.intents if i.layer == "tail")
    cid = state.campaign.id
    fund_before = state.ledger.fund(cid)
    # VIX doubles the next day: above entry x (1 + tail_take_profit_pct)
    spike = synth.snapshot(synth.at(date(2026, 3, 4)), 5800.0, 30.0, history=FLAT)
    d = tvm.decide(state, spike, P, ctx)
    hedge_close = [i for i in d.intents if i.action == "hedge_close"]
    assert hedge_close and hedge_close[0].reason["trigger"] == "vix_spike"
    state, events = fold_all(d.state, d, spike)
    close_price = hedge_close[0].mid
    mult = layer.legs[0].contract.multiplier
    expected = (-close_price - open_price) * layer.qty * mult  # proceeds - cost, no commission
    monetized = dict(events)["hedge.monetized"]
    assert monetized["pnl"] == pytest.approx(expected, abs=0.01)
    hedge_credit = [f for n, f in events if n == "ledger.credited" and f["source"] == "hedge"]
    assert hedge_credit[0]["amount"] == pytest.approx(expected, abs=0.01)
    # the fund moved by the hedge gain plus whatever the same tick's roll booked, separately
    roll_cash = sum(f["amount"] * (1 if n == "ledger.credited" else -1) for n, f in events
                    if n in ("ledger.credited", "ledger.debited") and f["source"] == "roll")
    assert state.ledger.fund(cid) - fund_before == pytest.approx(expected + roll_cash, abs=0.02)
    assert state.ledger.pnl("tail") == pytest.approx(expected, abs=1e-6)


def test_a_switched_off_layer_never_opens():
    closes, ad = _divergent_history()
    ctx = tvm.Context(hedge=HedgeParams(event_layer=False, fomc_layer=False, tail_layer=False),
                      calendar=EventCalendar())
    state = entered(ctx)
    snap = synth.snapshot(synth.at(date(2026, 3, 3)), 6010.0, 15.0)
    snap = type(snap)(**{**snap.__dict__, "bars": synth.bars(date(2026, 3, 2), closes, ad)})
    d = tvm.decide(state, snap, P, ctx)
    assert not [i for i in d.intents if i.layer]


def _with_layer(state, snap, name, legs, qty=2, cost=300.0):
    from strategies.alvh import Layer

    layer = Layer(name, state.campaign.id, f"{name}:test", "open", legs, qty, cost,
                  entry_vix=snap.vix, opened_at=snap.time)
    return replace(state, hedges=(layer,))


def test_an_expired_layer_leaves_the_state_booked_at_intrinsic():
    ctx = tvm.Context(hedge=HedgeParams(**ONLY["tail"]), calendar=EventCalendar(base=False))
    state = entered(ctx)
    snap = synth.snapshot(synth.at(date(2026, 3, 3)), 6000.0, 22.0, history=FLAT)
    old = date(2026, 2, 18)  # a VIX expiry already past
    c_long = Contract("VIX", "OPT", old, 17.0, "C", "VIX")
    c_short = Contract("VIX", "OPT", old, 27.0, "C", "VIX")
    state = _with_layer(state, snap, "tail", (Leg(c_long, +1), Leg(c_short, -1)))
    d = tvm.decide(state, snap, P, ctx)
    assert not [layer for layer in d.state.hedges if layer.tag == "tail:test"]
    expired = dict(d.events)["hedge.expired"]
    value = (22.0 - 17.0) * 100 * 2  # long 17C in the money, short 27C worthless, x2
    assert expired["value"] == pytest.approx(value) and expired["pnl"] == pytest.approx(value - 300)
    assert d.state.ledger.pnl("tail") == pytest.approx(value - 300)


def test_a_layer_never_takes_the_opposite_side_of_a_contract_another_layer_holds():
    from strategies.alvh import build

    closes, ad = _divergent_history()
    ctx = tvm.Context(hedge=HedgeParams(**ONLY["tail"]), calendar=EventCalendar(base=False))
    state = entered(ctx)
    snap = synth.snapshot(synth.at(date(2026, 3, 3)), 6010.0, 15.0)
    snap = type(snap)(**{**snap.__dict__, "bars": synth.bars(date(2026, 3, 2), closes, ad)})
    legs, _ = build("tail", snap)  # what the tail layer would buy: long legs[0]
    short_it = (Leg(legs[0].contract, -1), Leg(legs[1].contract, +1))
    state = _with_layer(state, snap, "event", short_it)  # another layer is short that call
    d = tvm.decide(state, snap, P, ctx)
    assert not [i for i in d.intents if i.layer == "tail"]
    assert dict(d.events)["hedge.skipped"]["why"] == "leg_conflict"
