"""Hypothesis stateful tests of the risk guard.

Random sequences of market moves (SPX level, quotes good and bad, quote age), account moves,
clock moves, operator actions, restarts (a new guard restored from the old one's export), and
random intents (condors, rolls, closes, VIX spreads and futures, random legs — some naked,
some mislabelled as closes — random qty, steps, prices, limits and what-ifs). An approved
intent becomes a working order, which later fills in parts, walks its price or is cancelled;
every check is told the working orders. Each limit of an approved intent is recomputed from
the test's own market model (test_risk_world.py) by other means than the guard's, and the
trading state is checked against a model of the two flags and the daily-loss rules.

Invariants: held + working exposure never exceeds `max_contracts_total`, whichever working
orders fill; no naked short reaches the positions; no close is ever blocked by a size cap,
and a close of everything not already being closed passes whenever trading is not halted,
its quotes are good and the pace allows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule, run_state_machine_as_test
from test_risk_world import (
    LIMITS,
    MAX_STEPS,
    NY,
    SEEN,
    SIZE_CAPS,
    World,
    covered,
    trade,
    worst_exposure,
    worst_payoff,
)

from bot.broker.base import WhatIf
from bot.risk import ACTIVE, HALTED, REDUCING, STATES, RiskGuard
from strategies.instruments import combo_tick
from strategies.types import Intent


def stricter(*states: str) -> str:
    return max(states, key=STATES.index)


class GuardMachine(World):
    # --- trading state -----------------------------------------------------------------------
    def m_state(self) -> str:
        return stricter(self.m_held, self.m_daily)

    @rule(pct=st.sampled_from([0.029, 0.03, 0.04, 0.05, 0.07]))
    def daily_drop(self, pct):
        """Net liquidation falls `pct` below the day's start, seen at once."""
        if self.m_start is not None:
            self.nl = self.m_start * (1 - pct)
            self.tick(0)

    @rule(seconds=st.sampled_from([0, 1, 5, 20, 59, 60, 61, 300, 3600, 86_400, 3 * 86_400]))
    def tick(self, seconds):
        day = self.now.astimezone(NY).date()
        self.now += timedelta(seconds=seconds)
        before = self.guard.state
        self.guard.observe(self.snapshot(), self.now)
        self.model_observe()
        # never toward ACTIVE by itself, except the daily REDUCING on a later New York date
        if before == HALTED:
            assert self.guard.state == HALTED
        if before == REDUCING and self.guard.state == ACTIVE:
            assert self.now.astimezone(NY).date() > day
            SEEN["reducing_expired"] += 1
        assert self.guard.state == self.m_state(), (self.guard.state, self.m_state())
        assert self.guard.flags == {"operator": self.m_held, "daily": self.m_daily}

    def model_observe(self) -> None:
        nl = self.nl
        if not (math.isfinite(nl) and nl > 0):
            return
        day = self.now.astimezone(NY).date()
        if self.m_day is None or day > self.m_day:
            self.m_start = self.m_last if self.m_last is not None else nl
            self.m_day = day
            if self.m_daily == REDUCING and self.m_auto is not None and self.m_auto < day:
                if self.m_held == REDUCING:
                    SEEN["operator_reducing_outlived_daily"] += 1
                self.m_daily, self.m_auto = ACTIVE, None
        self.m_last = nl
        loss = self.m_start - nl
        if loss >= LIMITS.daily_halt_limit * self.m_start:
            if self.m_daily != HALTED:
                SEEN["halted"] += 1
            self.m_daily, self.m_auto = HALTED, None
        elif loss >= LIMITS.daily_loss_limit * self.m_start and self.m_daily == ACTIVE:
            self.m_daily, self.m_auto = REDUCING, day
            SEEN["reduced"] += 1

    @rule(what=st.sampled_from(["resume", "resume", "resume", "reduce", "halt"]))
    def operator(self, what):
        if what == "resume":
            if self.m_state() != ACTIVE and self.m_last is not None:
                self.m_start = self.m_last
            self.guard.resume()
            self.m_held, self.m_daily, self.m_auto = ACTIVE, ACTIVE, None
        else:
            state = REDUCING if what == "reduce" else HALTED
            self.guard.set_state(state, "operator")
            self.m_held = stricter(self.m_held, state)
        assert self.guard.state == self.m_state()

    @rule(now=st.integers(0, 3))
    def restart(self, now):
        """A new process: the guard comes back from its export, as JSON, and nothing else."""
        if now:
            return  # now and then only
        saved = json.loads(json.dumps(self.guard.export()))
        self.guard = RiskGuard(LIMITS, max_steps=MAX_STEPS)
        self.guard.restore(saved)
        for w in self.working.values():
            w[2] = None  # approved by the old process: its max-loss record went with it
        assert self.guard.state == self.m_state()
        SEEN["restarts"] += 1

    # --- intents -----------------------------------------------------------------------------
    @precondition(lambda self: len(self.working) < 6)
    @rule(data=st.data())
    def open_condor(self, data):
        self.try_intent(data, "condor")

    @precondition(lambda self: any(self.closable().values()) and len(self.working) < 6)
    @rule(data=st.data())
    def close_some(self, data):
        self.try_intent(data, "close")

    @precondition(lambda self: len(self.working) < 6)
    @rule(data=st.data())
    def roll(self, data):
        self.try_intent(data, "roll")

    @precondition(lambda self: len(self.working) < 6)
    @rule(data=st.data(), kind=st.sampled_from(["vix", "calendar", "future", "random"]))
    def other(self, data, kind):
        self.try_intent(data, kind)

    def working_for_guard(self, data) -> list:
        """The working orders as the daemon may pass them: with the fills the positions
        already hold, or as bare intents (counted as not filled at all)."""
        if data.draw(st.booleans()):
            return [(i, filled) for i, filled, _ in self.working.values()]
        return [i for i, _, _ in self.working.values()]

    def quotes_ok(self, intent: Intent) -> bool:
        for leg in intent.legs:
            b, a = self.quotes[leg.contract.key]
            if not (math.isfinite(b) and math.isfinite(a) and a > 0 and 0 <= b <= a):
                return False
            t = self.now if leg.contract.sec_type == "FUT" else (self.quote_time or self.now)
            if abs((self.now - t).total_seconds()) > LIMITS.max_quote_age_seconds:
                return False
        return True

    def leaves_covered(self, intent: Intent) -> bool:
        """No naked short after the intent, whether the other working orders fill or not."""
        for base in (self.held(), self.closable()):
            after = dict(base)
            for c, q in trade(intent).items():
                after[c] = after.get(c, 0) + q
            if not covered([(c, n) for c, n in after.items() if n]):
                return False
        return True

    def recent(self) -> int:
        return sum(1 for t in self.orders if abs(self.now - t) < timedelta(seconds=60))

    def try_intent(self, data, kind: str) -> None:
        intent = self.draw_intent(data, kind)
        snap = self.snapshot()
        what_if = None
        if data.draw(st.integers(0, 4)) < 4:
            m = data.draw(st.floats(0, 0.5)) * self.nl_base()
            what_if = WhatIf(m, m, m, m)
        lo, hi = sorted((intent.mid, intent.natural))
        tol = LIMITS.price_tolerance
        limit = data.draw(st.none() | st.just(intent.mid) | st.floats(lo - tol, hi + tol))
        whole_close = intent.closing and trade(intent) == {
            c: -n for c, n in self.closable().items() if n} and self.leaves_covered(intent)
        v = self.guard.check(intent, snap, what_if, self.now, self.working_for_guard(data), limit)
        SEEN[("approved" if v.approved else v.code, intent.action)] += 1
        if intent.closing:
            assert v.approved or v.code not in SIZE_CAPS, v  # closes: never a size cap
            if whole_close and self.guard.state != HALTED and self.quotes_ok(intent) \
                    and self.recent() < LIMITS.max_orders_per_minute:
                assert v.approved, v
                SEEN["whole_close_approved"] += 1
        if not v.approved:
            assert v.code and v.code == v.code.lower() and " " not in v.code
            return
        record = self.assert_within_limits(intent, what_if, limit)
        self.orders.append(self.now)
        self.guard.record_order(self.now)
        self.working[intent.key] = [intent, 0, record]
        how = data.draw(st.sampled_from(["whole", "part", "working"]))
        if how == "whole" or intent.qty == 1 and how == "part":  # else left for the rules below
            self.fill_order(intent.key, intent.qty)
        elif how == "part":
            self.fill_order(intent.key, data.draw(st.integers(1, intent.qty - 1)))

    def opening_and_cost(self, intent: Intent) -> tuple[list, float]:
        """What the intent opens (after what other working orders close) and its cost at mid."""
        left = self.closable()
        opening, closes = [], False
        for c, q in trade(intent).items():
            h = left.get(c, 0)
            shut = int(math.copysign(min(abs(q), abs(h)), q)) if q * h < 0 else 0
            closes |= shut != 0
            if q - shut:
                opening.append((c, q - shut))
        if closes:
            cost = sum(n * c.multiplier * sum(self.quotes[c.key]) / 2 for c, n in opening)
        else:
            cost = intent.mid * intent.qty * intent.legs[0].contract.multiplier
        return opening, cost

    def assert_within_limits(self, intent: Intent, what_if, limit) -> tuple | None:
        s = LIMITS
        assert self.guard.state != HALTED
        assert self.guard.state == ACTIVE or intent.closing
        assert self.recent() < s.max_orders_per_minute
        assert self.quotes_ok(intent)
        before = self.held()
        if intent.closing:
            left = self.closable()
            for c, q in trade(intent).items():  # every leg reduces what is left, never flips it
                h = left.get(c, 0)
                assert q * h < 0 and abs(q) <= abs(h), (c.key, q, h)
            return None
        assert max(abs(leg.ratio) for leg in intent.legs) * intent.qty <= s.max_contracts_per_order
        assert covered([(leg.contract, leg.ratio) for leg in intent.legs])
        assert 0 <= intent.step <= MAX_STEPS
        orders = [trade(i, i.qty - f) for i, f, _ in self.working.values()]
        assert worst_exposure(before, [*orders, trade(intent)]) <= s.max_contracts_total
        nl = self.nl
        assert math.isfinite(nl) and self.cushion >= s.min_cushion
        assert what_if is not None and what_if.init_margin_after <= s.margin_cap_pct * nl + 1e-6
        opening, cost = self.opening_and_cost(intent)
        price = max(intent.mid, intent.natural) + s.price_tolerance if limit is None else limit
        slip = (price - intent.mid) * intent.qty * intent.legs[0].contract.multiplier
        cap = s.max_campaign_loss_pct * nl
        assert cost + slip - worst_payoff(opening) <= cap + 1e-6, (cost + slip, nl)
        SEEN["max_loss_checked"] += 1
        return opening, cost, cap

    # --- working orders ------------------------------------------------------------------------
    def pick(self, data) -> str | None:
        keys = sorted(self.working)
        return data.draw(st.sampled_from(keys)) if keys else None

    @rule(data=st.data())
    def fill(self, data):
        """Part (or all) of a working order fills."""
        key = self.pick(data)
        if key is not None:
            w = self.working[key]
            self.fill_order(key, data.draw(st.integers(1, w[0].qty - w[1])))

    def fill_order(self, key: str, n: int) -> None:
        w = self.working[key]
        for c, q in trade(w[0], n).items():
            self.positions[c.key] = (c, self.positions.get(c.key, (c, 0))[1] + q)
        w[1] += n
        if w[1] == w[0].qty:
            del self.working[key]
        SEEN["filled", w[0].action] += 1
        SEEN["partial_fill"] += w[1] < w[0].qty

    @rule(data=st.data())
    def cancel(self, data):
        key = self.pick(data)
        if key is not None:  # the broker confirms it on a later snapshot
            self.working.pop(key)
            self.now += timedelta(seconds=1)
            SEEN["cancelled"] += 1

    @rule(data=st.data())
    def walk(self, data):
        """The executor sends a working order's next price: state, pace, price, max loss."""
        key = self.pick(data)
        if key is None:
            return
        intent, _, record = self.working[key]
        tol = LIMITS.price_tolerance
        lo, hi = sorted((intent.mid, intent.natural))
        price = data.draw(st.floats(lo - tol, hi + tol) | st.sampled_from([intent.natural,
                                                                             hi + tol]))
        tick = combo_tick(intent.legs, price)  # the executor sends prices on the grid
        price = round(round(price / tick) * tick, 2)
        v = self.guard.check_modify(intent, price, self.now)
        SEEN["walk", v.code] += 1
        if self.guard.state == HALTED or (self.guard.state == REDUCING and not intent.closing):
            assert not v.approved
        if not v.approved:
            return
        assert self.recent() < LIMITS.max_orders_per_minute
        if record is not None:
            opening, cost, cap = record
            slip = (price - intent.mid) * intent.qty * intent.legs[0].contract.multiplier
            assert cost + slip - worst_payoff(opening) <= cap + 1e-6
            SEEN["walk_max_loss_checked"] += 1
        self.orders.append(self.now)
        self.guard.record_order(self.now)

    # --- invariants over the positions and the working orders ----------------------------------
    @invariant()
    def exposure_within_caps(self):
        orders = [trade(i, i.qty - f) for i, f, _ in self.working.values()]
        assert worst_exposure(self.held(), orders) <= LIMITS.max_contracts_total

    @invariant()
    def positions_covered(self):
        assert covered(list(self.held().items())), "a naked short reached the positions"


@contextmanager
def _no_local_constants() -> Iterator[None]:
    """Hypothesis mixes literals from every imported local module (its "local constants",
    hypothesis.internal.conjecture.providers) into its draws, derandomized or not: the
    machine's path then depends on which test modules the process has imported. Measured:
    alone this run met campaign_max_loss 6 times (84 restarts); with every test module
    collected first, as a full run's worker has, 0 times (19 restarts). The pool is pinned
    empty here, so the run is the same wherever it runs (a no-op if Hypothesis moves it)."""
    try:
        from hypothesis.internal.conjecture import providers
        real, cache, empty = (providers._get_local_constants, providers.CONSTANTS_CACHE,
                              providers.Constants())
    except (ImportError, AttributeError):
        yield
        return
    cache.cache.clear()  # allowed constants computed with the import-dependent pool
    providers._get_local_constants = lambda: empty
    try:
        yield
    finally:
        providers._get_local_constants = real
        cache.cache.clear()


def test_guard_state_machine():
    SEEN.clear()
    with _no_local_constants():
        run_state_machine_as_test(GuardMachine, settings=settings(
            max_examples=120, stateful_step_count=40, deadline=None, derandomize=True,
            suppress_health_check=list(HealthCheck)))
    # the run must have exercised approvals of each kind and the interesting rejections
    for action in ("open", "roll", "close", "hedge_open"):
        assert SEEN["approved", action] > 0, (action, SEEN)
    assert SEEN["filled", "open"] > 0 and SEEN["max_loss_checked"] > 0, SEEN
    codes = {k[0] for k in SEEN if isinstance(k, tuple)}
    for code in ("naked_short", "halted", "reducing_only_closing", "contracts_total",
                 "campaign_max_loss", "orders_per_minute", "close_adds_exposure"):
        assert code in codes, (code, sorted(codes))
    assert SEEN["halted"] > 0 and SEEN["reduced"] > 0
    for seen in ("partial_fill", "cancelled", "restarts", "whole_close_approved",
                 "walk_max_loss_checked"):
        assert SEEN[seen] > 0, (seen, SEEN)


TestGuard = GuardMachine.TestCase
TestGuard.settings = settings(max_examples=25, stateful_step_count=30, deadline=None,
                              suppress_health_check=list(HealthCheck))
