"""Campaign state machine: decide(state, snapshot, params, ctx) -> Decision(state, intents,
events).

Pure: no I/O, no clock reads (time comes from the snapshot), no logging — events are data
that the daemon logs. Order outcomes come back through `on_order_done` (folded in
`strategies.outcomes`). Rolls are planned in `strategies.rolls`, hedge layers in
`strategies.alvh`, money in `strategies.ledger`; an unfunded roll first harvests the layers'
unrealized gains (`strategies.harvest`, with `hedge.harvest_for_rolls`).

| from     | on                                                    | to       | emits              |
|----------|-------------------------------------------------------|----------|--------------------|
| IDLE     | filters pass, condor found                            | ENTERING | open intent        |
| IDLE     | a filter fails                                        | IDLE     | entry.skipped      |
| ENTERING | open filled (any quantity)                            | OPEN     | campaign.entered   |
| ENTERING | open done with nothing filled                         | IDLE     | entry.abandoned    |
| OPEN     | profit >= take_profit_pct of credit / DTE <= exit_dte | CLOSING  | close intent       |
| OPEN     | tested, step < max_steps, timing ok, funded, in cap   | ROLLING  | roll.step + intent |
| OPEN     | tested, waiting for MACD relief                       | OPEN     | roll.waiting       |
| OPEN     | tested, unfunded, layers' gains on paper cover it     | OPEN     | roll.harvest       |
| OPEN     | tested, steps exhausted / unfunded / over loss cap    | CLOSING  | roll.skipped/close |
| ROLLING  | combo roll filled / roll_open filled                  | OPEN     | campaign.rolled    |
| ROLLING  | roll_close filled                                     | ROLLING  | (roll_open next)   |
| ROLLING  | roll not filled                                       | OPEN     | (re-evaluated)     |
| CLOSING  | close filled, normal exit                             | CLOSED   | campaign.closed    |
| CLOSING  | close filled, a stop (see outcomes.STOPS)             | COOLDOWN | campaign.stopped   |
| CLOSING  | close not (fully) filled                              | OPEN     | (retried next)     |
| CLOSED   | hedge layers closed                                   | IDLE     | ledger.carried     |
| COOLDOWN | cooldown_days passed and hedge layers closed          | IDLE     | ledger.carried     |
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from strategies import alvh, harvest, rolls
from strategies import ledger as lg
from strategies.condor import build_condor, combo_prices, pick_expiry, reverse
from strategies.expiry import dte, exchange_date, next_spx_open, spx_option_session
from strategies.outcomes import STOPS, on_order_done, stopped
from strategies.params import StrategyParams
from strategies.types import (
    Campaign,
    Context,
    Decision,
    Event,
    Intent,
    Leg,
    Snapshot,
    State,
    Status,
)

__all__ = ["STOPS", "Campaign", "Context", "Decision", "Event", "State", "Status", "decide",
           "force_close", "on_order_done"]


MAX_ROLL_OPEN_ATTEMPTS = 5

NO_CONTEXT = Context()


def decide(state: State, snap: Snapshot, p: StrategyParams,
           ctx: Context = NO_CONTEXT) -> Decision:
    d = _decide_condor(state, snap, p, ctx)
    if ctx.hedge is not None:
        d = d.then(alvh.decide(d.state, snap, p, ctx))
    return d.then(_maybe_finish(d.state, snap))


def _decide_condor(state: State, snap: Snapshot, p: StrategyParams, ctx: Context) -> Decision:
    if state.pending is not None:
        return Decision(state)  # an order is working; its outcome arrives via on_order_done
    if ctx.flatten:
        return force_close(state, snap, "flatten") if snap.market_open else Decision(state)
    if state.status is Status.COOLDOWN:
        return Decision(state)
    if state.status is Status.CLOSED:
        return Decision(state)
    if state.status is Status.IDLE:
        return _maybe_enter(state, snap, p, ctx)
    if not snap.market_open:
        return Decision(state)
    if state.status is Status.ROLLING:
        return _roll_open(state, snap, p)
    if state.status is Status.OPEN:
        return _manage_open(state, snap, p, ctx)
    return Decision(state)


def _maybe_finish(state: State, snap: Snapshot) -> Decision:
    """CLOSED / COOLDOWN -> IDLE once the campaign's hedge layers are gone (and cooldown over)."""
    if state.status not in (Status.CLOSED, Status.COOLDOWN) or state.hedges:
        return Decision(state)
    until = state.cooldown_until
    if state.status is Status.COOLDOWN and until and snap.time < until:
        return Decision(state)
    events: tuple[Event, ...] = ()
    led = state.ledger
    if state.campaign is not None:
        led, ev = lg.close_campaign(led, state.campaign.id)
        events = (ev,)
    return Decision(replace(state, status=Status.IDLE, campaign=None, cooldown_until=None,
                            ledger=led), events=events)


def _maybe_enter(state: State, snap: Snapshot, p: StrategyParams, ctx: Context) -> Decision:
    def skip(reason: str, **numbers: Any) -> Decision:
        return Decision(state, events=(("entry.skipped", {"reason": reason, **numbers}),))

    if not snap.market_open:
        return Decision(state)
    if snap.minutes_since_open < p.min_open_minutes:
        return skip("market_just_opened", minutes=round(snap.minutes_since_open, 1),
                    threshold=p.min_open_minutes)
    if not (np.isfinite(snap.vix) and p.vix_min <= snap.vix <= p.vix_max):
        return skip("vix_out_of_band", vix=round(float(snap.vix), 2), vix_min=p.vix_min,
                    vix_max=p.vix_max)
    if ctx.calendar is not None and p.entry_blackout_days > 0:
        window = timedelta(days=p.entry_blackout_days)
        if ctx.calendar.in_blackout(snap.time, ("CPI", "FOMC"), window, timedelta(0)):
            return skip("event_blackout", days=p.entry_blackout_days)
    exp = pick_expiry(snap.chains, snap.time, p.dte_min, p.dte_max)
    if exp is None:
        return skip("no_expiry_in_dte_window", dte_min=p.dte_min, dte_max=p.dte_max)
    condor, why = build_condor(snap.chains[exp], p.short_delta, p.short_delta_min,
                               p.short_delta_max, p.wing_width)
    if condor is None:
        return skip(why, expiry=exp.isoformat())
    if -condor.mid < p.min_credit:
        return skip("credit_too_small", credit=round(-condor.mid, 2), threshold=p.min_credit)
    seq = state.seq + 1
    cid = f"C{seq:04d}-{exchange_date(snap.time):%Y%m%d}"
    camp = Campaign(id=cid, wing_width=p.wing_width, entry_vix=float(snap.vix))
    reason = {
        "trigger": "entry", "expiry": exp.isoformat(), "dte": dte(exp, snap.time),
        "short_put_delta": round(condor.short_put_delta, 4),
        "short_call_delta": round(condor.short_call_delta, 4), "target_delta": p.short_delta,
        "vix": round(float(snap.vix), 2), "credit_mid": round(-condor.mid, 2),
    }
    intent = Intent(key=f"{cid}:open:0:0", campaign_id=cid, action="open", legs=condor.legs,
                    qty=p.base_qty, mid=condor.mid, natural=condor.natural, step=0, reason=reason)
    new = replace(state, status=Status.ENTERING, seq=seq, campaign=camp, pending=intent)
    return Decision(new, (intent,), (("entry.decided", {"campaign": cid, **reason}),))


def _manage_open(state: State, snap: Snapshot, p: StrategyParams, ctx: Context) -> Decision:
    camp = state.campaign
    assert camp is not None and camp.legs
    close_legs = reverse(camp.legs)
    mid, natural = combo_prices(snap.chains, close_legs)
    days = dte(camp.legs[0].contract.expiry, snap.time)
    if days < 0:
        return _expired(state, snap, p)
    reason: dict[str, Any] | None = None
    if days <= p.exit_dte:
        reason = {"trigger": "time_exit", "dte": days, "threshold": p.exit_dte}
    elif math.isfinite(mid):
        profit = camp.credit - mid
        target = p.take_profit_pct * camp.credit
        if profit >= target:
            reason = {"trigger": "take_profit", "profit": round(profit, 2),
                      "threshold": round(target, 2), "credit": round(camp.credit, 2),
                      "close_cost": round(mid, 2)}
    if reason is None:
        return _maybe_roll(state, snap, p, ctx)
    if not math.isfinite(mid):
        return Decision(state, events=(("exit.deferred", {"campaign": camp.id, **reason,
                                                          "why": "bad_quote"}),))
    return _close(state, close_legs, mid, natural, reason)


def _maybe_roll(state: State, snap: Snapshot, p: StrategyParams, ctx: Context) -> Decision:
    camp = state.campaign
    assert camp is not None
    test = rolls.evaluate(camp.legs, camp.entry_vix, snap, p)
    if not test.tested:
        if camp.triggered_at is not None:
            return Decision(replace(state, campaign=replace(camp, triggered_at=None)))
        return Decision(state)
    base = {"campaign": camp.id, "step": camp.step, "max_steps": p.max_steps,
            "triggers": list(test.triggers)}
    if camp.step >= p.max_steps:
        return _stop(state, snap, "steps_exhausted", base)
    triggered_at = camp.triggered_at or snap.time
    waited = (snap.time - triggered_at).total_seconds() / 60.0
    timing: dict[str, Any] = {"hard": test.hard, "waited_minutes": round(waited, 1)}
    if not test.hard:
        relief, numbers = rolls.macd_relief(snap, test.side)
        timing.update(numbers)
        if not relief and waited < p.macd_max_wait_minutes:
            camp = replace(camp, triggered_at=triggered_at)
            ev = ("roll.waiting", {**base, **timing, "why": "macd_no_relief",
                                   "max_wait_minutes": p.macd_max_wait_minutes})
            return Decision(replace(state, campaign=camp), events=(ev,))
    fund = state.ledger.fund(camp.id)
    plan, numbers = rolls.plan(camp.legs, camp.qty, camp.wing_width, fund, snap, p, ctx,
                               realized=camp.realized, carried=state.ledger.carried)
    if plan is None:
        got = _harvest_for_roll(state, snap, p, ctx, {**base, **timing, **numbers}, triggered_at)
        if isinstance(got, Decision):
            return got
        numbers = {**numbers, **got}
        why = "campaign_loss_cap" if numbers.get("why") == "campaign_loss_cap" else "unfunded_roll"
        return _stop(state, snap, why, {**base, **timing, **numbers})
    step = camp.step + 1
    reason = {**base, **timing, **numbers, "step": step, "vix": round(float(snap.vix), 2)}
    camp = replace(camp, attempts=camp.attempts + 1, triggered_at=triggered_at)
    if ctx.combo_roll:
        legs, q = rolls.roll_legs(camp.legs, camp.qty, plan.condor.legs, plan.qty)
        rmid, rnat = rolls.per_unit(snap, legs)
        intent = Intent(key=f"{camp.id}:roll:{step}:{camp.attempts}", campaign_id=camp.id,
                        action="roll", legs=legs, qty=q, mid=rmid, natural=rnat, step=step,
                        reason=reason)
        camp = replace(camp, next_qty=plan.qty, next_wing=plan.wing_width)
    else:
        intent = Intent(key=f"{camp.id}:roll_close:{step}:{camp.attempts}", campaign_id=camp.id,
                        action="roll_close", legs=reverse(camp.legs), qty=camp.qty,
                        mid=plan.close_mid, natural=plan.close_natural, step=step, reason=reason)
        camp = replace(camp, next_qty=plan.qty, next_wing=plan.wing_width)
    new = replace(state, status=Status.ROLLING, campaign=camp, pending=intent)
    return Decision(new, (intent,), (("roll.step", reason),))


def _harvest_for_roll(state: State, snap: Snapshot, p: StrategyParams, ctx: Context,
                      numbers: dict[str, Any], triggered_at: Any) -> Decision | dict[str, Any]:
    """An unfunded `hedges` roll with `hedge.harvest_for_rolls`: wait for the layer closes
    that are working, or send the harvest closes (see `strategies.harvest`); the roll is
    re-decided once they have filled. Else the numbers of why not, for the stop."""
    camp = state.campaign
    assert camp is not None
    need = harvest.shortfall(numbers)
    if need is None or ctx.hedge is None or not ctx.hedge.harvest_for_rolls:
        return {}
    waiting = replace(state, campaign=replace(camp, triggered_at=triggered_at))
    busy = harvest.pending(state, camp.id)
    if busy:  # their gains are about to reach the fund
        return Decision(waiting, events=(("roll.waiting", {
            **numbers, "why": "hedge_close_pending", "closing": busy}),))
    # once funded, would the roll be taken (a condor to roll into, within the loss cap)?
    led = state.ledger
    funded, why = rolls.plan(camp.legs, camp.qty, camp.wing_width,
                             led.fund(camp.id) + need + 0.01, snap, p, ctx,
                             realized=camp.realized, carried=led.carried)
    if funded is None:
        return {"why": why.get("why"), "harvest": "roll_not_possible_when_funded",
                "when_funded": why}
    d, more = harvest.harvest(waiting, snap, ctx, need, numbers)
    return d if d is not None else more


def roll_open_target(state: State) -> tuple[date, float] | None:
    """(expiry rolled from, the new condor's wings) while a close-then-open roll waits for
    its open (`_roll_open`'s inputs), else None."""
    camp = state.campaign
    if state.status is not Status.ROLLING or camp is None or camp.legs or not camp.rolled_from:
        return None
    return camp.rolled_from, float(camp.next_wing)


def roll_open_deadline(since: datetime) -> datetime:
    """When a close-then-open roll whose open cannot be built (no next expiry, no strikes in
    the delta band) since `since` stops waiting: the close of the session after that one."""
    nxt = next_spx_open(since + timedelta(seconds=1))
    session = spx_option_session(exchange_date(nxt))
    assert session is not None
    return session[1]


def _roll_open(state: State, snap: Snapshot, p: StrategyParams) -> Decision:
    """Close-then-open roll: the close has filled; open the next condor, re-centred now."""
    camp = state.campaign
    assert camp is not None
    if camp.legs:  # the combo roll (or the close) is still to be resolved
        return Decision(state)
    step = camp.step + 1
    if camp.attempts >= MAX_ROLL_OPEN_ATTEMPTS:
        return stopped(state, snap.time, "roll_open_failed",
                       {"campaign": camp.id, "attempts": camp.attempts}, p.cooldown_days)
    exp = rolls.next_expiry(snap, camp.rolled_from) if camp.rolled_from else None
    condor, why = (None, "no_next_expiry") if exp is None else build_condor(
        snap.chains[exp], p.short_delta, p.short_delta_min, p.short_delta_max, camp.next_wing)
    if condor is None:
        # nothing of the condor is held: wait for a buildable open through the rest of this
        # session and the next whole one, then stop the campaign (its hedges close)
        since = camp.open_wait_since or snap.time
        deadline = roll_open_deadline(since)
        if snap.time >= deadline:
            return stopped(state, snap.time, "roll_open_failed",
                           {"campaign": camp.id, "why": why, "waiting_since": since.isoformat(),
                            "deadline": deadline.isoformat()}, p.cooldown_days)
        if camp.open_wait_since is None:
            state = replace(state, campaign=replace(camp, open_wait_since=since))
        return Decision(state, events=(("roll.waiting", {"campaign": camp.id, "why": why,
                                                          "until": deadline.isoformat()}),))
    camp = replace(camp, attempts=camp.attempts + 1, open_wait_since=None)
    intent = Intent(key=f"{camp.id}:roll_open:{step}:{camp.attempts}", campaign_id=camp.id,
                    action="roll_open", legs=condor.legs, qty=camp.next_qty, mid=condor.mid,
                    natural=condor.natural, step=step,
                    reason={"trigger": "roll_open", "expiry": exp.isoformat() if exp else None,
                            "new_qty": camp.next_qty, "new_wings": camp.next_wing,
                            "vix": round(float(snap.vix), 2), "roll_funding": p.roll_funding})
    return Decision(replace(state, campaign=camp, pending=intent), (intent,))


def _stop(state: State, snap: Snapshot, why: str, numbers: dict[str, Any]) -> Decision:
    camp = state.campaign
    assert camp is not None
    mid, natural = combo_prices(snap.chains, reverse(camp.legs))
    ev = ("roll.skipped", {**numbers, "why": why, "action": "close_campaign"})
    if not np.isfinite(mid):
        return Decision(state, events=(ev, ("exit.deferred", {"campaign": camp.id,
                                                              "why": "bad_quote"})))
    d = _close(state, reverse(camp.legs), mid, natural, {"trigger": why, **numbers})
    return Decision(d.state, d.intents, (ev,) + d.events)


def _close(state: State, legs: tuple[Leg, ...], mid: float, natural: float,
           reason: dict[str, Any]) -> Decision:
    camp = state.campaign
    assert camp is not None
    camp = replace(camp, attempts=camp.attempts + 1)
    intent = Intent(key=f"{camp.id}:close:{camp.step}:{camp.attempts}", campaign_id=camp.id,
                    action="close", legs=legs, qty=camp.qty, mid=mid, natural=natural,
                    step=camp.step, reason=reason)
    new = replace(state, status=Status.CLOSING, campaign=camp, pending=intent)
    return Decision(new, (intent,), (("exit.decided", {"campaign": camp.id, **reason}),))

def _expired(state: State, snap: Snapshot, p: StrategyParams) -> Decision:
    """The condor's expiry passed while held (its closes never filled): the broker has
    cash-settled it; book it at intrinsic value against SPX and stop the campaign."""
    camp = state.campaign
    assert camp is not None
    value = 0.0
    for leg in camp.legs:
        c = leg.contract
        intrinsic = max(snap.spx - c.strike if c.right == "C" else c.strike - snap.spx, 0.0)
        value += leg.ratio * intrinsic * c.multiplier * camp.qty
    camp = replace(camp, realized=camp.realized + value)
    fields = {"campaign": camp.id, "settlement_value": round(value, 2), "spx": round(snap.spx, 2),
              "reason": "expired"}
    d = stopped(replace(state, campaign=camp), snap.time, "expired", fields, p.cooldown_days)
    return Decision(d.state, d.intents, (("campaign.expired", fields),) + d.events)


def force_close(state: State, snap: Snapshot, why: str) -> Decision:
    """Close the open condor now (operator flatten), at whatever the market asks."""
    camp = state.campaign
    if (state.status not in (Status.OPEN, Status.ROLLING) or camp is None or not camp.legs
            or state.pending):
        return Decision(state)
    legs = reverse(camp.legs)
    mid, natural = combo_prices(snap.chains, legs)
    if not np.isfinite(mid):
        return Decision(state, events=(("exit.deferred", {"campaign": camp.id, "trigger": why,
                                                          "why": "bad_quote"}),))
    return _close(state, legs, mid, natural, {"trigger": why})
