"""Trading states: ACTIVE (anything the limits allow), REDUCING (closing orders only), HALTED
(nothing but cancels).

The state is the stricter of two flags. The operator's flag (set by `condorbot reduce`, by
reconciliation, or by anything else calling `set_state`) never loosens a stricter state and
lasts until an operator resume. The daily-loss flag goes REDUCING at `daily_loss_limit` of
the day's starting net liquidation, HALTED at `daily_halt_limit`; its REDUCING ends at the
next New York trading date, never the operator's flag. A resume clears both and re-bases the
day. No I/O: methods return events (name, fields) for the caller to log.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

from bot.config import RiskSettings
from strategies.expiry import exchange_date
from strategies.types import Snapshot

ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"
STATES = (ACTIVE, REDUCING, HALTED)
_RANK = {name: i for i, name in enumerate(STATES)}

Event = tuple[str, dict[str, Any]]


def _finite(*xs: Any) -> bool:
    try:
        return all(math.isfinite(float(x)) for x in xs)
    except (TypeError, ValueError):
        return False


def _num(x: float) -> float | str:
    """A number for a log field: NaN and inf as text, so JSON lines stay JSON."""
    return x if _finite(x) else str(x)


def _stricter(*states: str) -> str:
    return max(states, key=STATES.index)


class TradingState:
    def __init__(self, settings: RiskSettings) -> None:
        self.s = settings
        self._held = ACTIVE  # the operator's (and reconciliation's) flag
        self._daily = ACTIVE  # the daily-loss rule's flag
        self._day: date | None = None
        self._start_nl: float | None = None
        self._last_nl: float | None = None
        self._reduced_on: date | None = None  # set when a daily loss moved us to REDUCING
        self._bad_account = False
        self._orders: list[datetime] = []  # placements and modifications, for the pace

    @property
    def state(self) -> str:
        held, daily = self._held, self._daily
        if held == daily:  # most steps: both ACTIVE (`_stricter` of two, without max())
            return held
        return held if _RANK[held] >= _RANK[daily] else daily

    @state.setter
    def state(self, value: str) -> None:
        """Set from outside (restored, or an operator), like `set_state` without events."""
        self.set_state(value, "assigned")

    @property
    def flags(self) -> dict[str, str]:
        """The operator's (and reconciliation's) state and the daily-loss rule's."""
        return {"operator": self._held, "daily": self._daily}

    def _set(self, why: str, held: str | None = None, daily: str | None = None,
             **fields: Any) -> list[Event]:
        previous = self.state
        self._held = self._held if held is None else held
        self._daily = self._daily if daily is None else daily
        if self._daily != REDUCING:
            self._reduced_on = None
        if self.state == previous:
            return []
        return [("risk.state", {"previous": previous, "state": self.state, "why": why, **fields})]

    def set_state(self, state: str, why: str) -> list[Event]:
        """Operator (or reconciliation) sets the state. REDUCING or HALTED never loosens a
        stricter state and lasts until a resume. ACTIVE (a resume) clears both flags and
        re-bases the day's start at the last net liquidation seen: the losses so far are
        acknowledged."""
        if state not in STATES:
            raise ValueError(f"unknown trading state {state!r}; expected one of {STATES}")
        if state != ACTIVE:
            return self._set(why, held=_stricter(self._held, state))
        fields: dict[str, Any] = {}
        if self.state != ACTIVE and self._last_nl is not None:
            fields = {"start_nl_before": self._start_nl, "start_nl": self._last_nl}
            self._start_nl = self._last_nl
        return self._set(why, ACTIVE, ACTIVE, **fields)

    def resume(self) -> list[Event]:
        return self.set_state(ACTIVE, "operator_resume")

    def observe(self, snap: Snapshot, now: datetime) -> list[Event]:
        """Track the day's start net liquidation (the last one seen before this New York
        date, else the first of it) and move to REDUCING / HALTED on a daily loss."""
        s, events = self.s, []
        nl = snap.account.net_liquidation
        if not (math.isfinite(nl) if type(nl) is float else _finite(nl)) or nl <= 0:
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
            if self._daily == REDUCING and self._reduced_on is not None and self._reduced_on < day:
                events += self._set("new_trading_day", daily=ACTIVE)  # the operator's stays
        self._last_nl = nl
        start = self._start_nl if self._start_nl is not None else nl
        loss = start - nl
        halt, reduce = s.daily_halt_limit * start, s.daily_loss_limit * start
        if loss >= halt and self._daily != HALTED:
            events += self._set("daily_halt_limit", daily=HALTED, limit=round(halt, 2),
                                loss=round(loss, 2), start_nl=round(start, 2))
        elif loss >= reduce and self._daily == ACTIVE:
            events += self._set("daily_loss_limit", daily=REDUCING, limit=round(reduce, 2),
                                loss=round(loss, 2), start_nl=round(start, 2))
            self._reduced_on = day
        return events

    def export(self) -> dict[str, Any]:
        """JSON-able memory (flags, day, start NL, recent orders) so a restart keeps the
        daily loss and the pace."""
        return {"state": self.state, "operator": self._held, "daily": self._daily,
                "day": self._day.isoformat() if self._day else None,
                "start_nl": self._start_nl, "last_nl": self._last_nl,
                "reduced_on": self._reduced_on.isoformat() if self._reduced_on else None,
                "orders": [t.isoformat() for t in self._orders]}

    def restore(self, saved: dict[str, Any]) -> None:
        """The inverse of `export`; also reads the older form that had one state only."""
        state = saved.get("state", ACTIVE)
        r = saved.get("reduced_on")
        held, daily = saved.get("operator"), saved.get("daily")
        if held is None or daily is None:  # one state: a dated REDUCING was the daily rule's
            held, daily = (ACTIVE, REDUCING) if state == REDUCING and r else (state, ACTIVE)
        for flag in (held, daily):
            if flag not in STATES:
                raise ValueError(f"unknown trading state {flag!r}; expected one of {STATES}")
        self._held, self._daily = held, daily
        self._day = date.fromisoformat(saved["day"]) if saved.get("day") else None
        self._start_nl, self._last_nl = saved.get("start_nl"), saved.get("last_nl")
        self._reduced_on = date.fromisoformat(r) if r and daily == REDUCING else None
        self._orders = [datetime.fromisoformat(t) for t in saved.get("orders", ())]

