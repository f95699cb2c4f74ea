"""The martingale roll step (the "Temporal Vega Martingale"), pure.

Triggers (any one): a short strike's |delta| >= roll_delta; SPX within roll_distance_pct of a
short strike; VIX >= (1 + vix_jump_pct) x VIX at entry. A hard |delta| >= roll_delta_hard
rolls at once; otherwise the roll waits for the MACD histogram to turn toward relief (rising
when the put side is tested, falling when the call side is), at most macd_max_wait_minutes.

A step closes the whole condor and opens the next standard monthly, re-centred by delta, with
wings x wing_mult and quantity x size_mult rounded up. It must be funded (`roll_funding`, see
`strategies.funding`) and fit the campaign's running-loss cap. roll_policy `shrink` tries
smaller steps — the multipliers halfway to 1, then 1 (same size, same wings) — and takes the
first that is funded and fits; `close` (or no such step) closes the campaign instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from strategies import daily
from strategies import funding as fd
from strategies.condor import Condor, build_condor, combo_prices, reverse
from strategies.frozen import fast_init
from strategies.params import StrategyParams
from strategies.types import Context, Leg, Snapshot

NO_CONTEXT = Context()


@fast_init
@dataclass(frozen=True)
class Test:
    """How tested the condor is right now."""

    triggers: tuple[dict[str, Any], ...]  # each: trigger, value, threshold
    hard: bool
    side: str  # "put" | "call": the side under pressure

    @property
    def tested(self) -> bool:
        return bool(self.triggers)


def shorts(legs: tuple[Leg, ...]) -> list[Leg]:
    return [leg for leg in legs if leg.ratio < 0]


def evaluate(legs: tuple[Leg, ...], entry_vix: float, snap: Snapshot, p: StrategyParams) -> Test:
    trig: list[dict[str, Any]] = []
    worst_delta, side, hard = 0.0, "", False
    for leg in shorts(legs):
        c = leg.contract
        chain = snap.chains.get(c.expiry)
        if chain is None:
            continue
        try:
            d = abs(chain.delta(c.strike, c.right))
        except KeyError:
            continue
        if not math.isfinite(d):
            continue
        if d > worst_delta:
            worst_delta, side = d, "put" if c.right == "P" else "call"
        dist = abs(snap.spx - c.strike) / snap.spx
        if d >= p.roll_delta:
            trig.append({"trigger": "delta", "leg": f"{c.right}{c.strike:g}", "value": round(d, 4),
                         "threshold": p.roll_delta})
        if d >= p.roll_delta_hard:
            hard = True
        if dist <= p.roll_distance_pct:
            trig.append({"trigger": "distance", "leg": f"{c.right}{c.strike:g}",
                         "value": round(dist, 4), "threshold": p.roll_distance_pct})
            side = "put" if c.right == "P" else "call"
    jump = (1.0 + p.vix_jump_pct) * entry_vix
    if entry_vix > 0 and snap.vix >= jump:
        trig.append({"trigger": "vix", "value": round(snap.vix, 2), "threshold": round(jump, 2),
                     "entry_vix": round(entry_vix, 2)})
        side = side or "put"
    return Test(tuple(trig), hard, side)


def macd_relief(snap: Snapshot, side: str) -> tuple[bool, dict[str, Any]]:
    """Is the daily MACD(12, 26, 9) histogram, with today's price as the last close, turning
    toward relief for the tested side?"""
    bars = snap.bars
    if bars is None or len(bars) < 35:
        return False, {"macd": "no_bars"}
    now, before = daily.macd_hist_with(bars, snap.spx)
    relief = now > before if side == "put" else now < before
    return relief, {"macd_hist": round(now, 3), "macd_hist_prev": round(before, 3),
                    "relief": relief}


@dataclass(frozen=True)
class Plan:
    condor: Condor
    qty: int
    wing_width: float
    close_mid: float  # per unit of the old condor, signed (debit > 0)
    close_natural: float
    funded: bool
    numbers: dict[str, Any]


def next_expiry(snap: Snapshot, current: Any) -> Any:
    later = sorted(e for e in snap.chains if e > current)
    return later[0] if later else None


def plan(legs: tuple[Leg, ...], qty: int, wing_width: float, fund: float, snap: Snapshot,
         p: StrategyParams, ctx: Context = NO_CONTEXT, realized: float = 0.0,
         carried: float = 0.0) -> tuple[Plan | None, dict[str, Any]]:
    """The roll step to take, or (None, why) when none is possible, funded and within the
    running-loss cap (see `strategies.funding`). `realized` is the campaign's condor cash so
    far, `carried` the ledger's carried remainder."""
    close_legs = reverse(legs)
    close_mid, close_nat = combo_prices(snap.chains, close_legs)
    if not math.isfinite(close_mid):
        return None, {"why": "bad_quote_on_close"}
    nxt = next_expiry(snap, legs[0].contract.expiry)
    if nxt is None:
        return None, {"why": "no_next_expiry"}
    mult = legs[0].contract.multiplier
    hedges = p.roll_funding == "hedges"
    close_limit = fd.limit_price(close_legs, close_mid, close_nat, ctx) if (
        hedges or ctx.max_campaign_loss_pct is not None) else close_mid
    common: dict[str, Any] = {}
    if hedges:
        same, why = build_condor(snap.chains[nxt], p.short_delta, p.short_delta_min,
                                 p.short_delta_max, wing_width)
        if same is None:  # no same-size condor to price the funding against
            return None, {"why": why, "same_size": why, "expiry": nxt.isoformat()}
        same_limit = fd.limit_price(same.legs, same.mid, same.natural, ctx)
        funding = fd.same_size_funding(close_limit, same, same_limit, qty, mult, fund, carried)
        common = funding.numbers
        if not funding.funded:
            return None, {"why": "unfunded", **common}
    cap = fd.cap_for(ctx, snap.account.net_liquidation, realized, close_limit * qty * mult)
    steps = [(p.size_mult, p.wing_mult)]
    if p.roll_policy == "shrink":
        steps += [(1 + (p.size_mult - 1) / 2, 1 + (p.wing_mult - 1) / 2), (1.0, 1.0)]
    last: dict[str, Any] = {}
    seen = set()
    capped = False
    for size_mult, wing_mult in steps:
        new_qty = math.ceil(qty * size_mult - 1e-9)
        new_wing = wing_width * wing_mult
        if (new_qty, new_wing) in seen:
            continue
        seen.add((new_qty, new_wing))
        condor, why = build_condor(snap.chains[nxt], p.short_delta, p.short_delta_min,
                                   p.short_delta_max, new_wing)
        if condor is None:
            last = {"why": why, "expiry": nxt.isoformat()}
            continue
        credit = -condor.mid * new_qty * mult
        cost = close_mid * qty * mult
        funded = True if hedges else credit + fund >= cost
        numbers = {"new_expiry": nxt.isoformat(), "new_wings": round(condor.width, 2),
                   "new_qty": new_qty, "roll_fund": round(fund, 2), "new_credit": round(credit, 2),
                   "close_cost": round(cost, 2), "funded": funded,
                   "shrunk": (size_mult, wing_mult) != (p.size_mult, p.wing_mult), **common}
        fits = True
        if cap is not None:
            new_limit = fd.limit_price(condor.legs, condor.mid, condor.natural, ctx)
            numbers.update(cap.check(fd.max_loss(condor, new_limit, new_qty, mult)),
                           new_limit=round(new_limit, 2))
            fits = bool(numbers["fits_cap"])
            capped = capped or (funded and not fits)
        if funded and fits:
            return Plan(condor, new_qty, new_wing, close_mid, close_nat, True, numbers), numbers
        last = numbers
    return None, {"why": "campaign_loss_cap" if capped else "unfunded", **last}


def roll_legs(old: tuple[Leg, ...], old_qty: int, new: tuple[Leg, ...],
              new_qty: int) -> tuple[tuple[Leg, ...], int]:
    """One combo that closes `old` x old_qty and opens `new` x new_qty: (legs, combo qty).

    The quantities go into the leg ratios and the combo quantity is 1, so a roll can never be
    partly filled into a mix of two condors.
    """
    legs = tuple(Leg(leg.contract, leg.ratio * old_qty) for leg in reverse(old))
    legs += tuple(Leg(leg.contract, leg.ratio * new_qty) for leg in new)
    return legs, 1


def per_unit(snap: Snapshot, legs: tuple[Leg, ...]) -> tuple[float, float]:
    mid, nat = combo_prices(snap.chains, legs)
    return (float(mid), float(nat)) if np.isfinite(mid) else (math.nan, math.nan)
