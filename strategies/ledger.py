"""The roll fund and hedge ledger (pure).

Every realized hedge result and every roll's net cash goes through here:
- a layer's realized gain is a credit to its campaign's roll fund (a realized loss a debit);
- a roll that takes in more than it pays credits the fund; one that pays more debits it;
- when a campaign closes, what is left of its fund is carried: it becomes part of the next
  campaigns' hedge budget (the seed's "DRIP"). A negative fund is carried as it is, so the
  books always balance:  sum(credits) - sum(debits) = sum(open funds) + carried.
Per-layer realized P&L, the holding-period return and the annualized money-weighted return
(IRR, solved in log space) of each layer's cash flows are reported for `condorbot status` and
the backtest summary; a return that is undefined is None with a reason, never NaN or a raise.
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


def credit(led: Ledger, campaign: str, amount: float, source: str,
           **why: Any) -> tuple[Ledger, Event]:
    """Add `amount` (>= 0) to the campaign's fund."""
    if amount < 0:
        raise ValueError(f"credit of a negative amount {amount}")
    fund = led.fund(campaign) + amount
    new = replace(led, funds=_set(led.funds, campaign, fund), credits=led.credits + amount)
    return new, ("ledger.credited", {"campaign": campaign, "amount": round(amount, 2),
                                     "source": source, "fund": round(fund, 2), **why})


def debit(led: Ledger, campaign: str, amount: float, source: str,
          **why: Any) -> tuple[Ledger, Event]:
    """Take `amount` (>= 0) from the campaign's fund (it may go negative: a roll paid in cash)."""
    if amount < 0:
        raise ValueError(f"debit of a negative amount {amount}")
    fund = led.fund(campaign) - amount
    drawn = led.drawn + amount if source == "roll" else led.drawn
    new = replace(led, funds=_set(led.funds, campaign, fund), debits=led.debits + amount,
                  drawn=drawn)
    return new, ("ledger.debited", {"campaign": campaign, "amount": round(amount, 2),
                                    "source": source, "fund": round(fund, 2), **why})


def book(led: Ledger, campaign: str, amount: float, source: str,
         **why: Any) -> tuple[Ledger, Event]:
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


@dataclass(frozen=True)
class Rate:
    """A return that may be undefined: `value` is None exactly when `reason` says why."""

    value: float | None  # simple annual rate (1.0 = +100% a year), or a plain ratio for HPR
    log: float | None = None  # continuously compounded annual rate ln(1 + value)
    reason: str | None = None


def _undefined(why: str) -> Rate:
    return Rate(None, None, why)


def money_weighted(flows: tuple[Flow, ...] | list[Flow]) -> Rate:
    """Annualized money-weighted return (IRR) of dated cash flows, solved in log space.

    Solves sum(a_i * exp(-x * t_i)) = 0 for x = ln(1 + r), t in years from the first flow.
    The sum is evaluated scaled by its largest exponential (log-sum-exp), so no term can
    overflow however long the flows span or however fast the rate: a 5-year layer and a
    2-day +10% trade (r ~ 3.6e7) both solve. The bracket on x widens until the NPV changes
    sign, then bisection; never raises, never NaN. `log` (x) is always finite when defined;
    `value` (r = e^x - 1) is None, with a reason, when it is past float range.
    Undefined (None + reason): no flows, a non-finite amount, all flows of one sign, all at
    one instant, or no sign change of the NPV found on the bracket (flows whose sign changes
    several times can have no root, or roots between the bracket's sample points).
    """
    if not flows:
        return _undefined("no cash flows")
    amts = [f.amount for f in flows]
    if not all(math.isfinite(a) for a in amts):
        return _undefined("a cash flow is not a finite number")
    if all(a >= 0 for a in amts) or all(a <= 0 for a in amts):
        return _undefined("no money both paid and received")
    t0 = min(f.time for f in flows)
    ts = [(f.time - t0).total_seconds() / (365.0 * 86400.0) for f in flows]
    if max(ts) <= 0:
        return _undefined("all cash flows at one instant")

    def sign(x: float) -> int:  # the sign of the NPV at x, from the scaled sum
        m = max(-x * t for t in ts)
        s = math.fsum(a * math.exp(-x * t - m) for a, t in zip(amts, ts))
        return (s > 0) - (s < 0)

    lo, hi = -1.0, 1.0
    s_lo, s_hi = sign(lo), sign(hi)
    while s_lo * s_hi > 0 and hi < 1e12:
        lo, hi = lo * 4.0, hi * 4.0
        s_lo, s_hi = sign(lo), sign(hi)
    if s_lo == 0 or s_hi == 0:
        return _rate(lo if s_lo == 0 else hi)
    if s_lo * s_hi > 0:
        return _undefined("no rate found where the NPV changes sign (tried ln(1+r) in "
                          "+-1e12): flows with several sign changes may have none")
    for _ in range(300):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        s_mid = sign(mid)
        if s_mid == 0:
            lo = hi = mid
            break
        if s_mid == s_lo:
            lo = mid
        else:
            hi = mid
    return _rate((lo + hi) / 2)


def _rate(x: float) -> Rate:
    if x >= 709.0:  # e^x past float range: the log rate is real, the simple rate is not
        return Rate(None, x, f"annual rate e^{x:.0f} - 1 is past float range; see the log rate")
    return Rate(math.expm1(x), x)


def irr(flows: tuple[Flow, ...] | list[Flow]) -> float | None:
    """`money_weighted(flows).value`: the annual rate, None when undefined."""
    return money_weighted(flows).value


def holding_period(flows: tuple[Flow, ...] | list[Flow]) -> Rate:
    """Holding-period return, not annualized: received / paid - 1 over all the flows.

    `value` is a plain ratio (0.1 = +10%); None when nothing was paid or an amount is not
    finite. A layer still held when the flows end counts its cost but not its value.
    """
    amts = [f.amount for f in flows]
    if not all(math.isfinite(a) for a in amts):
        return _undefined("a cash flow is not a finite number")
    paid = math.fsum(-a for a in amts if a < 0)
    if paid <= 0:
        return _undefined("nothing paid")
    received = math.fsum(a for a in amts if a > 0)
    if received <= 0:
        return Rate(-1.0, None, "nothing received: log return undefined")
    log = math.log(received) - math.log(paid)
    ratio = received / paid
    if not math.isfinite(ratio):
        return Rate(None, log, "received / paid is past float range; see the log return")
    return Rate(ratio - 1.0, log)


def layer_report(led: Ledger, layer: str) -> dict[str, Any]:
    """One hedge layer: realized P&L, money paid and received, HPR and annualized IRR."""
    flows = dict(led.layer_flows).get(layer, ())
    mw, hp = money_weighted(flows), holding_period(flows)
    return {"pnl": round(led.pnl(layer), 2),
            "paid": round(math.fsum(-f.amount for f in flows if f.amount < 0), 2),
            "received": round(math.fsum(f.amount for f in flows if f.amount > 0), 2),
            "hpr": hp.value, "hpr_reason": hp.reason,
            "irr": mw.value, "irr_log": mw.log, "irr_reason": mw.reason}


def report(led: Ledger) -> dict[str, Any]:
    layers = sorted({k for k, _ in led.layer_pnl} | {k for k, _ in led.layer_flows})
    return {
        "funds": {k: round(v, 2) for k, v in led.funds},
        "carried": round(led.carried, 2),
        "credits": round(led.credits, 2),
        "debits": round(led.debits, 2),
        "drawn": round(led.drawn, 2),
        "layers": {k: layer_report(led, k) for k in layers},
    }


__all__ = ["Flow", "Ledger", "Rate", "book", "close_campaign", "credit", "debit",
           "holding_period", "irr", "layer_flow", "layer_report", "money_weighted",
           "realize_layer", "report"]
