"""Campaign state machine: decide(state, snapshot, params) -> Decision(state, intents, events).

Pure: no I/O, no clock reads (time comes from the snapshot), no logging — the events returned
are data that the daemon logs. Order outcomes come back through `on_order_done`.

Transitions (this first part: entry and exits; roll steps plug in at OPEN):

| from     | on                                   | to       | emits                |
|----------|--------------------------------------|----------|----------------------|
| IDLE     | filters pass, condor found           | ENTERING | open intent          |
| IDLE     | a filter fails                       | IDLE     | entry.skipped reason |
| ENTERING | open filled (any quantity)           | OPEN     | campaign.entered     |
| ENTERING | open cancelled with nothing filled   | IDLE     | entry.abandoned      |
| OPEN     | profit >= take_profit_pct of credit  | CLOSING  | close intent         |
| OPEN     | DTE <= exit_dte                      | CLOSING  | close intent         |
| CLOSING  | close filled                         | CLOSED   | campaign.closed      |
| CLOSING  | close cancelled / partly filled      | OPEN     | (retried next tick)  |
| CLOSED   | next tick                            | IDLE     |                      |
| COOLDOWN | cooldown over                        | IDLE     |                      |
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import numpy as np

from strategies.condor import build_condor, combo_prices, pick_expiry, reverse
from strategies.expiry import dte, exchange_date
from strategies.params import StrategyParams
from strategies.types import Intent, Leg, Snapshot


class Status(str, Enum):
    IDLE = "IDLE"
    ENTERING = "ENTERING"
    OPEN = "OPEN"
    ROLLING = "ROLLING"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"
    COOLDOWN = "COOLDOWN"


Event = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Campaign:
    id: str
    step: int = 0
    legs: tuple[Leg, ...] = ()  # the condor held, opening ratios per unit
    qty: int = 0
    credit: float = 0.0  # per-unit credit received for the condor held (> 0)
    wing_width: float = 0.0
    entry_vix: float = 0.0
    entered_at: datetime | None = None
    realized: float = 0.0  # dollars, net of commissions, for closed condors of this campaign
    attempts: int = 0  # order attempts, part of the idempotency key


@dataclass(frozen=True)
class State:
    status: Status = Status.IDLE
    seq: int = 0  # campaigns started so far
    campaign: Campaign | None = None
    pending: Intent | None = None  # the intent whose order is working
    cooldown_until: datetime | None = None


@dataclass(frozen=True)
class Decision:
    state: State
    intents: tuple[Intent, ...] = ()
    events: tuple[Event, ...] = field(default_factory=tuple)


def _legs_fields(legs: tuple[Leg, ...]) -> dict[str, Any]:
    return {"expiry": legs[0].contract.expiry.isoformat(),
            "strikes": [leg.contract.strike for leg in legs]}


def decide(state: State, snap: Snapshot, p: StrategyParams) -> Decision:
    if state.status in (Status.ENTERING, Status.CLOSING, Status.ROLLING):
        return Decision(state)  # an order is working; its outcome arrives via on_order_done
    if state.status is Status.CLOSED:
        state = replace(state, status=Status.IDLE, campaign=None)
    if state.status is Status.COOLDOWN:
        if state.cooldown_until is not None and snap.time < state.cooldown_until:
            return Decision(state)
        state = replace(state, status=Status.IDLE, campaign=None, cooldown_until=None)
    if state.status is Status.IDLE:
        return _maybe_enter(state, snap, p)
    return _manage_open(state, snap, p)


def _maybe_enter(state: State, snap: Snapshot, p: StrategyParams) -> Decision:
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


def _manage_open(state: State, snap: Snapshot, p: StrategyParams) -> Decision:
    camp = state.campaign
    assert camp is not None and camp.legs
    close_legs = reverse(camp.legs)
    mid, natural = combo_prices(snap.chains, close_legs)
    days = dte(camp.legs[0].contract.expiry, snap.time)
    if not snap.market_open:
        return Decision(state)
    reason: dict[str, Any] | None = None
    if days <= p.exit_dte:
        reason = {"trigger": "time_exit", "dte": days, "threshold": p.exit_dte}
    elif np.isfinite(mid):
        profit = camp.credit - mid
        target = p.take_profit_pct * camp.credit
        if profit >= target:
            reason = {"trigger": "take_profit", "profit": round(profit, 2),
                      "threshold": round(target, 2), "credit": round(camp.credit, 2),
                      "close_cost": round(mid, 2)}
    if reason is None:
        return Decision(state)
    if not np.isfinite(mid):
        return Decision(state, events=(("exit.deferred", {"campaign": camp.id, **reason,
                                                          "why": "bad_quote"}),))
    return _close(state, close_legs, mid, natural, reason)


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


def force_close(state: State, snap: Snapshot, why: str) -> Decision:
    """Close the open condor now (operator flatten), at whatever the market asks."""
    camp = state.campaign
    if state.status is not Status.OPEN or camp is None or not camp.legs:
        return Decision(state)
    legs = reverse(camp.legs)
    mid, natural = combo_prices(snap.chains, legs)
    if not np.isfinite(mid):
        return Decision(state, events=(("exit.deferred", {"campaign": camp.id, "trigger": why,
                                                          "why": "bad_quote"}),))
    return _close(state, legs, mid, natural, {"trigger": why})


def on_order_done(state: State, intent: Intent, filled: int, avg_price: float,
                  commission: float = 0.0) -> Decision:
    """Fold the outcome of `intent`'s order (done: filled, or cancelled/partly filled)."""
    if state.pending is None or state.pending.key != intent.key:
        return Decision(state, events=(("order.unexpected", {"key": intent.key}),))
    camp = state.campaign
    assert camp is not None
    mult = intent.legs[0].contract.multiplier
    cash = -avg_price * filled * mult - commission  # dollars received (credit > 0)
    if intent.action == "open":
        if filled == 0:
            return Decision(replace(state, status=Status.IDLE, campaign=None, pending=None),
                            events=(("entry.abandoned", {"campaign": camp.id}),))
        camp = replace(camp, legs=intent.legs, qty=filled, credit=-avg_price,
                       realized=camp.realized + cash)
        ev = {"campaign": camp.id, **_legs_fields(intent.legs), "qty": filled,
              "credit": round(-avg_price, 2), "step": camp.step}
        return Decision(replace(state, status=Status.OPEN, campaign=camp, pending=None),
                        events=(("campaign.entered", ev),))
    if intent.action == "close":
        realized = camp.realized + cash
        left = camp.qty - filled
        if left > 0:
            camp = replace(camp, qty=left, realized=realized)
            return Decision(replace(state, status=Status.OPEN, campaign=camp, pending=None),
                            events=(("exit.incomplete", {"campaign": camp.id, "left": left}),))
        camp = replace(camp, qty=0, realized=realized)
        ev = {"campaign": camp.id, "pnl": round(realized, 2), "reason": intent.reason.get("trigger"),
              "steps": camp.step}
        return Decision(replace(state, status=Status.CLOSED, campaign=camp, pending=None),
                        events=(("campaign.closed", ev),))
    return Decision(state, events=(("order.unexpected", {"key": intent.key}),))


def cooldown(state: State, now: datetime, days: float) -> State:
    return replace(state, status=Status.COOLDOWN, cooldown_until=now + timedelta(days=days))
