"""The risk guard: every intent is approved or rejected here, with a reason code and numbers.

Trading states: ACTIVE (anything the limits allow), REDUCING (closing orders only), HALTED
(nothing but cancels; only an operator `condorbot resume` leaves it). The guard never moves
toward ACTIVE by itself, except that a REDUCING it entered for a daily loss ends at the next
New York trading date. Every limit comes from `RiskSettings`; the guard does no I/O and
returns events (name, fields) for the caller to log.

"Closing" intents are held to what the name promises: every leg must reduce a position held
in the snapshot, and the account must not hold more uncovered shorts afterwards. Only then
are they exempt from the exposure checks (total contracts, margin, cushion, max loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from numbers import Integral
from typing import Any

from bot.broker.base import WhatIf
from bot.config import RiskSettings
from strategies.expiry import exchange_date
from strategies.params import StrategyParams
from strategies.payoff import Trade, max_loss, uncovered_shorts
from strategies.payoff import net as _net
from strategies.payoff import split as _split
from strategies.payoff import uncovered as _uncovered
from strategies.types import Contract, Intent, Snapshot

__all__ = ["ACTIVE", "HALTED", "REDUCING", "STATES", "RiskGuard", "Verdict", "max_loss",
           "uncovered_shorts"]

ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"
STATES = (ACTIVE, REDUCING, HALTED)
ACTIONS = ("open", "close", "roll", "roll_close", "roll_open", "hedge_open", "hedge_close")
RATE_WINDOW = timedelta(seconds=60)  # "orders per minute" is per 60 s by definition
EPS = 1e-6  # dollars/points: float noise allowed on a limit

Event = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Verdict:
    approved: bool
    code: str = "ok"
    numbers: dict[str, Any] = field(default_factory=dict)


def _finite(*xs: Any) -> bool:
    try:
        return all(math.isfinite(float(x)) for x in xs)
    except (TypeError, ValueError):
        return False


def _num(x: float) -> float | str:
    """A number for a log field: NaN and inf as text, so JSON lines stay JSON."""
    return x if _finite(x) else str(x)


class RiskGuard:
    def __init__(self, settings: RiskSettings,
                 max_steps: int = StrategyParams.model_fields["max_steps"].default) -> None:
        self.s = settings
        self.max_steps = max_steps
        self._state = ACTIVE
        self._orders: list[datetime] = []
        self._day: date | None = None
        self._start_nl: float | None = None
        self._last_nl: float | None = None
        self._reduced_on: date | None = None  # set when a daily loss moved us to REDUCING
        self._bad_account = False

    # --- trading state -----------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        """Set from outside (restored, or an operator): never expires by itself; a move to
        ACTIVE re-bases the day like `set_state` (else the next `observe` undoes a resume)."""
        if value not in STATES:
            raise ValueError(f"unknown trading state {value!r}; expected one of {STATES}")
        if value == ACTIVE and self._state != ACTIVE and self._last_nl is not None:
            self._start_nl = self._last_nl
        self._state = value
        self._reduced_on = None

    def _move(self, state: str, why: str, **fields: Any) -> list[Event]:
        if state == self._state:
            return []
        previous, self._state = self._state, state
        if state != REDUCING:
            self._reduced_on = None
        return [("risk.state", {"previous": previous, "state": state, "why": why, **fields})]

    def set_state(self, state: str, why: str) -> list[Event]:
        """Operator (or reconciliation) sets the state. A move to ACTIVE re-bases the day's
        start at the last net liquidation seen: the losses so far are acknowledged."""
        if state not in STATES:
            raise ValueError(f"unknown trading state {state!r}; expected one of {STATES}")
        fields: dict[str, Any] = {}
        if state == ACTIVE and self._state != ACTIVE and self._last_nl is not None:
            fields = {"start_nl_before": self._start_nl, "start_nl": self._last_nl}
            self._start_nl = self._last_nl
        events = self._move(state, why, **fields)
        if state == REDUCING:
            self._reduced_on = None  # an operator's REDUCING lasts until the operator ends it
        return events

    def resume(self) -> list[Event]:
        return self.set_state(ACTIVE, "operator_resume")

    def observe(self, snap: Snapshot, now: datetime) -> list[Event]:
        """Track the day's start net liquidation (the last one seen before this New York
        date, else the first of it) and move to REDUCING / HALTED on a daily loss."""
        s, events = self.s, []
        nl = snap.account.net_liquidation
        if not _finite(nl) or nl <= 0:
            if not self._bad_account:
                events.append(("risk.bad_account", {
                    "net_liquidation": _num(nl), "why": "net liquidation not a positive number"}))
            self._bad_account = True
            return events
        self._bad_account = False
        day = exchange_date(now)
        if self._day is None or day > self._day:
            start = self._last_nl if self._last_nl is not None else nl
            self._day, self._start_nl = day, start
            events.append(("risk.day_start", {"date": day.isoformat(),
                                              "start_nl": round(start, 2)}))
            if self._state == REDUCING and self._reduced_on is not None and self._reduced_on < day:
                events += self._move(ACTIVE, "new_trading_day")
        self._last_nl = nl
        start = self._start_nl if self._start_nl is not None else nl
        loss = start - nl
        halt, reduce = s.daily_halt_limit * start, s.daily_loss_limit * start
        if loss >= halt and self._state != HALTED:
            events += self._move(HALTED, "daily_halt_limit", loss=round(loss, 2),
                                 limit=round(halt, 2), start_nl=round(start, 2))
        elif loss >= reduce and self._state == ACTIVE:
            events += self._move(REDUCING, "daily_loss_limit", loss=round(loss, 2),
                                 limit=round(reduce, 2), start_nl=round(start, 2))
            self._reduced_on = day
        return events

    def export(self) -> dict[str, Any]:
        """JSON-able memory (state, day, start NL) so a restart keeps the daily loss."""
        return {"state": self._state, "day": self._day.isoformat() if self._day else None,
                "start_nl": self._start_nl, "last_nl": self._last_nl,
                "reduced_on": self._reduced_on.isoformat() if self._reduced_on else None}

    def restore(self, saved: dict[str, Any]) -> None:
        self.state = saved.get("state", ACTIVE)
        self._day = date.fromisoformat(saved["day"]) if saved.get("day") else None
        self._start_nl, self._last_nl = saved.get("start_nl"), saved.get("last_nl")
        r = saved.get("reduced_on")
        self._reduced_on = date.fromisoformat(r) if r and self._state == REDUCING else None

    # --- pacing ---------------------------------------------------------------------------------
    def record_order(self, now: datetime) -> None:
        """Count one placement or modification."""
        self._orders = [t for t in self._orders if abs(now - t) < RATE_WINDOW] + [now]

    def orders_last_minute(self, now: datetime) -> int:
        return sum(1 for t in self._orders if abs(now - t) < RATE_WINDOW)

    # --- checks ---------------------------------------------------------------------------------
    def check(self, intent: Intent, snap: Snapshot, what_if: WhatIf | None = None,
              now: datetime | None = None) -> Verdict:
        """Approve or reject one intent. `now` is the clock time (quote age is measured
        from it); it defaults to the snapshot time."""
        s = self.s
        now = snap.time if now is None else now
        bad = _malformed(intent)
        v = self._gate(intent, now) or (
            Verdict(False, "bad_intent", {"problem": bad}) if bad else None)
        if v is not None:
            return v
        quotes, v = self._quotes(intent, snap, now)
        if v is not None:
            return v
        if not intent.closing:
            naked = uncovered_shorts(intent)
            if naked:
                return Verdict(False, "naked_short", {"uncovered": naked})
        per_order = max(abs(leg.ratio) for leg in intent.legs) * intent.qty
        if per_order > s.max_contracts_per_order:
            return Verdict(False, "contracts_per_order",
                           {"contracts": per_order, "limit": s.max_contracts_per_order})
        held = _net((p.contract, p.qty) for p in snap.positions)
        closing, opening = _split(intent, held)
        after = _net([*held.values(), *closing.values(), *opening.values()])
        before_naked = _uncovered(held.values())
        after_naked = _uncovered(after.values())
        worse = {k: n for k, n in after_naked.items() if n > before_naked.get(k, 0)}
        if worse:
            return Verdict(False, "naked_after_trade", {"uncovered": worse})
        if intent.closing:
            if opening:
                return Verdict(False, "close_adds_exposure",
                               {"opening": {k: n for k, (_, n) in opening.items()}})
            return Verdict(True, "ok", {"closing": True})
        if not 0 <= intent.step <= self.max_steps:
            return Verdict(False, "roll_step", {"step": intent.step, "limit": self.max_steps})
        total = sum(abs(n) for _, n in after.values())
        if total > s.max_contracts_total:
            return Verdict(False, "contracts_total",
                           {"held": sum(abs(n) for _, n in held.values()), "after": total,
                            "limit": s.max_contracts_total})
        acct = snap.account
        nl = acct.net_liquidation
        if not _finite(nl, acct.cushion) or nl <= 0:
            return Verdict(False, "bad_account",
                           {"net_liquidation": _num(nl), "cushion": _num(acct.cushion)})
        if acct.cushion < s.min_cushion:
            return Verdict(False, "cushion", {"cushion": round(acct.cushion, 4),
                                              "limit": s.min_cushion})
        if what_if is None:
            return Verdict(False, "what_if_missing", {"action": intent.action})
        m = what_if.init_margin_after
        if not _finite(m):
            return Verdict(False, "what_if_invalid", {"init_margin_after": _num(m)})
        cap = s.margin_cap_pct * nl
        if m > cap + EPS:
            return Verdict(False, "margin_cap", {"margin_after": round(m, 2), "cap": round(cap, 2),
                                                 "net_liquidation": round(nl, 2)})
        loss = self._max_loss(intent, closing, opening, quotes)
        loss_cap = s.max_campaign_loss_pct * nl
        if not loss <= loss_cap + EPS:
            return Verdict(False, "campaign_max_loss",
                           {"max_loss": round(loss, 2) if _finite(loss) else "unbounded",
                            "limit": round(loss_cap, 2), "net_liquidation": round(nl, 2)})
        return Verdict(True, "ok", {"contracts_after": total, "margin_after": round(m, 2),
                                    "margin_cap": round(cap, 2), "max_loss": round(loss, 2),
                                    "max_loss_cap": round(loss_cap, 2)})

    def _max_loss(self, intent: Intent, closing: Trade, opening: Trade,
                  quotes: dict[str, float]) -> float:
        """Max loss of what the intent opens. A pure open costs its mid; a roll's new legs
        cost their own mids (the close is paid at today's marks, already in net liq)."""
        if closing:
            cost = sum(n * quotes[k] * c.multiplier for k, (c, n) in opening.items())
        else:
            cost = intent.mid * intent.qty * intent.legs[0].contract.multiplier
        return max_loss(opening, cost)

    def _quotes(self, intent: Intent, snap: Snapshot,
                now: datetime) -> tuple[dict[str, float], Verdict | None]:
        """Mid per leg; or a rejection for a quote that is missing, NaN, zero, crossed, stale."""
        mids: dict[str, float] = {}
        limit = self.s.max_quote_age_seconds
        for leg in intent.legs:
            c = leg.contract
            q = _quote(c, snap)
            if q is None:
                return mids, Verdict(False, "quote_missing", {"contract": c.key})
            bid, ask, as_of = q
            info = {"contract": c.key, "bid": _num(bid), "ask": _num(ask)}
            if not _finite(bid, ask):
                return mids, Verdict(False, "quote_not_finite", info)
            if ask <= 0 or bid < 0:
                return mids, Verdict(False, "quote_zero", info)
            if bid > ask:
                return mids, Verdict(False, "quote_crossed", info)
            age = (now - as_of).total_seconds()
            if abs(age) > limit:
                return mids, Verdict(False, "quote_stale", {"contract": c.key,
                                     "as_of": as_of.isoformat(), "age_seconds": round(age, 1),
                                     "limit": limit})
            mids[c.key] = (bid + ask) / 2.0
        return mids, None

    def check_price(self, intent: Intent, limit: float) -> Verdict:
        """A limit must lie between mid and natural, widened by `price_tolerance` (signed
        per-unit combo prices); an opening credit is never sent at a debit."""
        tol = self.s.price_tolerance
        mid, nat = intent.mid, intent.natural
        if not _finite(limit, mid, nat):
            return Verdict(False, "price_not_finite",
                           {"limit": _num(limit), "mid": _num(mid), "natural": _num(nat)})
        if not intent.closing and mid < 0 and limit > 0:
            return Verdict(False, "credit_at_debit", {"limit": limit, "mid": mid})
        lo, hi = min(mid, nat) - tol, max(mid, nat) + tol
        if not lo - EPS <= limit <= hi + EPS:
            return Verdict(False, "price_out_of_range", {"limit": limit, "mid": mid,
                           "natural": nat, "low": round(lo, 4), "high": round(hi, 4)})
        return Verdict(True, "ok", {"limit": limit})

    def check_modify(self, intent: Intent, limit: float, now: datetime) -> Verdict:
        """For a walk step (modification in place): state, pacing and price again."""
        return self._gate(intent, now) or self.check_price(intent, limit)

    def _gate(self, intent: Intent, now: datetime) -> Verdict | None:
        """Trading state and pacing: the checks an order and a modification share."""
        if self._state == HALTED:
            return Verdict(False, "halted", {"state": HALTED})
        if self._state == REDUCING and not intent.closing:
            return Verdict(False, "reducing_only_closing", {"action": intent.action})
        recent = self.orders_last_minute(now)
        if recent >= self.s.max_orders_per_minute:
            return Verdict(False, "orders_per_minute",
                           {"orders_last_minute": recent, "limit": self.s.max_orders_per_minute})
        return None


def _malformed(intent: Intent) -> str:
    if intent.action not in ACTIONS:
        return f"unknown action {intent.action!r}"
    if not intent.legs:
        return "no legs"
    if not isinstance(intent.qty, Integral) or intent.qty < 1:
        return f"qty {intent.qty!r} is not a positive integer"
    if not _finite(intent.mid, intent.natural):
        return f"mid {intent.mid!r} / natural {intent.natural!r} not finite"
    for leg in intent.legs:
        c = leg.contract
        if not isinstance(leg.ratio, Integral) or leg.ratio == 0:
            return f"ratio {leg.ratio!r} of {c.key}"
        if c.sec_type == "OPT" and (c.right not in ("C", "P") or not _finite(c.strike)
                                    or c.strike <= 0):
            return f"bad option {c.key}"
        if c.sec_type not in ("OPT", "FUT") or c.multiplier <= 0:
            return f"unsupported contract {c.key}"
    return ""


def _quote(c: Contract, snap: Snapshot) -> tuple[float, float, datetime] | None:
    """(bid, ask, quote time) of a contract from the snapshot; None if not there."""
    if c.sec_type == "FUT":
        p = snap.vix_futures.get(c.expiry) if c.symbol == "VIX" else None
        return None if p is None else (float(p), float(p), snap.time)
    chains = {"SPX": snap.chains, "VIX": snap.vix_chains}.get(c.symbol, {})
    ch = chains.get(c.expiry)
    if ch is None or (c.trading_class and ch.trading_class and c.trading_class != ch.trading_class):
        return None
    try:
        bid, ask = ch.quote(c.strike, c.right)
    except KeyError:
        return None
    return bid, ask, ch.as_of or snap.time
