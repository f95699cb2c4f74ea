"""What a roll step may cost: the funding rule and the campaign's running-loss cap (pure).

Funding (`roll_funding`):
- `hedges` (the seed's rule): the roll's net debit *at the current size and wings* — cost to
  close the condor held minus the credit of the same-size, same-wings condor re-centred at the
  next expiry — must be covered by the roll fund: the campaign's realized hedge gains (net of
  what earlier steps drew) plus the carried remainder of earlier campaigns. Both prices are
  the limits the executor's walk ends at (`strategies.walk.last`), not mids. The size-up's
  extra credit is new risk, not funding, so it never counts.
- `any` (kept for comparison): new credit (at mid, the stepped-up size) + fund >= cost to
  close (at mid): the size-up pays for itself, so a roll is nearly always "funded".

Running-loss cap: before every roll, the campaign's realized condor loss so far (its condor
cash with the held condor closed at the walk's last price) plus the new position's max loss
(widest wing - credit at its limit price, times quantity and multiplier) must fit
`max_campaign_loss_pct` x net liquidation. Hedge-layer results are not netted against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strategies import walk
from strategies.condor import Condor
from strategies.instruments import combo_tick
from strategies.types import Context, Leg

__all__ = ["Cap", "Funding", "cap_for", "limit_price", "max_loss", "same_size_funding"]


def limit_price(legs: tuple[Leg, ...], mid: float, natural: float, ctx: Context) -> float:
    """The limit the executor's walk ends at for this combo (signed per unit, debit > 0)."""
    return walk.last(mid, natural, ctx.walk_steps, ctx.max_slippage, combo_tick(legs, natural))


@dataclass(frozen=True)
class Funding:
    net_debit: float  # dollars: close at its limit - same-size re-centred credit at its limit
    available: float  # dollars: roll fund + carried remainder (never below 0)
    numbers: dict[str, Any]

    @property
    def funded(self) -> bool:
        return self.net_debit <= self.available


def same_size_funding(close_limit: float, same: Condor, same_limit: float, qty: int,
                      mult: int, fund: float, carried: float) -> Funding:
    close_cost = close_limit * qty * mult
    same_credit = -same_limit * qty * mult
    net = close_cost - same_credit
    available = fund + max(0.0, carried)
    numbers = {"roll_funding": "hedges", "close_limit": round(close_limit, 2),
               "close_cost_limit": round(close_cost, 2),
               "same_size_expiry": same.expiry.isoformat(), "same_size_wings": round(same.width, 2),
               "same_size_limit": round(same_limit, 2), "same_size_credit": round(same_credit, 2),
               "net_debit": round(net, 2), "roll_fund": round(fund, 2),
               "carried": round(carried, 2), "fund_available": round(available, 2),
               "funded": net <= available}
    return Funding(net, available, numbers)


def max_loss(condor: Condor, limit: float, qty: int, mult: int) -> float:
    """Dollars the condor can lose at expiry when opened at `limit` (signed, credit < 0)."""
    return max(0.0, condor.width + limit) * qty * mult


@dataclass(frozen=True)
class Cap:
    cap: float  # dollars: max_campaign_loss_pct x net liquidation
    loss_so_far: float  # dollars of realized condor loss once the held condor is closed

    def check(self, new_max_loss: float) -> dict[str, Any]:
        total = self.loss_so_far + new_max_loss
        return {"loss_cap": round(self.cap, 2), "realized_loss": round(self.loss_so_far, 2),
                "new_max_loss": round(new_max_loss, 2), "running_loss": round(total, 2),
                "fits_cap": total <= self.cap}


def cap_for(ctx: Context, net_liq: float, realized: float, close_cost: float) -> Cap | None:
    """The running-loss cap for a roll, or None when it is not checked."""
    if ctx.max_campaign_loss_pct is None:
        return None
    return Cap(ctx.max_campaign_loss_pct * net_liq, max(0.0, close_cost - realized))
