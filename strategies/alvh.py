"""ALVH: the Adaptive Layered VIX Hedge, three layers bought for a campaign (pure).

- Layer "event": VIX call diagonal (long next-month call near the second future, short
  front-month call at a higher strike), opened `event_lead_days` before a CPI or PPI release,
  closed once the release has passed or at its profit target.
- Layer "fomc": SPX at-the-money call calendar (short front monthly, long the next), opened
  `event_lead_days` before an FOMC decision, closed the session after it.
- Layer "tail": VIX call spread (long near the front future, short 10 points higher), opened
  when RSI(14) crosses above `rsi_high` or below `rsi_low`, or the A/D line fails to confirm
  an SPX `divergence_days` high; monetized when VIX is `tail_take_profit_pct` above its level
  at opening.
Every layer also closes at `take_profit_pct` gain on its cost, near its front expiry, and
when its campaign ends.
An unfunded roll may close whole contracts of a layer early, to realize just enough of its
gain for the roll fund (`strategies.harvest`, `harvest_for_rolls`).

Sizing: the layers together aim at a volatility exposure of `hedge_ratio` x the condor's
|vega| (dollars per vol point, see `strategies.layers`, which builds each layer's legs and
reads its trigger).
Spending is capped by the budget: `hedge_budget_pct` x premium collected in the campaign plus
the carried remainder of earlier campaigns, less the cost of the layers already open.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from strategies import ledger as lg
from strategies.condor import reverse
from strategies.expiry import dte, exchange_date
from strategies.layers import EXIT_DTE, LAYERS, build, combo, tail_holds, triggers, vol_exposure
from strategies.params import HedgeParams, StrategyParams
from strategies.types import Context, Decision, Event, Intent, Layer, Leg, Snapshot, State, Status


def _condor_exposure(state: State, snap: Snapshot) -> float:
    camp = state.campaign
    if camp is None or not camp.legs:
        return 0.0
    return vol_exposure(snap, camp.legs, camp.qty)


def _budget(state: State, h: HedgeParams) -> float:
    camp = state.campaign
    assert camp is not None
    spent = sum(layer.cost for layer in state.hedges if layer.campaign_id == camp.id)
    return h.hedge_budget_pct * camp.premium + max(0.0, state.ledger.carried) - spent

def decide(state: State, snap: Snapshot, p: StrategyParams, ctx: Context) -> Decision:
    h = ctx.hedge
    assert h is not None, "alvh.decide needs hedge settings"
    intents: list[Intent] = []
    kept, events, led = expired(state, snap)
    if len(kept) != len(state.hedges):
        state = replace(state, hedges=tuple(kept), ledger=led)
    hedges = list(state.hedges)
    changed = False  # a layer of `hedges` replaced or added (else the state stays as it is)
    hedged = state.hedged
    camp = state.campaign
    live = (camp is not None and not ctx.flatten
            and state.status in (Status.OPEN, Status.ROLLING, Status.CLOSING))
    if not snap.market_open:
        return Decision(state, events=tuple(events))
    for i, layer in enumerate(hedges):
        if layer.status != "open" or layer.pending is not None:
            continue
        value = _value(layer, snap)
        if math.isfinite(value) and value > layer.peak:
            layer = hedges[i] = replace(layer, peak=value)
            changed = True
        # a stopped campaign's tail layer is held on into the spike (its gain is carried)
        held = live or (layer.name == "tail" and h.tail_exit == "trail" and not ctx.flatten
                        and state.status is Status.COOLDOWN)
        why = _exit_reason(layer, snap, h, held, value)
        if why is None:
            continue
        mid, nat = combo(snap, reverse(layer.legs))
        if not math.isfinite(mid):
            events.append(("hedge.deferred", {"layer": layer.name, "why": "bad_quote", **why}))
            continue
        att = layer.attempts + 1
        intent = Intent(key=f"{layer.campaign_id}:hedge:{layer.name}:{layer.tag}:close:{att}",
                        campaign_id=layer.campaign_id, action="hedge_close",
                        legs=reverse(layer.legs), qty=layer.qty, mid=mid, natural=nat,
                        layer=layer.name, reason=why)
        hedges[i] = replace(layer, status="closing", pending=intent, attempts=att)
        changed = True
        intents.append(intent)
        events.append(("hedge.exit_decided", {"campaign": layer.campaign_id, "layer": layer.name,
                                              **why}))
    if live and state.status is Status.OPEN:
        assert camp is not None
        # the layers this campaign has (one of each at most), asked once, not per layer name
        has = {layer.name for layer in hedges if layer.campaign_id == camp.id}
        for name in _enabled(h):
            if name in has:
                continue
            d = _maybe_open(name, state, hedges, snap, h, ctx)
            if d is None:
                continue
            opened, opening, ev = d
            if opened is not None and opening is not None:
                hedges.append(opened)
                has.add(name)
                changed = True
                intents.append(opening)
                if opened.tag.startswith("rearm:"):  # the re-arm is used up
                    hedged = tuple(t for t in hedged if t != _rearm_tag(opened.campaign_id))
                # attempted once: a layer refused or unfilled is not chased tick after tick
                hedged = (hedged + (opened.tag,))[-50:]
            events.append(ev)
    if changed or hedged is not state.hedged:
        state = replace(state, hedges=tuple(hedges), hedged=hedged)  # else: nothing changed
    return Decision(state, tuple(intents), tuple(events))


def _value(layer: Layer, snap: Snapshot) -> float:
    """Dollars the layer would fetch at mid now (NaN without a quote)."""
    mid, _ = combo(snap, reverse(layer.legs))
    return -mid * layer.qty * layer.legs[0].contract.multiplier if math.isfinite(mid) else mid


def _rearm_tag(campaign_id: str) -> str:
    return f"tail_rearm:{campaign_id}"


TAIL_TAKE_PROFITS = ("vix_level", "trailing_stop", "vix_spike", "take_profit")


def _tail_exit(layer: Layer, snap: Snapshot, h: HedgeParams, value: float) -> dict[str, Any] | None:
    """`tail_exit: trail`: hold into the spike; take profit when VIX reaches its level, or on
    a trailing stop once the layer is worth `tail_trail_arm_pct` over cost. `fixed`: the VIX
    rise over the level at opening (then the common take_profit_pct on cost applies)."""
    if h.tail_exit == "fixed":
        if snap.vix >= layer.entry_vix * (1 + h.tail_take_profit_pct):
            return {"trigger": "vix_spike", "vix": round(snap.vix, 2),
                    "threshold": round(layer.entry_vix * (1 + h.tail_take_profit_pct), 2)}
        return None
    if snap.vix >= h.tail_take_profit_vix and value > layer.cost:
        return {"trigger": "vix_level", "vix": round(snap.vix, 2),
                "threshold": h.tail_take_profit_vix, "value": round(value, 2)}
    arm = layer.cost * (1 + h.tail_trail_arm_pct)
    stop = layer.peak * (1 - h.tail_trail_pct)
    if layer.cost > 0 and layer.peak >= arm and math.isfinite(value) and value <= stop:
        return {"trigger": "trailing_stop", "value": round(value, 2), "peak": round(layer.peak, 2),
                "threshold": round(stop, 2), "armed_at": round(arm, 2),
                "cost": round(layer.cost, 2)}
    return None


def _exit_reason(layer: Layer, snap: Snapshot, h: HedgeParams, live: bool,
                 value: float) -> dict[str, Any] | None:
    if not live:
        return {"trigger": "campaign_ended"}
    front = min(leg.contract.expiry for leg in layer.legs)
    if dte(front, snap.time) <= EXIT_DTE:
        return {"trigger": "expiry", "dte": dte(front, snap.time)}
    if layer.name == "tail":
        why = _tail_exit(layer, snap, h, value)
        if why is not None or h.tail_exit == "trail":
            return why  # held into the spike: no fixed take-profit on cost
    if layer.event_date is not None:
        today = exchange_date(snap.time)
        passed = today > layer.event_date if layer.name == "fomc" else today >= layer.event_date
        if passed:
            return {"trigger": "event_passed", "event_date": layer.event_date.isoformat()}
    if math.isfinite(value) and layer.cost > 0:
        if value >= layer.cost * (1 + h.take_profit_pct):
            return {"trigger": "take_profit", "value": round(value, 2),
                    "threshold": round(layer.cost * (1 + h.take_profit_pct), 2)}
    return None


# id(hedge settings) -> (them, the names of the layers they turn on, in LAYERS order); the
# settings are frozen, and the entry holds them, so the id is not reused while it lives
_ENABLED: dict[int, tuple[HedgeParams, tuple[str, ...]]] = {}


def _enabled(h: HedgeParams) -> tuple[str, ...]:
    got = _ENABLED.get(id(h))
    if got is None or got[0] is not h:
        if len(_ENABLED) >= 64:
            _ENABLED.clear()
        got = _ENABLED[id(h)] = (h, tuple(n for n in LAYERS if getattr(h, f"{n}_layer")))
    return got[1]


def _maybe_open(name: str, state: State, hedges: list[Layer], snap: Snapshot, h: HedgeParams,
                ctx: Context) -> tuple[Layer | None, Intent | None, Event] | None:
    """Layer `name` of the campaign (which has none yet), when its trigger says so."""
    camp = state.campaign
    assert camp is not None
    trig = triggers(name, snap, h, ctx.calendar)
    if trig is None and name == "tail" and h.tail_rearm and _rearm_tag(camp.id) in state.hedged:
        trig = tail_holds(snap, h)  # re-arm after a take-profit while the warning stands
    if trig is None:
        return None
    tag, numbers = trig
    if tag in state.hedged:
        return None
    base = {"campaign": camp.id, "layer": name, "tag": tag, **numbers}
    if name == "tail" and h.tail_exit == "trail" and snap.vix >= h.tail_take_profit_vix:
        # the spike is here: a layer bought now is bought at its top and taken off at once
        return None, None, ("hedge.skipped", {**base, "why": "vix_at_take_profit_level",
                                              "vix": round(snap.vix, 2),
                                              "threshold": h.tail_take_profit_vix})
    legs, why = build(name, snap)
    if legs is None:
        return None, None, ("hedge.skipped", {**base, "why": why})
    clash = _opposite_holdings(state, hedges, legs)
    if clash:
        # e.g. one layer short a VIX call another is long: the two closes would net against
        # each other at the broker; never build that
        return None, None, ("hedge.skipped", {**base, "why": "leg_conflict", "contracts": clash})
    target = h.hedge_ratio * abs(_condor_exposure(state, snap))
    held = sum(vol_exposure(snap, layer.legs, layer.qty) for layer in hedges
               if layer.campaign_id == camp.id and layer.legs)
    unit = vol_exposure(snap, legs, 1)
    mid, nat = combo(snap, legs)
    budget = _budget(state, h)
    sizing = {"target_exposure": round(target, 2), "held_exposure": round(held, 2),
              "unit_exposure": round(unit, 2),
              "unit_cost": round(mid * legs[0].contract.multiplier, 2),
              "budget": round(budget, 2)}
    if not (math.isfinite(unit) and math.isfinite(mid)) or unit <= 0 or mid <= 0:
        return None, None, ("hedge.skipped", {**base, **sizing, "why": "bad_quote_or_shape"})
    if not (math.isfinite(target) and math.isfinite(held) and math.isfinite(budget)):
        return None, None, ("hedge.skipped", {**base, **sizing, "why": "exposure_unknown"})
    need = target - held
    if need <= 0:
        return None, None, ("hedge.skipped", {**base, **sizing, "why": "exposure_covered"})
    qty = math.ceil(need / unit)
    afford = math.floor(budget / (nat * legs[0].contract.multiplier)) if nat > 0 else 0
    qty = min(qty, afford, h.max_layer_qty)
    if qty < 1:
        return None, None, ("hedge.skipped", {**base, **sizing, "why": "over_budget"})
    event_date = date.fromisoformat(tag.split(":")[1]) if name != "tail" else None
    intent = Intent(key=f"{camp.id}:hedge:{name}:{tag}:open:1", campaign_id=camp.id,
                    action="hedge_open", legs=legs, qty=qty, mid=mid, natural=nat,
                    step=camp.step, layer=name, reason={**base, **sizing, "qty": qty})
    layer = Layer(name, camp.id, tag, "opening", legs, qty, entry_vix=float(snap.vix),
                  event_date=event_date, pending=intent, attempts=1)
    return layer, intent, ("hedge.decided", {**base, **sizing, "qty": qty})


def _opposite_holdings(state: State, hedges: list[Layer], legs: tuple[Leg, ...]) -> list[str]:
    held: dict[str, int] = {}
    camp = state.campaign
    groups = [(camp.legs, 1)] if camp is not None and camp.legs else []
    groups += [(layer.legs, 1) for layer in hedges]
    for group, _ in groups:
        for leg in group:
            held[leg.contract.key] = held.get(leg.contract.key, 0) + leg.ratio
    return [leg.contract.key for leg in legs
            if held.get(leg.contract.key, 0) * leg.ratio < 0]


def expired(state: State, snap: Snapshot) -> tuple[list[Layer], list[Event], lg.Ledger]:
    """Layers whose front leg has expired (settled at the broker) leave the state, booked at
    intrinsic value against today's index level. Returns (kept, events, ledger)."""
    today = exchange_date(snap.time)
    kept, events, led = [], [], state.ledger
    for layer in state.hedges:
        if layer.pending is not None or not layer.legs or \
                min(leg.contract.expiry for leg in layer.legs) >= today:
            kept.append(layer)
            continue
        value = 0.0
        for leg in layer.legs:
            c = leg.contract
            und = snap.vix if c.symbol == "VIX" else snap.spx
            intrinsic = max(und - c.strike, 0.0) if c.right == "C" else max(c.strike - und, 0.0)
            if c.expiry >= today:  # a later leg still lives: value it at its mid
                chain = (snap.vix_chains if c.symbol == "VIX" else snap.chains).get(c.expiry)
                try:
                    bid, ask = chain.quote(c.strike, c.right) if chain else (math.nan, math.nan)
                except KeyError:
                    bid, ask = math.nan, math.nan
                intrinsic = (bid + ask) / 2 if math.isfinite(bid + ask) else intrinsic
            value += leg.ratio * intrinsic * c.multiplier * layer.qty
        pnl = value - layer.cost
        led, ev = lg.realize_layer(led, layer.campaign_id, layer.name, pnl)
        led = lg.layer_flow(led, layer.name, snap.time, value)
        events += [("hedge.expired", {"campaign": layer.campaign_id, "layer": layer.name,
                                      "value": round(value, 2), "pnl": round(pnl, 2)}), ev]
    return kept, events, led


def on_order_done(state: State, intent: Intent, filled: int, avg_price: float, commission: float,
                  now: datetime | None) -> Decision:
    hedges = list(state.hedges)
    idx = next((i for i, layer in enumerate(hedges)
                if layer.pending is not None and layer.pending.key == intent.key), None)
    if idx is None:
        return Decision(state, events=(("order.unexpected", {"key": intent.key}),))
    layer = hedges[idx]
    mult = intent.legs[0].contract.multiplier
    led = state.ledger
    events: list[Event] = []
    hedged = state.hedged
    if intent.action == "hedge_open":
        if filled == 0:
            del hedges[idx]
            events.append(("hedge.abandoned", {"campaign": layer.campaign_id, "layer": layer.name}))
        else:
            cost = avg_price * filled * mult + commission
            hedges[idx] = replace(layer, status="open", qty=filled, cost=cost, pending=None,
                                  opened_at=now)
            if now is not None:
                led = lg.layer_flow(led, layer.name, now, -cost)
            events.append(("hedge.opened", {"campaign": layer.campaign_id, "layer": layer.name,
                                            "tag": layer.tag, "qty": filled,
                                            "cost": round(cost, 2), **_legs(layer.legs)}))
    else:
        proceeds = -avg_price * filled * mult - commission
        part = layer.cost * filled / layer.qty if layer.qty else 0.0
        pnl = proceeds - part
        if filled:
            led, ev = lg.realize_layer(led, layer.campaign_id, layer.name, pnl)
            if now is not None:
                led = lg.layer_flow(led, layer.name, now, proceeds)
            trigger = intent.reason.get("trigger")
            name = "hedge.monetized" if pnl > 0 else "hedge.closed"
            rearm = _rearm_tag(layer.campaign_id)
            if layer.name == "tail" and pnl > 0 and trigger in TAIL_TAKE_PROFITS and \
                    rearm not in hedged:
                hedged = (hedged + (rearm,))[-50:]
            events.append((name, {"campaign": layer.campaign_id, "layer": layer.name,
                                  "trigger": trigger, "qty": filled,
                                  "proceeds": round(proceeds, 2), "cost": round(part, 2),
                                  "pnl": round(pnl, 2)}))
            events.append(ev)
        left = layer.qty - filled
        if left > 0:
            # the peak (dollars, whole layer) shrinks with it, or the trailing stop would
            # read the contracts left against the peak of all of them and fire at once
            hedges[idx] = replace(layer, status="open", qty=left, cost=layer.cost - part,
                                  peak=layer.peak * left / layer.qty, pending=None)
        else:
            del hedges[idx]
    return Decision(replace(state, hedges=tuple(hedges), ledger=led, hedged=hedged),
                    events=tuple(events))


def _legs(legs: tuple[Leg, ...]) -> dict[str, Any]:
    return {"legs": [f"{'+' if leg.ratio > 0 else '-'}{c.symbol} "
                     f"{c.expiry.isoformat()} {c.strike:g}{c.right}"
                     for leg in legs for c in (leg.contract,)]}


__all__ = ["LAYERS", "Layer", "build", "decide", "on_order_done", "triggers", "vol_exposure"]
