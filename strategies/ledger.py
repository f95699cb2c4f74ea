"""The roll fund and hedge ledger (pure).

Every realized hedge result and every roll's net cash goes through here:
- a layer's realized gain is a credit to its campaign's roll fund (a realized loss a debit);
- a roll that takes in more than it pays credits the fund; one that pays more debits it;
- when a campaign closes, what is left of its fund is carried: it becomes part of the next
  campaigns' hedge budget (the seed's "DRIP"). A negative fund is carried as it is, so the
  books always balance:  sum(credits) - sum(debits) = sum(open funds) + carried.
Per-layer realized P&L and the money-weighted return (IRR) of each layer's cash flows are
reported for `condorbot status` and the backtest summary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

Event = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Flow:
    time: datetime
    amount: float  # dollars: paid < 0, received > 0


@dataclass(frozen=True)
class Ledger:
    funds: tuple[tuple[str, float], ...] = ()  # (campaign id, roll fund) for open campaigns
    carried: float = 0.0
    credits: float = 0.0
    debits: float = 0.0
    drawn: float = 0.0  # total roll costs paid out of funds
    layer_pnl: tuple[tuple[str, float], ...] = ()
    layer_flows: tuple[tuple[str, tuple[Flow, ...]], ...] = ()

    def fund(self, campaign: str) -> float:
        return dict(self.funds).get(campaign, 0.0)

    @property
    def balance(self) -> float:
        return sum(v for _, v in self.funds) + self.carried

    def pnl(self, layer: str) -> float:
        return dict(self.layer_pnl).get(layer, 0.0)


def _set(pairs: tuple[tuple[str, Any], ...], key: str, value: Any) -> tuple[tuple[str, Any], ...]:
    d = dict(pairs)
    d[key] = value
    return tuple(sorted(d.items()))


def credit(led: Ledger, campaign: str, amount: float, source: str, **why: Any) -> tuple[Ledger, Event]:
    """Add `amount` (>= 0) to the campaign's fund."""
    if amount < 0:
        raise ValueError(f"credit of a negative amount {amount}")
    fund = led.fund(campaign) + amount
    new = replace(led, funds=_set(led.funds, campaign, fund), credits=led.credits + amount)
    return new, ("ledger.credited", {"campaign": campaign, "amount": round(amount, 2),
                                     "source": source, "fund": round(fund, 2), **why})


def debit(led: Ledger, campaign: str, amount: float, source: str, **why: Any) -> tuple[Ledger, Event]:
    """Take `amount` (>= 0) from the campaign's fund (it may go negative: a roll paid in cash)."""
    if amount < 0:
        raise ValueError(f"debit of a negative amount {amount}")
    fund = led.fund(campaign) - amount
    drawn = led.drawn + amount if source == "roll" else led.drawn
    new = replace(led, funds=_set(led.funds, campaign, fund), debits=led.debits + amount,
                  drawn=drawn)
    return new, ("ledger.debited", {"campaign": campaign, "amount": round(amount, 2),
                                    "source": source, "fund": round(fund, 2), **why})


def book(led: Ledger, campaign: str, amount: float, source: str, **why: Any) -> tuple[Ledger, Event]:
    """Credit a positive amount, debit a negative one."""
    if amount >= 0:
        return credit(led, campaign, amount, source, **why)
    return debit(led, campaign, -amount, source, **why)


def realize_layer(led: Ledger, campaign: str, layer: str, pnl: float) -> tuple[Ledger, Event]:
    led = replace(led, layer_pnl=_set(led.layer_pnl, layer, led.pnl(layer) + pnl))
    return book(led, campaign, pnl, "hedge", layer=layer)


def layer_flow(led: Ledger, layer: str, time: datetime, amount: float) -> Ledger:
    flows = dict(led.layer_flows).get(layer, ())
    return replace(led, layer_flows=_set(led.layer_flows, layer, flows + (Flow(time, amount),)))


def close_campaign(led: Ledger, campaign: str) -> tuple[Ledger, Event]:
    """Move what is left of the campaign's fund into the carried remainder."""
    left = led.fund(campaign)
    funds = tuple((k, v) for k, v in led.funds if k != campaign)
    new = replace(led, funds=funds, carried=led.carried + left)
    return new, ("ledger.carried", {"campaign": campaign, "amount": round(left, 2),
                                    "carried": round(new.carried, 2)})


def irr(flows: tuple[Flow, ...] | list[Flow]) -> float:
    """Annualized money-weighted return of dated cash flows; NaN when undefined.

    Solves sum(a_i / (1 + r) ** t_i) = 0 with t in years from the first flow, by bisection
    on r in (-0.9999, 1e6): bounded, never raises. Undefined when all flows have one sign.
    """
    if not flows:
        return float("nan")
    t0 = min(f.time for f in flows)
    ts = [(f.time - t0).total_seconds() / (365.0 * 86400.0) for f in flows]
    amts = [f.amount for f in flows]
    if all(a >= 0 for a in amts) or all(a <= 0 for a in amts):
        return float("nan")

    def npv_x(x: float) -> float:  # x = ln(1 + r): discounting as exp(-x t) stays finite
        return sum(a * math.exp(-x * t) for a, t in zip(amts, ts))

    # bisection on x: bounded, 200 halvings reach machine precision. The floor is deep
    # (r = -1 + 1e-300) because a layer that loses most of its cost in a few days has an
    # annualized rate of almost -100%.
    lo, hi = math.log(1e-300), math.log(1e6)
    f_lo, f_hi = npv_x(lo), npv_x(hi)
    if not (math.isfinite(f_lo) and math.isfinite(f_hi)) or f_lo * f_hi > 0:
        return float("nan")
    for _ in range(200):
        mid = (lo + hi) / 2
        f_mid = npv_x(mid)
        if f_mid == 0 or hi - lo < 1e-15:
            break
        if (f_mid > 0) == (f_lo > 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return math.expm1((lo + hi) / 2)


def report(led: Ledger) -> dict[str, Any]:
    layers = sorted({k for k, _ in led.layer_pnl} | {k for k, _ in led.layer_flows})
    flows = dict(led.layer_flows)
    return {
        "funds": {k: round(v, 2) for k, v in led.funds},
        "carried": round(led.carried, 2),
        "credits": round(led.credits, 2),
        "debits": round(led.debits, 2),
        "drawn": round(led.drawn, 2),
        "layers": {k: {"pnl": round(led.pnl(k), 2), "irr": irr(flows.get(k, ()))} for k in layers},
    }


__all__ = ["Flow", "Ledger", "book", "close_campaign", "credit", "debit", "irr",
           "layer_flow", "realize_layer", "report"]
