"""The tail layer is held into a volatility spike (issue 12): no fixed +50% take-profit on the
first wiggle; it is taken off on the VIX level or a trailing stop, and re-armed after a
take-profit while its warning still stands."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date

from strategies import tvm
from strategies.condor import reverse
from strategies.events import EventCalendar
from strategies.layers import combo
from strategies.params import HedgeParams
from strategies.types import Snapshot, State
from tests import synth
from tests.test_alvh import FLAT, ONLY, P, _divergent_history, entered, fold_all

H = HedgeParams(**ONLY["tail"])


def _with_tail(h: HedgeParams) -> tuple[State, tvm.Context]:
    closes, ad = _divergent_history()
    ctx = tvm.Context(hedge=h, calendar=EventCalendar(base=False))
    state = entered(ctx, history=FLAT)
    snap = synth.snapshot(synth.at(date(2026, 3, 3)), 6010.0, 15.0)
    snap = Snapshot(**{**snap.__dict__, "bars": synth.bars(date(2026, 3, 2), closes, ad)})
    d = tvm.decide(state, snap, P, ctx)
    state, _ = fold_all(d.state, d, snap)
    assert [layer.name for layer in state.hedges] == ["tail"]
    return state, ctx


def _value(state: State, snap: Snapshot) -> float:
    layer = state.hedges[0]
    mid, _ = combo(snap, reverse(layer.legs))
    return -mid * layer.qty * layer.legs[0].contract.multiplier


def _closes(d: tvm.Decision) -> list[str]:
    return [str(i.reason.get("trigger")) for i in d.intents if i.action == "hedge_close"]


def test_a_first_fifty_percent_wiggle_does_not_take_the_tail_layer_off() -> None:
    state, ctx = _with_tail(H)
    cost = state.hedges[0].cost
    wiggle = synth.snapshot(synth.at(date(2026, 3, 4)), 5900.0, 21.0, history=FLAT)
    assert _value(state, wiggle) >= cost * (1 + H.take_profit_pct)  # the premise: +50% and more
    assert wiggle.vix < H.tail_take_profit_vix
    d = tvm.decide(state, wiggle, P, ctx)
    assert _closes(d) == []
    # the spike arrives in full: taken off on the VIX level, at a gain
    spike = synth.snapshot(synth.at(date(2026, 3, 5)), 5300.0, 45.0, history=FLAT)
    d2 = tvm.decide(d.state, spike, P, ctx)
    assert _closes(d2) == ["vix_level"]
    _, events = fold_all(d2.state, d2, spike)
    assert dict(events)["hedge.monetized"]["pnl"] > 0


def test_the_fixed_rule_still_fires_on_the_wiggle() -> None:
    state, ctx = _with_tail(HedgeParams(**ONLY["tail"], tail_exit="fixed"))
    wiggle = synth.snapshot(synth.at(date(2026, 3, 4)), 5900.0, 21.0, history=FLAT)
    assert _closes(tvm.decide(state, wiggle, P, ctx)) == ["take_profit"]


def test_trailing_stop_after_the_peak() -> None:
    state, ctx = _with_tail(H)
    cost = state.hedges[0].cost
    up = synth.snapshot(synth.at(date(2026, 3, 4)), 5600.0, 30.0, history=FLAT)
    peak = _value(state, up)
    assert peak >= cost * (1 + H.tail_trail_arm_pct)  # armed
    d = tvm.decide(state, up, P, ctx)
    assert _closes(d) == [] and math.isclose(d.state.hedges[0].peak, peak)
    back = synth.snapshot(synth.at(date(2026, 3, 5)), 5950.0, 16.0, history=FLAT)
    assert _value(d.state, back) <= peak * (1 - H.tail_trail_pct)  # gave back 35% of the peak
    assert _closes(tvm.decide(d.state, back, P, ctx)) == ["trailing_stop"]


def test_rearmed_after_a_take_profit_while_the_warning_holds() -> None:
    # the condor is never tested here (no VIX-jump or delta roll): only the layer is watched
    p = P.model_copy(update={"vix_jump_pct": 5.0, "roll_delta": 0.9, "roll_delta_hard": 0.95})
    state, ctx = _with_tail(H)
    spike = synth.snapshot(synth.at(date(2026, 3, 4)), 6000.0, 45.0, history=FLAT)
    d = tvm.decide(state, spike, p, ctx)
    state, _ = fold_all(d.state, d, spike)
    assert not state.hedges and state.status is tvm.Status.OPEN
    # VIX eases below the take-profit level; RSI(14) of a falling tape stays under rsi_low
    falling = [6600.0 - 5 * i for i in range(120)]
    calmer = synth.snapshot(synth.at(date(2026, 3, 5)), 6000.0, 32.0, history=falling)
    d = tvm.decide(state, calmer, p, ctx)
    opened = [i for i in d.intents if i.action == "hedge_open" and i.layer == "tail"]
    assert opened and opened[0].key.split(":")[3] == "rearm"
    # once: the re-arm is used up until the next take-profit
    state, _ = fold_all(d.state, d, calmer)
    assert not [t for t in state.hedged if t.startswith("tail_rearm:")]


def test_a_stopped_campaigns_tail_layer_is_held_into_the_spike() -> None:
    state, ctx = _with_tail(H)
    camp = state.campaign
    assert camp is not None
    stopped = replace(state, status=tvm.Status.COOLDOWN,
                      campaign=replace(camp, legs=(), qty=0, stop_reason="unfunded_roll"),
                      cooldown_until=synth.at(date(2026, 3, 5)))
    wiggle = synth.snapshot(synth.at(date(2026, 3, 6)), 5900.0, 21.0, history=FLAT)
    d = tvm.decide(stopped, wiggle, P, ctx)
    assert _closes(d) == [] and d.state.status is tvm.Status.COOLDOWN  # not "campaign_ended"
    spike = synth.snapshot(synth.at(date(2026, 3, 9)), 5300.0, 45.0, history=FLAT)
    d = tvm.decide(d.state, spike, P, ctx)
    assert _closes(d) == ["vix_level"]
    state, events = fold_all(d.state, d, spike)
    d = tvm.decide(state, spike, P, ctx)  # the layer is gone: the campaign finishes
    assert d.state.status is tvm.Status.IDLE and "ledger.carried" in [n for n, _ in d.events]
