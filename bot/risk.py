"""The risk guard: every intent is approved or rejected here, with a reason code and numbers.

Trading states: ACTIVE (anything the limits allow), REDUCING (closing orders only), HALTED
(nothing but cancels; only an operator `condorbot resume` leaves it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bot.broker.base import WhatIf
from bot.config import RiskSettings
from strategies.types import Intent, Snapshot

ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"


@dataclass(frozen=True)
class Verdict:
    approved: bool
    code: str = "ok"
    numbers: dict[str, Any] = field(default_factory=dict)


def uncovered_shorts(intent: Intent) -> list[str]:
    """Short legs not covered by a long leg of the same underlying, right and class.

    Coverage is counted in contracts: the longs of a (symbol, right) group must be at least
    the shorts of that group, so a 1x2 ratio spread is refused too.
    """
    shorts: dict[tuple[str, str], int] = defaultdict(int)
    longs: dict[tuple[str, str], int] = defaultdict(int)
    for leg in intent.legs:
        c = leg.contract
        if c.sec_type != "OPT":
            continue
        k = (c.symbol, c.right)
        if leg.ratio < 0:
            shorts[k] += -leg.ratio
        else:
            longs[k] += leg.ratio
    return [f"{s}:{r}" for (s, r), n in shorts.items() if longs[(s, r)] < n]


class RiskGuard:
    def __init__(self, settings: RiskSettings) -> None:
        self.s = settings
        self.state = ACTIVE

    def check(self, intent: Intent, snap: Snapshot, what_if: WhatIf | None = None) -> Verdict:
        s = self.s
        if self.state == HALTED:
            return Verdict(False, "halted")
        if self.state == REDUCING and not intent.closing:
            return Verdict(False, "reducing_only_closing", {"action": intent.action})
        if not intent.closing:
            naked = uncovered_shorts(intent)
            if naked:
                return Verdict(False, "naked_short", {"uncovered": naked})
        legs = max((abs(leg.ratio) for leg in intent.legs), default=0) * intent.qty
        if legs > s.max_contracts_per_order:
            return Verdict(False, "contracts_per_order",
                           {"contracts": legs, "limit": s.max_contracts_per_order})
        if not intent.closing:
            held = sum(abs(p.qty) for p in snap.positions)
            added = sum(abs(leg.ratio) for leg in intent.legs) * intent.qty
            if held + added > s.max_contracts_total:
                return Verdict(False, "contracts_total",
                               {"held": held, "adding": added, "limit": s.max_contracts_total})
        if what_if is not None and not intent.closing:
            nl = snap.account.net_liquidation
            cap = s.margin_cap_pct * nl
            if what_if.init_margin_after > cap:
                return Verdict(False, "margin_cap", {"margin_after": round(what_if.init_margin_after, 2),
                                                     "cap": round(cap, 2)})
        return Verdict(True)
