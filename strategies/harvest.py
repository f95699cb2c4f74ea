"""Harvest for a roll (pure): realize just enough unrealized hedge gains to fund a roll step.

Under `roll_funding: hedges` a roll step's net debit must be covered by the roll fund, which
only realized hedge gains credit. A campaign is usually tested while its layers' gains are
still on paper, so with `hedge.harvest_for_rolls` an unfunded roll first closes whole
contracts of the campaign's open layers that are in profit, just enough to cover the
shortfall (net debit - fund available):

- each contract's gain is priced like the roll: its close at the limit the executor's walk
  ends at (`strategies.funding.limit_price`), less its share of the layer's cost;
- the layer that covers the shortfall with the fewest contracts goes first; one that cannot
  cover it alone is closed whole and the next one covers the rest; the tail layer comes last,
  so that it is held into the spike as long as possible;
- nothing is sent unless all the gains together cover the shortfall (then the campaign stops
  as without harvesting); a layer whose closes came back unfilled `MAX_ATTEMPTS` times no
  longer counts.

The roll itself is not sent now: it is re-decided on a later tick, once the closes have filled
and the fund has been credited with the gains they realized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from strategies import funding as fd
from strategies.condor import reverse
from strategies.layers import combo
from strategies.types import Context, Decision, Event, Intent, Layer, Snapshot, State

__all__ = ["TRIGGER", "Candidate", "choose", "harvest", "pending", "shortfall"]

TRIGGER = "roll_harvest"
# a layer whose closes keep coming back unfilled is not sent again and again for a roll: past
# this many order attempts (its opening included) it no longer counts as harvestable
MAX_ATTEMPTS = 6


@dataclass(frozen=True)
class Candidate:
    index: int  # in state.hedges
    name: str
    qty: int  # contracts held
    unit_gain: float  # dollars per contract closed at `limit`, net of its share of cost
    limit: float  # the walk's last limit for the close, per unit (signed, credit < 0)
    mid: float
    natural: float

    @property
    def gain(self) -> float:
        return self.unit_gain * self.qty

    def numbers(self) -> dict[str, Any]:
        return {"layer": self.name, "qty": self.qty, "close_limit": round(self.limit, 2),
                "unit_gain": round(self.unit_gain, 2), "unrealized_gain": round(self.gain, 2)}


def shortfall(numbers: dict[str, Any]) -> float | None:
    """What an unfunded `hedges` roll lacks (dollars), or None when it is not that case."""
    if numbers.get("why") != "unfunded" or numbers.get("funded") is not False:
        return None
    return float(numbers["net_debit"]) - float(numbers["fund_available"])


def pending(state: State, campaign: str) -> list[str]:
    """The campaign's layers whose close is working: their gains are about to be realized."""
    return [layer.name for layer in state.hedges if layer.campaign_id == campaign
            and layer.pending is not None and layer.pending.action == "hedge_close"]


def candidates(state: State, snap: Snapshot, ctx: Context, campaign: str) -> list[Candidate]:
    out = []
    for i, layer in enumerate(state.hedges):
        if layer.campaign_id != campaign or layer.status != "open" or layer.pending is not None \
                or layer.qty < 1 or not layer.legs or layer.attempts >= MAX_ATTEMPTS:
            continue
        legs = reverse(layer.legs)
        mid, nat = combo(snap, legs)
        if not (math.isfinite(mid) and math.isfinite(nat)):
            continue
        limit = fd.limit_price(legs, mid, nat, ctx)
        unit = -limit * layer.legs[0].contract.multiplier - layer.cost / layer.qty
        out.append(Candidate(i, layer.name, layer.qty, unit, limit, mid, nat))
    return out


def choose(cands: list[Candidate], need: float) -> tuple[list[tuple[Candidate, int]], float]:
    """Whole contracts to close for `need` dollars: [(candidate, contracts)], and what they
    are expected to realize. Empty when even all the gains fall short."""
    pool = [c for c in cands if c.unit_gain > 0]
    if sum(c.gain for c in pool) < need:
        return [], 0.0
    picks: list[tuple[Candidate, int]] = []
    left = need
    while left > 1e-9 and pool:
        tier = [c for c in pool if c.name != "tail"] or pool  # the tail layer last
        covers = [c for c in tier if c.gain >= left]
        if covers:
            best = min(covers, key=lambda c: (math.ceil(left / c.unit_gain - 1e-9), c.name))
            n = math.ceil(left / best.unit_gain - 1e-9)
        else:
            best = max(tier, key=lambda c: c.gain)
            n = best.qty
        picks.append((best, n))
        left -= n * best.unit_gain
        pool.remove(best)
    return picks, need - left


def harvest(state: State, snap: Snapshot, ctx: Context, need: float,
            base: dict[str, Any]) -> tuple[Decision | None, dict[str, Any]]:
    """The harvest closes for a roll short of `need` dollars (`base`: the roll's numbers), or
    (None, numbers) when the gains cannot cover it."""
    camp = state.campaign
    assert camp is not None
    cands = candidates(state, snap, ctx, camp.id)
    picks, expected = choose(cands, need)
    numbers = {"shortfall": round(need, 2), "layers": [c.numbers() for c in cands],
               "unrealized_gain": round(sum(max(0.0, c.gain) for c in cands), 2)}
    if not picks:
        return None, {**numbers, "harvest": "not_enough_gain"}
    hedges = list(state.hedges)
    intents: list[Intent] = []
    closed = []
    for c, n in picks:
        layer: Layer = hedges[c.index]
        att = layer.attempts + 1
        why = {"trigger": TRIGGER, "campaign": camp.id, "step": camp.step + 1, "qty": n,
               "unit_gain": round(c.unit_gain, 2), "close_limit": round(c.limit, 2)}
        intent = Intent(key=f"{layer.campaign_id}:hedge:{layer.name}:{layer.tag}:close:{att}",
                        campaign_id=layer.campaign_id, action="hedge_close",
                        legs=reverse(layer.legs), qty=n, mid=c.mid, natural=c.natural,
                        step=camp.step, layer=layer.name, reason=why)
        hedges[c.index] = replace(layer, status="closing", pending=intent, attempts=att)
        intents.append(intent)
        closed.append({"layer": c.name, "contracts": n, "of": c.qty,
                       "expected_gain": round(n * c.unit_gain, 2)})
    numbers.update(closed=closed, expected_gain=round(expected, 2))
    ev: Event = ("roll.harvest", {**base, **numbers})
    return Decision(replace(state, hedges=tuple(hedges)), tuple(intents), (ev,)), numbers
