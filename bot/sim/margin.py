"""Reg-T margin for SPX and VIX option positions (and a stated approximation for VIX futures).

Rules used (Cboe Margin Manual / Reg-T strategy-based margin, as IB applies it to index
options in a Reg-T account). All amounts are dollars: points x multiplier x contracts.

1. Long option: paid in full (the premium left cash when it was bought); no requirement.
2. Spread: a short option is covered by a long option of the same underlying, trading
   class and right whose expiry is the same or later (verticals, calendars, diagonals).
   Requirement of the pair:
     puts:  max(0, short strike - long strike)
     calls: max(0, long strike - short strike)
   so a debit spread or a same-strike calendar needs nothing beyond its cost, and a credit
   spread (or a diagonal with the long further out of the money) needs its strike width.
   The credit received is cash and is not netted against the requirement.
   Pairing is greedy: puts from the highest short strike down, calls from the lowest up;
   each short takes the eligible long with the smallest requirement (ties: nearest expiry).
3. Iron condor / iron butterfly: a put spread and a call spread on the same underlying with
   the same short and long expiries cannot both lose at expiry, so each such pair of units
   needs the greater of the two requirements, not their sum. Units pair largest to largest.
4. Uncovered short (a short with no eligible long left; e.g. the short far leg of a reverse
   calendar): 100% of the option's current value plus pct x underlying less the
   out-of-the-money amount, at least the option's value plus min_pct x underlying (calls)
   or x strike (puts). SPX (broad-based index): 15% / 10%. VIX options: 20% / 10%, the
   higher rate, as brokers apply to volatility-index options; underlying = spot VIX.
5. VIX futures are not Reg-T (CFE risk margin). Approximation: maintenance 40% of notional
   (future price x 1000) per contract; a long and a short in different months offset each
   other as a calendar spread at half that. Initial = 110% of maintenance.
Initial = maintenance for the option rules 1-4.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from strategies.types import Contract, Position

NAKED = {"SPX": (0.15, 0.10), "VIX": (0.20, 0.10)}
FUT_MAINT_PCT = 0.40
FUT_INIT_MULT = 1.10


@dataclass(frozen=True)
class Margin:
    init: float
    maint: float


UnitKey = tuple[str, str, date, date]  # (symbol, trading class, short expiry, long expiry)
Unit = tuple[UnitKey, str, float, int]  # (condor key, right, cost per unit, count)


@dataclass
class _Lot:
    """A position's contracts not yet paired: `left` of them (a short's count is positive)."""

    contract: Contract
    left: int


def _pair_cost(short: Contract, long: Contract) -> float:
    if short.right == "P":
        return max(0.0, short.strike - long.strike)
    return max(0.0, long.strike - short.strike)


def naked(c: Contract, value: float, underlying: float) -> float:
    """Requirement of one uncovered short option, per unit of underlying (rule 4)."""
    pct, min_pct = NAKED.get(c.symbol, NAKED["SPX"])
    if c.right == "C":
        otm = max(0.0, c.strike - underlying)
        return value + max(pct * underlying - otm, min_pct * underlying)
    otm = max(0.0, underlying - c.strike)
    return value + max(pct * underlying - otm, min_pct * c.strike)


def _options(group: list[Position], mark: Callable[[Contract], float],
             underlying: Mapping[str, float]) -> tuple[float, list[Unit]]:
    """(naked requirement, spread units [(condor key, right, cost per unit, count)])."""
    right = group[0].contract.right
    shorts = [_Lot(p.contract, -p.qty) for p in group if p.qty < 0]
    longs = [_Lot(p.contract, p.qty) for p in group if p.qty > 0]
    shorts.sort(key=lambda s: s.contract.strike, reverse=(right == "P"))
    units: list[Unit] = []
    naked_total = 0.0
    for s in shorts:
        sc = s.contract
        while s.left > 0:
            cands = [lg for lg in longs if lg.left > 0 and lg.contract.expiry >= sc.expiry]
            if not cands:
                u = underlying.get(sc.symbol, sc.strike)
                naked_total += naked(sc, mark(sc), u) * sc.multiplier * s.left
                s.left = 0
                break
            best = min(cands, key=lambda lg: (_pair_cost(sc, lg.contract), lg.contract.expiry,
                                              abs(lg.contract.strike - sc.strike)))
            n = min(s.left, best.left)
            key = (sc.symbol, sc.trading_class, sc.expiry, best.contract.expiry)
            units.append((key, right, _pair_cost(sc, best.contract) * sc.multiplier, n))
            s.left -= n
            best.left -= n
    return naked_total, units


def _condors(units: list[Unit]) -> float:
    """Rule 3: pair put and call spread units of the same key; each pair costs the max."""
    by_key: dict[UnitKey, dict[str, list[float]]] = {}
    for key, right, cost, n in units:
        by_key.setdefault(key, {"P": [], "C": []})[right].extend([cost] * n)
    total = 0.0
    for sides in by_key.values():
        puts, calls = sorted(sides["P"], reverse=True), sorted(sides["C"], reverse=True)
        k = min(len(puts), len(calls))
        total += sum(max(p, c) for p, c in zip(puts[:k], calls[:k]))
        total += sum(puts[k:]) + sum(calls[k:])
    return total


def _futures(futs: list[Position], mark: Callable[[Contract], float]) -> float:
    per = [(FUT_MAINT_PCT * mark(p.contract) * p.contract.multiplier, p.qty) for p in futs]
    longs = sorted([m for m, q in per if q > 0 for _ in range(q)], reverse=True)
    shorts = sorted([m for m, q in per if q < 0 for _ in range(-q)], reverse=True)
    k = min(len(longs), len(shorts))
    paired = sum(0.5 * max(a, b) for a, b in zip(longs[:k], shorts[:k]))
    return paired + sum(longs[k:]) + sum(shorts[k:])


def requirement(positions: Iterable[Position], mark: Callable[[Contract], float],
                underlying: Mapping[str, float]) -> Margin:
    """Initial and maintenance requirement of a set of positions.

    `mark(contract)` gives the current price per unit (option mid, future price);
    `underlying` maps "SPX"/"VIX" to the index level (for uncovered shorts).
    """
    groups: dict[tuple[str, str, str], list[Position]] = {}
    futs: list[Position] = []
    for p in positions:
        if p.qty == 0:
            continue
        c = p.contract
        if c.sec_type == "FUT":
            futs.append(p)
        else:
            groups.setdefault((c.symbol, c.trading_class, c.right), []).append(p)
    options = 0.0
    units: list[Unit] = []
    for group in groups.values():
        n, u = _options(group, mark, underlying)
        options += n
        units += u
    options += _condors(units)
    fut = _futures(futs, mark)
    return Margin(init=options + FUT_INIT_MULT * fut, maint=options + fut)
