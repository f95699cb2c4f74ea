"""The simulated broker's account side (`Accounting`, a mixin of `bot.broker.sim.SimBroker`):
marks, net liquidation, Reg-T margin (`bot.sim.margin`) and the cash settlement of what
expires. SPX options settle at the SPX opening print of expiry day (AM SET); VIX options and
futures at the VIX at the open of their expiry day (SOQ). A position without a quote is
marked at its intrinsic value (expired: at its settlement value).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from bot.broker.base import BrokerError
from bot.sim import margin as mg
from bot.sim.chains import ChainBook
from bot.sim.market import Market, settle_at
from strategies import expiry as xp
from strategies.types import Account, Contract, Position

NEVER = datetime.max.replace(tzinfo=UTC)  # the settlement of nothing held


def _payoff(c: Contract, u: float) -> float:
    """A future's value, or an option's intrinsic value, with its underlying at `u`."""
    if c.sec_type == "FUT":
        return u
    return max(u - c.strike, 0.0) if c.right == "C" else max(c.strike - u, 0.0)


class Accounting:
    """Marks, account values and settlement, on the broker's market, book and positions."""

    # the state it uses (set by SimBroker.__init__)
    clock: Any
    market: Market
    book: ChainBook
    cash: float
    settlements: list[tuple[datetime, str, int, float]]
    _positions: dict[str, Position]
    _settle_due: tuple[Any, int, datetime]
    _day_start_value: float | None
    _day: date | None
    _req_memo: tuple[tuple[Position, ...], mg.Margin] | None

    def _held_now(self) -> tuple[Position, ...]:
        raise NotImplementedError  # SimBroker's

    def _quote(self, c: Contract) -> tuple[float, float]:
        raise NotImplementedError  # SimBroker's

    def _settle_value(self, c: Contract) -> float:
        """SPX: the opening print of expiry day; VIX: VIX at that open (SOQ)."""
        spx, vix = self.market.opens.get(c.expiry, (self.market.spx, self.market.vix))
        return spx if c.symbol == "SPX" else vix

    def _mark(self, c: Contract) -> float:
        try:
            bid, ask = self._quote(c)
            return (bid + ask) / 2
        except BrokerError:
            pass
        expired = self.clock.now() >= settle_at(c.expiry)
        if expired:
            u = self._settle_value(c)
        else:
            u = self.market.spx if c.symbol == "SPX" else self.book.futures.get(c.expiry,
                                                                                self.market.vix)
        return _payoff(c, u)

    # --- account ---------------------------------------------------------------------------
    def _margin(self, positions: dict[str, Position]) -> mg.Margin:
        return mg.requirement(positions.values(), self._mark,
                              {"SPX": self.market.spx, "VIX": self.market.vix})

    def _value(self) -> float:
        return self.cash + sum(p.qty * p.contract.multiplier * self._mark(p.contract)
                               for p in self._positions.values())

    def _account(self) -> Account:
        # one mark per position, shared by the value, the unrealized P&L and the margin (the
        # same numbers, summed in the same order, as marking the positions three times); one
        # loop for the marks and both sums (the same products, added in the same order from
        # the same int 0 as `sum` adds them)
        pos = self._held_now()
        marks = []
        held: float = 0
        unreal: float = 0
        for p, mid in zip(pos, self.book.held_mids([p.contract for p in pos])):
            mk = self._mark(p.contract) if mid is None else mid
            marks.append(mk)
            w = p.qty * p.contract.multiplier
            held += w * mk
            unreal += w * (mk - p.avg_cost)
        value = self.cash + held
        today = xp.exchange_date(self.clock.now())
        if self._day != today:
            self._day, self._day_start_value = today, value
        memo = self._req_memo
        if memo is not None and memo[0] is pos:
            m = memo[1]  # the same (immutable) positions, and nothing marked: the same margin
        else:
            by_id = {id(p.contract): m for p, m in zip(pos, marks)}
            marked = []

            def mark(c: Contract) -> float:
                marked.append(c)
                m = by_id.get(id(c))
                return self._mark(c) if m is None else m

            m = mg.requirement(pos, mark, {"SPX": self.market.spx, "VIX": self.market.vix})
            # spreads and condors only: a function of the positions alone (naked shorts and
            # futures read marks, and are priced again next time)
            self._req_memo = None if marked else (pos, m)
        excess = value - m.maint
        return Account(net_liquidation=value, init_margin=m.init, maint_margin=m.maint,
                       excess_liquidity=excess, cushion=excess / value if value > 0 else 0.0,
                       realized_pnl_today=value - (self._day_start_value or value),
                       unrealized_pnl=unreal)

    def _settle_expired(self, now: datetime) -> None:
        """Cash-settle options and futures whose AM settlement (09:30 New York) has passed."""
        pos = self._positions
        due = self._settle_due  # (positions, their count, the first settlement among them)
        if due[0] is pos and due[1] == len(pos) and now < due[2]:
            return  # nothing held settles yet (most steps: the positions change on fills)
        for k, p in list(pos.items()):
            c = p.contract
            if now < settle_at(c.expiry) or c.expiry not in self.market.opens:
                continue
            value = _payoff(c, self._settle_value(c))
            self.cash += p.qty * c.multiplier * value
            self.settlements.append((now, k, p.qty, value))
            del pos[k]
        first = min((settle_at(p.contract.expiry) for p in pos.values()), default=NEVER)
        self._settle_due = (pos, len(pos), first)
