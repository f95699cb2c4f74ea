"""The emulator's market data, account and position stream (a mixin of `Gateway`).

Streaming subscriptions send only what changed since the last push; delayed market data types
(3, 4) use the delayed tick types; model greeks carry delta, gamma, vega and theta. Account
values and portfolio lines go to sessions that asked for account updates (or an account
summary: its tags only), position lines to sessions that asked for positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.sim.gateway_account import account_values, ledger_rows, summary_rows
from bot.sim.gateway_book import Registry, future_values, index_values, option_values
from bot.tws.encode_account import (
    account_summary,
    account_summary_end,
    account_update_multi,
    position,
    update_account_time,
    update_account_value,
    update_portfolio,
)
from bot.tws.encode_market import tick_option_computation, tick_price
from strategies.types import Contract, Snapshot

LIVE_TICKS = {"bid": 1, "ask": 2, "last": 4, "close": 9, "greeks": 13}
DELAYED_TICKS = {"bid": 66, "ask": 67, "last": 68, "close": 75, "greeks": 83}


def _same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


@dataclass
class Sub:
    target: Contract | str  # an option/future, or an index symbol
    last: dict[str, float] = field(default_factory=dict)


class Feed:
    sim: Any
    snap: Snapshot | None
    faults: Any
    reg: Registry
    accounts: list[str]
    _account: tuple[tuple[str, str, str], ...] | None  # the account values last pushed
    _positions: dict[str, tuple[int, float]]
    _held: dict[str, Contract]

    if TYPE_CHECKING:  # provided by Gateway
        @property
        def live(self) -> list[Any]: ...

    def _values(self, target: Contract | str) -> dict[str, float]:
        snap = self.snap
        assert snap is not None
        if isinstance(target, str):
            return index_values(target, snap, getattr(self.sim.market, "ad_line", None))
        if target.sec_type == "FUT":
            return future_values(target, snap)
        v = option_values(target, snap, float(getattr(self.sim.market, "r", 0.0)))
        if target.key in self.faults.quotes:
            v["bid"], v["ask"] = self.faults.quotes[target.key]
        return v

    def _ticks(self, s: Any, req_id: int, sub: Sub, changed_only: bool) -> bytes:
        v = self._values(sub.target)
        types = DELAYED_TICKS if s.md_type in (3, 4) else LIVE_TICKS
        out = []
        for name in ("bid", "ask", "last", "close"):
            if name not in v or (changed_only and _same(sub.last.get(name), v[name])):
                continue
            price = v[name]
            ok = math.isfinite(price) and (price > 0 or name in ("last", "close")
                                           or isinstance(sub.target, str))
            size = 10 if ok and name in ("bid", "ask") else 0
            out.append(tick_price(req_id, types[name], price if ok else 0.0, size))
        if "delta" in v:
            names = ("iv", "delta", "opt", "gamma", "vega", "theta", "und")
            g = tuple(v[k] if math.isfinite(v[k]) else None for k in names)
            if not changed_only or sub.last.get("greeks") != hash(g):
                out.append(tick_option_computation(
                    req_id, types["greeks"], implied_vol=g[0], delta=g[1], opt_price=g[2],
                    gamma=g[3], vega=g[4], theta=g[5], und_price=g[6]))
            v["greeks"] = hash(g)
        sub.last = v
        return b"".join(out)

    # --- account and positions -----------------------------------------------------------------
    def _account_values(self, snap: Snapshot) -> list[tuple[str, str, str]]:
        return account_values(snap, float(self.sim.cash), self._market_value(snap, gross=True))

    def _market_value(self, snap: Snapshot, gross: bool = False) -> float:
        values = (p.qty * self._mark(p.contract) * p.contract.multiplier for p in snap.positions)
        return sum(abs(v) if gross else v for v in values)

    def _summary(self, snap: Snapshot, tags: str) -> list[tuple[str, str, str]]:
        """reqAccountSummary rows for this tag list (see bot.sim.gateway_account)."""
        cash, opt = float(self.sim.cash), self._market_value(snap)
        ledger = {ccy: ledger_rows(snap, cash, opt, ccy) for ccy in ("BASE", "USD")}
        return summary_rows(tags, self._account_values(snap), ledger)

    def _push_account(self, snap: Snapshot) -> None:
        values = self._account_values(snap)
        if tuple(values) == self._account:
            return
        self._account = tuple(values)
        acct = self.accounts[0]
        for s in self.live:
            if s.account_sub:
                s.write(b"".join(update_account_value(k, v, c, acct) for k, v, c in values)
                        + update_account_time(snap.time))
            for rid in s.multi_subs:
                s.write(b"".join(account_update_multi(rid, acct, "", k, v, c)
                                 for k, v, c in values))
            for rid, tags in s.summary_subs.items():  # TWS re-sends the summary, then its end
                s.write(b"".join(account_summary(rid, acct, k, v, c)
                                 for k, v, c in self._summary(snap, tags))
                        + account_summary_end(rid))

    def _mark(self, c: Contract) -> float:
        v = self._values(c)
        bid, ask = v.get("bid", math.nan), v.get("ask", math.nan)
        return (bid + ask) / 2 if bid > 0 and ask > 0 else v.get("last", 0.0)

    def _push_positions(self, snap: Snapshot) -> bool:
        now = {p.contract.key: (p.qty, p.avg_cost) for p in snap.positions}
        before = self._positions
        changed = [k for k in set(now) | set(before) if now.get(k) != before.get(k)]
        if not changed:
            return False
        self._held.update({p.contract.key: p.contract for p in snap.positions})
        for k in changed:
            c = self._held[k]
            qty, avg = now.get(k, (0, 0.0))
            wire, acct, m = self.reg.wire(c), self.accounts[0], c.multiplier
            for s in self.live:
                if s.positions_sub:
                    s.write(position(acct, wire, qty, avg * m))
                if s.account_sub:
                    mark = self._mark(c) if qty else 0.0
                    s.write(update_portfolio(wire, qty, mark, qty * mark * m, avg * m,
                                                 qty * (mark - avg) * m, 0.0, acct))
        self._positions = now
        return True

