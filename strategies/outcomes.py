"""Folding order outcomes into the campaign state (pure): `on_order_done`.

An intent's order is done (filled, or cancelled / partly filled); its fill moves the campaign
along the transitions of `strategies.tvm` (ENTERING -> OPEN, CLOSING -> CLOSED/COOLDOWN,
ROLLING -> OPEN) and books the cash: condor trades into the campaign's realized cash, roll
steps through the ledger. Hedge-layer outcomes go to `strategies.alvh`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from strategies import alvh
from strategies import ledger as lg
from strategies.types import Decision, Event, Intent, Leg, State, Status

STOPS = ("steps_exhausted", "unfunded_roll", "roll_open_failed", "campaign_loss_cap")


def legs_fields(legs: tuple[Leg, ...]) -> dict[str, Any]:
    return {"expiry": legs[0].contract.expiry.isoformat(),
            "strikes": [leg.contract.strike for leg in legs]}

def stopped(state: State, now: datetime, why: str, fields: dict[str, Any],
             cooldown_days: float) -> Decision:
    camp = state.campaign
    assert camp is not None
    until = now + timedelta(days=cooldown_days)
    camp = replace(camp, stop_reason=why, legs=(), qty=0)
    ev = ("campaign.stopped", {**fields, "campaign": camp.id, "why": why, "steps": camp.step,
                               "pnl": round(camp.realized, 2), "cooldown_until": until.isoformat()})
    return Decision(replace(state, status=Status.COOLDOWN, campaign=camp, pending=None,
                            cooldown_until=until), events=(ev,))

def on_order_done(state: State, intent: Intent, filled: int, avg_price: float,
                  commission: float = 0.0, now: datetime | None = None,
                  cooldown_days: float = 5.0) -> Decision:
    """`now` is the time of the outcome; `cooldown_days` applies when the campaign stops."""
    """Fold the outcome of `intent`'s order (done: filled, or cancelled/partly filled)."""
    if intent.layer:
        return alvh.on_order_done(state, intent, filled, avg_price, commission, now)
    if state.pending is None or state.pending.key != intent.key:
        return Decision(state, events=(("order.unexpected", {"key": intent.key}),))
    camp = state.campaign
    assert camp is not None
    mult = intent.legs[0].contract.multiplier
    cash = -avg_price * filled * mult - commission  # dollars received (credit > 0)
    state = replace(state, pending=None)
    a = intent.action
    if a == "open":
        if filled == 0:
            return Decision(replace(state, status=Status.IDLE, campaign=None),
                            events=(("entry.abandoned", {"campaign": camp.id}),))
        camp = replace(camp, legs=intent.legs, qty=filled, credit=-avg_price,
                       realized=camp.realized + cash, entered_at=now,
                       premium=camp.premium + max(0.0, -avg_price) * filled * mult)
        entered = {"campaign": camp.id, **legs_fields(intent.legs), "qty": filled,
                   "credit": round(-avg_price, 2), "step": camp.step}
        return Decision(replace(state, status=Status.OPEN, campaign=camp),
                        events=(("campaign.entered", entered),))
    if a in ("close", "roll_close"):
        realized = camp.realized + cash
        left = camp.qty - filled
        if left > 0:
            camp = replace(camp, qty=left, realized=realized)
            return Decision(replace(state, status=Status.OPEN, campaign=camp),
                            events=(("exit.incomplete", {"campaign": camp.id, "left": left}),))
        if a == "roll_close":
            led, evs = book_roll(state.ledger, camp.id, cash, intent, part="close")
            camp = replace(camp, legs=(), qty=0, realized=realized, attempts=0,
                           rolled_from=camp.legs[0].contract.expiry)
            return Decision(replace(state, status=Status.ROLLING, campaign=camp, ledger=led),
                            events=evs)
        camp = replace(camp, qty=0, legs=(), realized=realized)
        trigger = intent.reason.get("trigger")
        fields = {"campaign": camp.id, "pnl": round(realized, 2), "reason": trigger,
                  "steps": camp.step}
        if trigger in STOPS:
            return stopped(replace(state, campaign=camp), now or intent_time(intent), trigger,
                           fields, cooldown_days)
        return Decision(replace(state, status=Status.CLOSED, campaign=camp),
                        events=(("campaign.closed", fields),))
    if a in ("roll", "roll_open"):
        if filled == 0:
            status = Status.OPEN if a == "roll" else Status.ROLLING
            return Decision(replace(state, status=status),
                            events=(("roll.unfilled", {"campaign": camp.id, "key": intent.key}),))
        new_legs = intent.legs[len(camp.legs):] if a == "roll" else intent.legs
        new_qty = camp.next_qty if a == "roll" else filled
        unit = tuple(Leg(leg.contract, 1 if leg.ratio > 0 else -1) for leg in new_legs)
        credit_new = _open_credit(intent, avg_price, new_qty)
        led, evs = book_roll(state.ledger, camp.id, cash, intent)
        # the VIX-jump trigger measures from the VIX at which the condor held was opened
        entry_vix = float(intent.reason.get("vix", camp.entry_vix))
        camp = replace(camp, legs=unit, qty=new_qty, step=intent.step, credit=credit_new,
                       entry_vix=entry_vix,
                       wing_width=camp.next_wing or camp.wing_width, triggered_at=None,
                       realized=camp.realized + cash, attempts=0, next_qty=0,
                       premium=camp.premium + max(0.0, credit_new) * new_qty * mult)
        fields = {"campaign": camp.id, **legs_fields(unit), "qty": new_qty, "step": camp.step,
                  "credit": round(credit_new, 2), "net_cash": round(cash, 2)}
        return Decision(replace(state, status=Status.OPEN, campaign=camp, ledger=led),
                        events=(("campaign.rolled", fields), *evs))
    return Decision(state, events=(("order.unexpected", {"key": intent.key}),))


def book_roll(led: lg.Ledger, campaign: str, cash: float, intent: Intent,
              **why: Any) -> tuple[lg.Ledger, tuple[Event, ...]]:
    """A roll step's effect on the roll fund.

    `roll_funding: hedges`: the fund pays the step's planned net debit at the current size
    and wings (when positive) and nothing else touches it: the size-up's credit is condor
    risk, not funding. `any`: the step's whole net cash is booked (today's rule)."""
    if intent.reason.get("roll_funding") != "hedges":
        led, ev = lg.book(led, campaign, cash, "roll", step=intent.step, **why)
        return led, (ev,)
    draw = max(0.0, float(intent.reason.get("net_debit", 0.0)))
    if intent.action == "roll_open" or draw <= 0:
        return led, ()
    led, ev = lg.debit(led, campaign, draw, "roll", step=intent.step, net_cash=round(cash, 2),
                       **why)
    return led, (ev,)


def _open_credit(intent: Intent, avg_price: float, new_qty: int) -> float:
    """Per-unit credit of the new condor: a roll_open's own price, or, inside a combo roll,
    the fill less the close part valued at the close cost the roll was planned with."""
    if intent.action == "roll_open":
        return -avg_price
    mult = intent.legs[0].contract.multiplier
    close_cost = float(intent.reason.get("close_cost", math.nan))
    total = avg_price * intent.qty * mult  # dollars paid for the whole roll combo
    if not math.isfinite(close_cost):
        return -total / (new_qty * mult)
    return -(total - close_cost) / (new_qty * mult)


def intent_time(intent: Intent) -> datetime:
    raise ValueError(f"on_order_done for {intent.key} needs `now` to start a cooldown")
