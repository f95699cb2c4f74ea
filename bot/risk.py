"""The risk guard: every intent is approved or rejected here, with a reason code and numbers.

Trading states (ACTIVE, REDUCING, HALTED and the daily-loss rule) live in
`bot/risk_state.py`. Every limit comes from `RiskSettings`; the guard does no I/O and returns
events (name, fields) for the caller to log.

Exposure is what is held plus every order that may still fill (the caller's working orders,
and what this guard approved on the same snapshot): each cap holds whichever of them fill.
The max loss is taken at the order's limit price, and again at each price sent.

"Closing" intents are held to what the name promises: every leg must reduce a position held
in the snapshot (less what other working closes will take), and the account must not hold
more uncovered shorts afterwards. Only then are they exempt from the size and exposure caps
(contracts per order and in total, margin, cushion, max loss).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from numbers import Integral
from typing import Any

from bot.broker.base import WhatIf
from bot.config import RiskSettings
from bot.risk_state import ACTIVE, HALTED, REDUCING, STATES, TradingState, _finite, _num
from strategies import instruments
from strategies.params import StrategyParams
from strategies.payoff import (
    Trade,
    closable,
    contracts,
    max_loss,
    uncovered_shorts,
    worst_total,
)
from strategies.payoff import net as _net
from strategies.payoff import split as _split
from strategies.payoff import uncovered as _uncovered
from strategies.types import Contract, Intent, Snapshot

__all__ = ["ACTIVE", "HALTED", "REDUCING", "STATES", "RiskGuard", "Verdict", "max_loss",
           "uncovered_shorts"]

ACTIONS = ("open", "close", "roll", "roll_close", "roll_open", "hedge_open", "hedge_close")
RATE_WINDOW = timedelta(seconds=60)  # "orders per minute" is per 60 s by definition
EPS = 1e-6  # dollars/points: float noise allowed on a limit
REMEMBERED = 256  # approvals whose max loss is checked again at each price sent


@dataclass(frozen=True)
class Verdict:
    approved: bool
    code: str = "ok"
    numbers: dict[str, Any] = field(default_factory=dict)


class RiskGuard(TradingState):
    def __init__(self, settings: RiskSettings,
                 max_steps: int = StrategyParams.model_fields["max_steps"].default) -> None:
        super().__init__(settings)
        self.s = settings
        self.max_steps = max_steps
        # intents approved on the snapshot in hand (same time, same positions): working too
        self._tick: tuple[tuple[Any, ...], dict[str, Intent]] = ((), {})
        self._approved: OrderedDict[str, tuple[Trade, float, float]] = OrderedDict()

    # --- pacing ---------------------------------------------------------------------------------
    def record_order(self, now: datetime) -> None:
        """Count one placement or modification."""
        self._orders = [t for t in self._orders if abs(now - t) < RATE_WINDOW] + [now]

    def orders_last_minute(self, now: datetime) -> int:
        return sum(1 for t in self._orders if abs(now - t) < RATE_WINDOW)

    # --- checks ---------------------------------------------------------------------------------
    def check(self, intent: Intent, snap: Snapshot, what_if: WhatIf | None = None,
              now: datetime | None = None, working: Iterable[Any] = (),
              limit: float | None = None) -> Verdict:
        """Approve or reject one intent. `now` is the clock time (quote age is measured
        from it); it defaults to the snapshot time.

        `working`: the orders placed and not done, each an Intent, an (intent, contracts
        filled that `snap.positions` already holds) pair, or anything with `.intent` (and
        `.filled`); the intents this guard approved on the same snapshot (same time and
        positions) count too, until a later snapshot. Every cap holds whichever of them
        fill. `limit`: the order's first limit price; the max loss is taken there, by
        default at the dearest price `check_price` would accept."""
        s = self.s
        now = snap.time if now is None else now
        bad = _malformed(intent) or ("" if limit is None or _finite(limit)
                                     else f"limit {limit!r} not finite")
        v = self._gate(intent, now) or (
            Verdict(False, "bad_intent", {"problem": bad}) if bad else None)
        if v is not None:
            return v
        quotes, v = self._quotes(intent, snap, now)
        if v is not None:
            return v
        held = _net((p.contract, p.qty) for p in snap.positions)
        orders = self._working(intent, snap, working)
        if not intent.closing:
            naked = uncovered_shorts(intent)
            if naked:
                return Verdict(False, "naked_short", {"uncovered": naked})
            per_order = max(abs(leg.ratio) for leg in intent.legs) * intent.qty
            if per_order > s.max_contracts_per_order:
                return Verdict(False, "contracts_per_order",
                               {"contracts": per_order, "limit": s.max_contracts_per_order})
        # what working orders will close is not there to close again: `left` is held less it
        left = closable(held, [_split(i, held, n)[0] for i, n in orders])
        closing, opening = _split(intent, left)
        for before in (held, left):  # the other orders filled or not
            after = _net([*before.values(), *closing.values(), *opening.values()])
            was = _uncovered(before.values())
            worse = {k: n for k, n in _uncovered(after.values()).items() if n > was.get(k, 0)}
            if worse:
                return Verdict(False, "naked_after_trade", {"uncovered": worse})
        after = _net([*held.values(), *closing.values(), *opening.values()])
        busy = {"working_orders": len(orders)} if orders else {}
        if intent.closing:  # closes only reduce: no size or exposure cap applies
            if opening:
                return Verdict(False, "close_adds_exposure",
                               {"opening": {k: n for k, (_, n) in opening.items()}, **busy})
            return self._approve(intent, snap, None, {"closing": True})
        if not 0 <= intent.step <= self.max_steps:
            return Verdict(False, "roll_step", {"step": intent.step, "limit": self.max_steps})
        trades = [_net((leg.contract, leg.ratio * n) for leg in i.legs) for i, n in orders]
        total = worst_total(after, trades)
        if total > s.max_contracts_total:
            return Verdict(False, "contracts_total",
                           {"held": contracts(held), "after": total,
                            "limit": s.max_contracts_total, **busy})
        acct = snap.account
        nl = acct.net_liquidation
        if not _finite(nl, acct.cushion) or nl <= 0:
            return Verdict(False, "bad_account",
                           {"net_liquidation": _num(nl), "cushion": _num(acct.cushion)})
        if acct.cushion < s.min_cushion:
            return Verdict(False, "cushion", {"cushion": round(acct.cushion, 4),
                                              "limit": s.min_cushion})
        if what_if is None:
            return Verdict(False, "what_if_missing", {"action": intent.action})
        m = what_if.init_margin_after
        if not _finite(m):
            return Verdict(False, "what_if_invalid", {"init_margin_after": _num(m)})
        # the broker's what-if knows nothing of other working orders: their worst expiry
        # value (a defined-risk spread's requirement) is added
        extra = sum(max_loss(_split(i, held, n)[1], 0.0) for i, n in orders if not i.closing)
        cap = s.margin_cap_pct * nl
        if not m + extra <= cap + EPS:
            more = {"working_margin": _num(round(extra, 2))} if orders else {}
            return Verdict(False, "margin_cap", {"margin_after": round(m, 2), "cap": round(cap, 2),
                                                 "net_liquidation": round(nl, 2), **more})
        base = self._cost(intent, closing, opening, quotes)
        price = max(intent.mid, intent.natural) + s.price_tolerance if limit is None else limit
        loss = max_loss(opening, base + _slip(intent, price))
        loss_cap = s.max_campaign_loss_pct * nl
        if not loss <= loss_cap + EPS:
            return Verdict(False, "campaign_max_loss",
                           {"max_loss": round(loss, 2) if _finite(loss) else "unbounded",
                            "limit": round(loss_cap, 2), "net_liquidation": round(nl, 2),
                            "price": round(price, 4)})
        return self._approve(intent, snap, (opening, base, loss_cap), {
            "contracts_after": total, "margin_after": round(m, 2), "margin_cap": round(cap, 2),
            "max_loss": round(loss, 2), "max_loss_cap": round(loss_cap, 2), **busy})

    def _approve(self, intent: Intent, snap: Snapshot, loss: tuple[Trade, float, float] | None,
                 numbers: dict[str, Any]) -> Verdict:
        """Remember an approval: it counts as working for the rest of this snapshot, and its
        max loss is checked again at each price sent."""
        self._tick[1][intent.key] = intent
        if loss is not None:
            self._approved[intent.key] = loss
            self._approved.move_to_end(intent.key)
            while len(self._approved) > REMEMBERED:
                self._approved.popitem(last=False)
        return Verdict(True, "ok", numbers)

    def _working(self, intent: Intent, snap: Snapshot,
                 working: Iterable[Any]) -> list[tuple[Intent, int]]:
        """(intent, contracts still to fill) of every other order that may still fill."""
        if self._tick[0] != (snap.time, snap.positions):
            self._tick = ((snap.time, snap.positions), {})
        out = {k: (i, i.qty) for k, i in self._tick[1].items()}
        for w in working or ():
            if isinstance(w, tuple):
                i, filled = w
            else:
                i, filled = (w, 0) if isinstance(w, Intent) else (w.intent, getattr(w, "filled", 0))
            left = max(int(i.qty) - int(filled), 0)
            out[i.key] = (i, max(left, out.get(i.key, (i, 0))[1]))
        out.pop(intent.key, None)
        return [(i, n) for i, n in out.values() if n > 0]

    def _cost(self, intent: Intent, closing: Trade, opening: Trade,
              quotes: dict[str, float]) -> float:
        """Cost at mid of what the intent opens. A pure open costs its mid; a roll's new legs
        cost their own mids (the close is paid at today's marks, already in net liq)."""
        if closing:
            return sum(n * quotes[k] * c.multiplier for k, (c, n) in opening.items())
        return intent.mid * intent.qty * intent.legs[0].contract.multiplier

    def _quotes(self, intent: Intent, snap: Snapshot,
                now: datetime) -> tuple[dict[str, float], Verdict | None]:
        """Mid per leg; or a rejection for a quote that is missing, NaN, zero, crossed, stale."""
        mids: dict[str, float] = {}
        limit = self.s.max_quote_age_seconds
        for leg in intent.legs:
            c = leg.contract
            q = _quote(c, snap)
            if q is None:
                return mids, Verdict(False, "quote_missing", {"contract": c.key})
            bid, ask, as_of = q
            info = {"contract": c.key, "bid": _num(bid), "ask": _num(ask)}
            if not _finite(bid, ask):
                return mids, Verdict(False, "quote_not_finite", info)
            if ask <= 0 or bid < 0:
                return mids, Verdict(False, "quote_zero", info)
            if bid > ask:
                return mids, Verdict(False, "quote_crossed", info)
            age = (now - as_of).total_seconds()
            if abs(age) > limit:
                return mids, Verdict(False, "quote_stale", {"contract": c.key,
                                     "as_of": as_of.isoformat(), "age_seconds": round(age, 1),
                                     "limit": limit})
            mids[c.key] = (bid + ask) / 2.0
        return mids, None

    def check_price(self, intent: Intent, limit: float) -> Verdict:
        """A limit must lie on the order's tick grid (`strategies.instruments`) and between
        mid and natural, widened by `price_tolerance` (signed per-unit combo prices); an
        opening credit is never sent at a debit; an intent this guard approved keeps its max
        loss within the cap at this price."""
        tol = self.s.price_tolerance
        mid, nat = intent.mid, intent.natural
        if not _finite(limit, mid, nat):
            return Verdict(False, "price_not_finite",
                           {"limit": _num(limit), "mid": _num(mid), "natural": _num(nat)})
        try:
            tick = instruments.combo_tick(intent.legs, limit)
        except ValueError as e:  # a contract condorbot has no rules for
            return Verdict(False, "bad_intent", {"problem": str(e)})
        if not instruments.on_grid(limit, tick):  # the exchange would refuse it
            return Verdict(False, "price_off_tick", {"limit": limit, "tick": tick})
        if not intent.closing and mid < 0 and limit > 0:
            return Verdict(False, "credit_at_debit", {"limit": limit, "mid": mid})
        lo, hi = min(mid, nat) - tol, max(mid, nat) + tol
        if not lo - EPS <= limit <= hi + EPS:
            return Verdict(False, "price_out_of_range", {"limit": limit, "mid": mid,
                           "natural": nat, "low": round(lo, 4), "high": round(hi, 4)})
        remembered = self._approved.get(intent.key)
        if remembered is not None and not intent.closing:
            opening, base, cap = remembered
            loss = max_loss(opening, base + _slip(intent, limit))
            if not loss <= cap + EPS:
                return Verdict(False, "campaign_max_loss",
                               {"max_loss": round(loss, 2), "limit": round(cap, 2),
                                "price": limit})
        return Verdict(True, "ok", {"limit": limit})

    def check_modify(self, intent: Intent, limit: float, now: datetime) -> Verdict:
        """For a walk step (modification in place): state, pacing, price and the max loss
        at the new price again."""
        return self._gate(intent, now) or self.check_price(intent, limit)

    def _gate(self, intent: Intent, now: datetime) -> Verdict | None:
        """Trading state and pacing: the checks an order and a modification share."""
        if self.state == HALTED:
            return Verdict(False, "halted", {"state": HALTED})
        if self.state == REDUCING and not intent.closing:
            return Verdict(False, "reducing_only_closing", {"action": intent.action})
        recent = self.orders_last_minute(now)
        if recent >= self.s.max_orders_per_minute:
            return Verdict(False, "orders_per_minute",
                           {"orders_last_minute": recent, "limit": self.s.max_orders_per_minute})
        return None


def _slip(intent: Intent, price: float) -> float:
    """Dollars paid beyond the mid at limit `price`."""
    return (price - intent.mid) * intent.qty * intent.legs[0].contract.multiplier


def _malformed(intent: Intent) -> str:
    if intent.action not in ACTIONS:
        return f"unknown action {intent.action!r}"
    if not intent.legs:
        return "no legs"
    if not isinstance(intent.qty, Integral) or intent.qty < 1:
        return f"qty {intent.qty!r} is not a positive integer"
    if not _finite(intent.mid, intent.natural):
        return f"mid {intent.mid!r} / natural {intent.natural!r} not finite"
    for leg in intent.legs:
        c = leg.contract
        if not isinstance(leg.ratio, Integral) or leg.ratio == 0:
            return f"ratio {leg.ratio!r} of {c.key}"
        if c.sec_type == "OPT" and (c.right not in ("C", "P") or not _finite(c.strike)
                                    or c.strike <= 0):
            return f"bad option {c.key}"
        if c.sec_type not in ("OPT", "FUT") or c.multiplier <= 0:
            return f"unsupported contract {c.key}"
        try:
            inst = instruments.for_contract(c)
        except ValueError as e:
            return str(e)
        if c.multiplier != inst.multiplier:
            return (f"multiplier {c.multiplier:g} of {c.key}: {inst.trading_class} "
                    f"is {inst.multiplier}")
    return ""


def _quote(c: Contract, snap: Snapshot) -> tuple[float, float, datetime] | None:
    """(bid, ask, quote time) of a contract from the snapshot; None if not there."""
    if c.sec_type == "FUT":
        p = snap.vix_futures.get(c.expiry) if c.symbol == "VIX" else None
        return None if p is None else (float(p), float(p), snap.time)
    chains = {"SPX": snap.chains, "VIX": snap.vix_chains}.get(c.symbol, {})
    ch = chains.get(c.expiry)
    if ch is None or (c.trading_class and ch.trading_class and c.trading_class != ch.trading_class):
        return None
    try:
        bid, ask = ch.quote(c.strike, c.right)
    except KeyError:
        return None
    return bid, ask, ch.as_of or snap.time
