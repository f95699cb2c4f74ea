"""Payoff algebra of option and futures combos at expiry: pure math, no broker, no config.

A position is a `Trade`: contract key -> (contract, signed contracts). Values are in dollars
(contract multiplier included). Options are worth their intrinsic value at expiry; a later-
dated long counts only its intrinsic value too, which is conservative for calendars and
diagonals. VIX futures are worth multiplier x level. Underlyings are independent: an SPX
leg never covers or offsets a VIX leg.

Used by the risk guard (`bot/risk.py`) for coverage ("no naked shorts") and max loss.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from strategies.types import Contract, Intent

Trade = dict[str, tuple[Contract, int]]  # contract key -> (contract, signed contracts)


def _group(c: Contract) -> tuple[str, str]:
    return (c.symbol, c.right if c.sec_type == "OPT" else c.sec_type)


def uncovered(items: Iterable[tuple[Contract, int]]) -> dict[str, int]:
    """Short contracts not covered by longs of the same underlying and right expiring no
    earlier, per group "SYMBOL:RIGHT:YYYYMMDD" (the latest expiry where the shortfall is).

    A short expiring at T can only be covered by a long expiring at T or later, so the
    shortfall is max over T of (shorts expiring >= T) - (longs expiring >= T)."""
    by: dict[tuple[str, str], list[tuple[date, int]]] = defaultdict(list)
    for c, n in items:
        if n:
            by[_group(c)].append((c.expiry, n))
    out: dict[str, int] = {}
    for (sym, right), rows in by.items():
        for t in sorted({e for e, n in rows if n < 0}, reverse=True):
            short = sum(-n for e, n in rows if e >= t and n < 0)
            long = sum(n for e, n in rows if e >= t and n > 0)
            if short > long:
                k = f"{sym}:{right}:{t:%Y%m%d}"
                out[k] = max(out.get(k, 0), short - long)
    return out


def uncovered_shorts(intent: Intent) -> list[str]:
    """Short legs of the combo (options and futures) not covered, counted in contracts, by
    long legs of the same underlying and right in the same combo expiring no earlier.
    A 1x2 ratio spread and a short call "covered" by an earlier-expiring call are refused."""
    return sorted(uncovered((leg.contract, leg.ratio) for leg in intent.legs))


def net(items: Iterable[tuple[Contract, int]]) -> Trade:
    """Signed contracts per contract key, summed."""
    out: Trade = {}
    for c, n in items:
        out[c.key] = (c, out.get(c.key, (c, 0))[1] + int(n))
    return out


def split(intent: Intent, held: Trade, qty: int | None = None) -> tuple[Trade, Trade]:
    """(closing, opening) parts of `qty` units of the intent (default: all of it), per
    contract, in signed contracts: the part of a leg that trades against a held position of
    the opposite sign closes, the rest opens."""
    qty = intent.qty if qty is None else qty
    closing: Trade = {}
    opening: Trade = {}
    for k, (c, q) in net((leg.contract, leg.ratio * qty) for leg in intent.legs).items():
        h = held.get(k, (c, 0))[1]
        part = int(math.copysign(min(abs(q), abs(h)), q)) if q * h < 0 else 0
        if part:
            closing[k] = (c, part)
        if q - part:
            opening[k] = (c, q - part)
    return closing, opening


def expiry_value(rows: Iterable[tuple[Contract, int]], s: float) -> float:
    """Dollar value at expiry of `rows` (all on one underlying) with the underlying at `s`."""
    v = 0.0
    for c, n in rows:
        if c.sec_type == "FUT":
            v += n * c.multiplier * s
        elif c.right == "C":
            v += n * c.multiplier * max(s - c.strike, 0.0)
        else:
            v += n * c.multiplier * max(c.strike - s, 0.0)
    return v


def max_loss(parts: Trade, cost: float) -> float:
    """Worst loss in dollars of holding `parts` (signed contracts) bought for `cost` dollars
    (debit > 0), at expiry, with every leg at intrinsic value (later-dated longs count only
    their intrinsic value: conservative for calendars and diagonals). inf if unbounded."""
    worst = 0.0
    by: dict[str, list[tuple[Contract, int]]] = defaultdict(list)
    for c, n in parts.values():
        by[c.symbol].append((c, n))
    for rows in by.values():
        slope = sum(n * c.multiplier for c, n in rows if c.sec_type == "FUT" or c.right == "C")
        if slope < 0:
            return math.inf
        points = {0.0} | {c.strike for c, _ in rows if c.sec_type == "OPT"}  # the kinks
        worst += min(expiry_value(rows, s) for s in points)
    return cost - worst


def contracts(parts: Trade) -> int:
    """Contracts held, long and short alike."""
    return sum(abs(n) for _, n in parts.values())


def worst_total(base: Trade, orders: list[Trade], exact_up_to: int = 8) -> int:
    """Most contracts held (`contracts`) if any of `orders` fill, in any combination, on top
    of `base`. The count is convex in each order's filled share, so the worst case is an
    order filled whole or not at all: every combination is tried for up to `exact_up_to`
    orders; beyond that each contract takes its own worst side (an upper bound)."""
    if len(orders) > exact_up_to:
        worst = 0
        keys = set(base).union(*orders)
        for k in keys:
            n = base.get(k, (None, 0))[1]
            up = n + sum(o[k][1] for o in orders if k in o and o[k][1] > 0)
            down = n + sum(o[k][1] for o in orders if k in o and o[k][1] < 0)
            worst += max(abs(up), abs(down))
        return worst
    worst = contracts(base)
    for mask in range(1, 1 << len(orders)):
        chosen = [p for i, o in enumerate(orders) if mask >> i & 1 for p in o.values()]
        worst = max(worst, contracts(net([*base.values(), *chosen])))
    return worst


def closable(held: Trade, closing: list[Trade]) -> Trade:
    """Held positions less what `closing` parts (of orders already working) would close,
    never past flat: what is left for another closing order."""
    out: Trade = {}
    for k, (c, h) in held.items():
        used = sum(abs(part[k][1]) for part in closing if k in part)
        left = max(abs(h) - used, 0)
        if left:
            out[k] = (c, int(math.copysign(left, h)))
    return out
