"""Hypothesis stateful tests of the risk guard.

Random sequences of market moves (SPX level, quotes good and bad, quote age), account moves,
clock moves, operator actions, and random intents (condors, rolls, closes, VIX spreads and
futures, random legs — some naked, some mislabelled as closes — random qty, steps, prices and
what-ifs). Approved intents may fill into a positions list. Every limit of an approved intent
is recomputed here from the test's own market model, by other means than the guard's (greedy
matching for coverage, a dense price grid for the max loss), and the trading state is checked
against a model of the daily-loss rules.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from bot.broker.base import WhatIf
from bot.config import RiskSettings
from bot.risk import ACTIVE, HALTED, REDUCING, RiskGuard
from strategies.types import Account, Chain, Contract, Intent, Leg, Position, Snapshot

NY = ZoneInfo("America/New_York")
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
E1, E2, V1 = date(2026, 4, 17), date(2026, 5, 15), date(2026, 3, 18)
SPX_K = [4800.0 + 50 * i for i in range(11)]
VIX_K = [15.0 + 5 * i for i in range(5)]
FUT = Contract("VIX", "FUT", V1, multiplier=1000)
LIMITS = RiskSettings(max_contracts_per_order=4, max_contracts_total=24,
                      max_campaign_loss_pct=0.05, margin_cap_pct=0.3, min_cushion=0.2,
                      daily_loss_limit=0.03, daily_halt_limit=0.05, max_orders_per_minute=5,
                      price_tolerance=0.10, max_quote_age_seconds=120.0)
MAX_STEPS = 3
SEEN: Counter = Counter()  # what the runs exercised, so the test can tell it was not vacuous


def opt(sym: str, exp: date, k: float, right: str) -> Contract:
    return Contract(sym, "OPT", exp, k, right, sym, 100)


def fair(s: float, k: float, right: str, scale: float) -> float:
    intrinsic = max(s - k, 0.0) if right == "C" else max(k - s, 0.0)
    return intrinsic + scale * math.exp(-(((k - s) / (4 * scale)) ** 2)) + 0.05


def covered(items: list[tuple[Contract, int]]) -> bool:
    """Greedy matching, contract by contract: each short (latest expiry first) takes a long of
    the same symbol and right that expires no earlier."""
    groups: dict[tuple, list[list]] = {}
    for c, n in items:
        right = c.right if c.sec_type == "OPT" else "FUT"
        groups.setdefault((c.symbol, right), []).append([c.expiry, n])
    for rows in groups.values():
        longs = sorted(([e, n] for e, n in rows if n > 0), reverse=True)
        for e, n in sorted(((e, -n) for e, n in rows if n < 0), reverse=True):
            for _ in range(n):
                for lg in longs:
                    if lg[0] >= e and lg[1] > 0:
                        lg[1] -= 1
                        break
                else:
                    return False
    return True


def worst_payoff(parts: list[tuple[Contract, int]]) -> float:
    """Lowest expiry value in dollars over a dense grid of underlying levels (one per symbol)."""
    total = 0.0
    for sym, top in (("SPX", 20_000.0), ("VIX", 500.0)):
        rows = [(c, n) for c, n in parts if c.symbol == sym]
        if not rows:
            continue
        grid = np.concatenate([np.linspace(0.0, top, 20_001), [1e7]])
        v = np.zeros_like(grid)
        for c, n in rows:
            if c.sec_type == "FUT":
                v += n * c.multiplier * grid
            elif c.right == "C":
                v += n * c.multiplier * np.maximum(grid - c.strike, 0.0)
            else:
                v += n * c.multiplier * np.maximum(c.strike - grid, 0.0)
        total += float(v.min())
    return total


class GuardMachine(RuleBasedStateMachine):
    @initialize(start=st.sampled_from([3, 0, 4]))
    def setup(self, start) -> None:
        self.guard = RiskGuard(LIMITS, max_steps=MAX_STEPS)
        self.now = START
        self.quote_time: datetime | None = START
        self.spx, self.vix, self.fut = 5050.0, 18.0, 19.0
        self.quotes: dict[str, tuple[float, float]] = {}
        self.reprice()
        self.nl, self.cushion = 1_000_000.0, 0.8
        self.positions: dict[str, tuple[Contract, int]] = {}
        for k, r, n in ((4850.0, "P", 1), (4900.0, "P", -1), (5200.0, "C", -1), (5250.0, "C", 1)):
            if start:  # already holding a condor: `start` x 4 of the 24 contracts allowed
                self.positions[opt("SPX", E1, k, r).key] = (opt("SPX", E1, k, r), n * start)
        self.orders: list[datetime] = []
        # model of the daily-loss state machine
        self.m_state, self.m_day, self.m_start, self.m_last, self.m_auto = ACTIVE, None, None, None, None

    # --- the world ------------------------------------------------------------------------------
    def contracts(self) -> list[Contract]:
        out = [opt("SPX", e, k, r) for e in (E1, E2) for k in SPX_K for r in "CP"]
        return out + [opt("VIX", V1, k, r) for k in VIX_K for r in "CP"] + [FUT]

    def reprice(self) -> None:
        self.quotes = {}
        for c in self.contracts():
            if c.sec_type == "FUT":
                self.quotes[c.key] = (self.fut, self.fut)
                continue
            s, scale = (self.spx, 40.0) if c.symbol == "SPX" else (self.vix, 2.0)
            m = fair(s, c.strike, c.right, scale)
            half = 0.05 + 0.02 * m
            self.quotes[c.key] = (round(max(m - half, 0.0), 2), round(m + half, 2))

    def snapshot(self) -> Snapshot:
        def chain(sym: str, exp: date, ks: list[float]) -> Chain:
            q = lambda r, j: np.array([self.quotes[opt(sym, exp, k, r).key][j] for k in ks])  # noqa: E731
            z = np.zeros(len(ks))
            return Chain(sym, sym, exp, 0.1, np.array(ks), q("C", 0), q("C", 1), q("P", 0),
                         q("P", 1), z, z, z, z, z, z, 100, self.quote_time)

        return Snapshot(self.now, self.spx, self.vix,
                        {e: chain("SPX", e, SPX_K) for e in (E1, E2)},
                        Account(self.nl, cushion=self.cushion),
                        tuple(Position(c, n) for c, n in self.positions.values() if n),
                        {V1: self.fut}, {V1: chain("VIX", V1, VIX_K)})

    @rule(spx=st.floats(4700, 5400), vix=st.floats(10, 60), fut=st.floats(10, 60),
          lag=st.sampled_from([None, 0, 5, 60, 119, 120, None, 121, 600, -600]))
    def move_market(self, spx, vix, fut, lag):
        self.spx, self.vix, self.fut = spx, vix, fut
        self.quote_time = None if lag is None else self.now - timedelta(seconds=lag)
        self.reprice()

    @rule(i=st.integers(0, 10), kind=st.sampled_from(["nan", "zero", "crossed", "nan_ask"]))
    def damage_quotes(self, i, kind):
        """NaN, zero or crossed quotes on every option of one strike until the next move."""
        for c in self.contracts():
            if c.sec_type == "OPT" and c.strike in (SPX_K[i], VIX_K[i % 5]):
                b, a = self.quotes[c.key]
                self.quotes[c.key] = {"nan": (float("nan"), a), "zero": (0.0, 0.0),
                                      "crossed": (a + 0.5, a), "nan_ask": (b, float("nan"))}[kind]

    @rule(factor=st.sampled_from([0.95, 0.97, 0.99, 0.995, 1.0, 1.01, 1.03, float("nan")]),
          cushion=st.sampled_from([0.05, 0.19, 0.2, 0.5, 0.9, float("nan")]))
    def move_account(self, factor, cushion):
        self.nl = self.nl_base() * factor if math.isfinite(factor) else float("nan")
        self.cushion = cushion

    @rule(pct=st.sampled_from([0.029, 0.03, 0.04, 0.05, 0.07]))
    def daily_drop(self, pct):
        """Net liquidation falls `pct` below the day's start, seen at once."""
        if self.m_start is not None:
            self.nl = self.m_start * (1 - pct)
            self.tick(0)

    def nl_base(self) -> float:
        return self.nl if math.isfinite(self.nl) else 1_000_000.0

    @rule(seconds=st.sampled_from([0, 1, 5, 20, 59, 60, 61, 300, 3600, 86_400, 3 * 86_400]))
    def tick(self, seconds):
        day = self.now.astimezone(NY).date()
        self.now += timedelta(seconds=seconds)
        before = self.guard.state
        self.guard.observe(self.snapshot(), self.now)
        self.model_observe()
        # never toward ACTIVE by itself, except REDUCING on a later New York date
        if before == HALTED:
            assert self.guard.state == HALTED
        if before == REDUCING and self.guard.state == ACTIVE:
            assert self.now.astimezone(NY).date() > day
            SEEN["reducing_expired"] += 1
        assert self.guard.state == self.m_state, (self.guard.state, self.m_state)

    def model_observe(self) -> None:
        nl = self.nl
        if not (math.isfinite(nl) and nl > 0):
            return
        day = self.now.astimezone(NY).date()
        if self.m_day is None or day > self.m_day:
            self.m_start = self.m_last if self.m_last is not None else nl
            self.m_day = day
            if self.m_state == REDUCING and self.m_auto is not None and self.m_auto < day:
                self.m_state, self.m_auto = ACTIVE, None
        self.m_last = nl
        loss = self.m_start - nl
        if loss >= LIMITS.daily_halt_limit * self.m_start:
            if self.m_state != HALTED:
                SEEN["halted"] += 1
            self.m_state, self.m_auto = HALTED, None
        elif loss >= LIMITS.daily_loss_limit * self.m_start and self.m_state == ACTIVE:
            self.m_state, self.m_auto = REDUCING, day
            SEEN["reduced"] += 1

    @rule(what=st.sampled_from(["resume", "resume", "resume", "reduce", "halt"]))
    def operator(self, what):
        if what == "resume":
            self.guard.resume()
            if self.m_state != ACTIVE and self.m_last is not None:
                self.m_start = self.m_last
            self.m_state, self.m_auto = ACTIVE, None
        else:
            state = REDUCING if what == "reduce" else HALTED
            self.guard.set_state(state, "operator")
            self.m_state, self.m_auto = state, None

    # --- intents -----------------------------------------------------------------------------------
    def mid_natural(self, legs) -> tuple[float, float]:
        mid = nat = 0.0
        for leg in legs:
            b, a = self.quotes[leg.contract.key]
            mid += leg.ratio * (b + a) / 2
            nat += leg.ratio * (a if leg.ratio > 0 else b)
        return mid, nat

    def condor(self, data, exp: date, n: int) -> list[Leg]:
        sp = data.draw(st.integers(1, 4))
        sc = data.draw(st.integers(sp + 1, 9))
        lp, lc = sp - data.draw(st.integers(1, sp)), sc + data.draw(st.integers(1, 10 - sc))
        return [Leg(opt("SPX", exp, SPX_K[lp], "P"), n), Leg(opt("SPX", exp, SPX_K[sp], "P"), -n),
                Leg(opt("SPX", exp, SPX_K[sc], "C"), -n), Leg(opt("SPX", exp, SPX_K[lc], "C"), n)]

    def draw_intent(self, data, kind: str) -> Intent:
        held = [(c, n) for c, n in self.positions.values() if n]
        qty = data.draw(st.integers(1, 6))
        action = {"condor": "open", "random": "open", "close": "close", "roll": "roll",
                  "vix": "hedge_open", "future": "hedge_open", "calendar": "hedge_open"}[kind]
        if kind == "condor":
            legs = self.condor(data, data.draw(st.sampled_from([E1, E2])), 1)
        elif kind == "random":
            cs = self.contracts()
            legs = [Leg(cs[data.draw(st.integers(0, len(cs) - 1))],
                        data.draw(st.sampled_from([-2, -1, 1, 2]))) for _ in range(data.draw(st.integers(1, 4)))]
            action = data.draw(st.sampled_from(["open", "roll", "hedge_open", "close", "hedge_close"]))
        elif kind == "close" and held:
            action = data.draw(st.sampled_from(["close", "hedge_close"]))
            if data.draw(st.booleans()):  # everything held, in one combo
                legs, qty = [Leg(c, -n) for c, n in held], 1
            else:
                pick = data.draw(st.lists(st.sampled_from(held), min_size=1, max_size=len(held),
                                          unique=True))
                legs = [Leg(c, -int(math.copysign(1, n))) for c, n in pick]
                qty = data.draw(st.integers(1, max(abs(n) for _, n in pick) + 2))
        elif kind == "roll":
            n = data.draw(st.integers(1, 6))
            legs = [Leg(c, -n0) for c, n0 in held] + self.condor(data, E2, n)
            qty = 1
        elif kind == "calendar":  # calendars and diagonals, some reversed (short outlives long)
            ka, kb = data.draw(st.integers(0, 10)), data.draw(st.integers(0, 10))
            ea, eb = data.draw(st.sampled_from([(E1, E2), (E2, E1), (E1, E1)]))
            r = data.draw(st.sampled_from("CP"))
            legs = [Leg(opt("SPX", ea, SPX_K[ka], r), -1), Leg(opt("SPX", eb, SPX_K[kb], r), 1)]
        elif kind == "vix":
            lo = data.draw(st.integers(0, 3))
            hi = data.draw(st.integers(lo + 1, 4))
            legs = [Leg(opt("VIX", V1, VIX_K[lo], "C"), 1), Leg(opt("VIX", V1, VIX_K[hi], "C"), -1)]
        else:
            legs = [Leg(FUT, data.draw(st.sampled_from([1, -1])))]
        if not legs:
            legs = self.condor(data, E1, 1)
        mid, nat = self.mid_natural(legs)
        if not (math.isfinite(mid) and math.isfinite(nat)) or data.draw(st.booleans()):
            mid = data.draw(st.floats(-30, 30))
            nat = mid + data.draw(st.floats(0, 2))
        step = data.draw(st.sampled_from([0, 0, 1, 2, 3, 4, -1]))
        return Intent(f"k{len(self.orders)}:{int(self.now.timestamp())}", "c", action, tuple(legs), qty,
                      float(mid), float(nat), step)

    @rule(data=st.data())
    def open_condor(self, data):
        self.try_intent(data, "condor")

    @precondition(lambda self: any(n for _, n in self.positions.values()))
    @rule(data=st.data())
    def close_some(self, data):
        self.try_intent(data, "close")

    @rule(data=st.data())
    def roll(self, data):
        self.try_intent(data, "roll")

    @rule(data=st.data(), kind=st.sampled_from(["vix", "calendar", "future", "random"]))
    def other(self, data, kind):
        self.try_intent(data, kind)

    def try_intent(self, data, kind: str) -> None:
        intent = self.draw_intent(data, kind)
        snap = self.snapshot()
        what_if = None
        if data.draw(st.integers(0, 4)) < 4:
            m = data.draw(st.floats(0, 0.5)) * self.nl_base()
            what_if = WhatIf(m, m, m, m)
        v = self.guard.check(intent, snap, what_if, self.now)
        SEEN[("approved" if v.approved else v.code, intent.action)] += 1
        if not v.approved:
            assert v.code and v.code == v.code.lower() and " " not in v.code
            return
        self.assert_within_limits(intent, snap, what_if)
        limit = data.draw(st.floats(-40, 40) | st.sampled_from([intent.mid, intent.natural]))
        p = self.guard.check_price(intent, limit)
        if p.approved:
            lo, hi = sorted((intent.mid, intent.natural))
            assert lo - LIMITS.price_tolerance - 1e-6 <= limit <= hi + LIMITS.price_tolerance + 1e-6
            assert intent.closing or not (intent.mid < 0 < limit)
        self.orders.append(self.now)
        self.guard.record_order(self.now)
        if data.draw(st.integers(0, 3)):  # filled whole, else cancelled unfilled
            for c, q in self.trade(intent).items():
                k = c.key
                self.positions[k] = (c, self.positions.get(k, (c, 0))[1] + q)
            SEEN["filled", intent.action] += 1

    def trade(self, intent: Intent) -> dict[Contract, int]:
        out: dict[Contract, int] = {}
        for leg in intent.legs:
            out[leg.contract] = out.get(leg.contract, 0) + leg.ratio * intent.qty
        return out

    def assert_within_limits(self, intent: Intent, snap: Snapshot, what_if) -> None:
        s = LIMITS
        assert self.guard.state != HALTED
        assert self.guard.state == ACTIVE or intent.closing
        assert max(abs(leg.ratio) for leg in intent.legs) * intent.qty <= s.max_contracts_per_order
        recent = [t for t in self.orders if self.now - timedelta(seconds=60) < t <= self.now]
        assert len(recent) < s.max_orders_per_minute
        for leg in intent.legs:
            b, a = self.quotes[leg.contract.key]
            assert math.isfinite(b) and math.isfinite(a) and a > 0 and 0 <= b <= a
            if leg.contract.sec_type == "OPT":
                t = self.quote_time or self.now
                assert abs((self.now - t).total_seconds()) <= s.max_quote_age_seconds
        trade = self.trade(intent)
        before = {c: n for c, n in self.positions.values() if n}
        after = dict(before)
        for c, q in trade.items():
            after[c] = after.get(c, 0) + q
        if intent.closing:
            for c, q in trade.items():  # every leg reduces a held position, never flips it
                h = before.get(c, 0)
                assert q * h < 0 and abs(q) <= abs(h), (c.key, q, h)
            return
        assert covered([(leg.contract, leg.ratio) for leg in intent.legs])
        assert 0 <= intent.step <= MAX_STEPS
        assert sum(abs(n) for n in after.values()) <= s.max_contracts_total
        nl = self.nl
        assert math.isfinite(nl) and self.cushion >= s.min_cushion
        assert what_if is not None and what_if.init_margin_after <= s.margin_cap_pct * nl + 1e-6
        # max loss of what opens: legs (or parts of legs) not trading against a held position
        opening, closes = [], False
        for c, q in trade.items():
            h = before.get(c, 0)
            shut = int(math.copysign(min(abs(q), abs(h)), q)) if q * h < 0 else 0
            closes |= shut != 0
            if q - shut:
                opening.append((c, q - shut))
        if closes:
            cost = sum(n * c.multiplier * sum(self.quotes[c.key]) / 2 for c, n in opening)
        else:
            cost = intent.mid * intent.qty * intent.legs[0].contract.multiplier
        loss = cost - worst_payoff(opening)
        assert loss <= s.max_campaign_loss_pct * nl + 1e-6, (loss, nl)
        SEEN["max_loss_checked"] += 1

    # --- invariants over the positions ---------------------------------------------------------
    @invariant()
    def positions_within_caps(self):
        held = [(c, n) for c, n in self.positions.values() if n]
        assert sum(abs(n) for _, n in held) <= LIMITS.max_contracts_total
        assert covered(held), "a naked short reached the positions"

    @rule()
    def walk_step(self):
        """The executor modifies a working order: it counts against the pace."""
        self.orders.append(self.now)
        self.guard.record_order(self.now)

    @rule(data=st.data())
    def try_modify(self, data):
        intent = self.draw_intent(data, data.draw(st.sampled_from(["condor", "close", "roll"])))
        v = self.guard.check_modify(intent, intent.mid, self.now)
        if self.guard.state == HALTED:
            assert not v.approved
        if self.guard.state == REDUCING and not intent.closing:
            assert not v.approved
        if v.approved:
            recent = [t for t in self.orders if self.now - timedelta(seconds=60) < t <= self.now]
            assert len(recent) < LIMITS.max_orders_per_minute


def test_guard_state_machine():
    SEEN.clear()
    run_state_machine_as_test(GuardMachine, settings=settings(
        max_examples=300, stateful_step_count=50, deadline=None, derandomize=True,
        suppress_health_check=list(HealthCheck)))
    # the run must have exercised approvals of each kind and the interesting rejections
    for action in ("open", "roll", "close", "hedge_open"):
        assert SEEN["approved", action] > 0, (action, SEEN)
    assert SEEN["filled", "open"] > 0 and SEEN["max_loss_checked"] > 0, SEEN
    codes = {k[0] for k in SEEN if isinstance(k, tuple)}
    for code in ("naked_short", "halted", "reducing_only_closing", "contracts_total",
                 "campaign_max_loss", "orders_per_minute"):
        assert code in codes, (code, sorted(codes))
    assert SEEN["halted"] > 0 and SEEN["reduced"] > 0


TestGuard = GuardMachine.TestCase
TestGuard.settings = settings(max_examples=25, stateful_step_count=30, deadline=None,
                              suppress_health_check=list(HealthCheck))
