"""The world the stateful guard test trades in: a market model, intents drawn from it, and
the test's own arithmetic (coverage by greedy matching, max loss on a dense price grid,
exposure over every combination of working orders) to check the guard by other means.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from itertools import combinations
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from bot.config import RiskSettings
from bot.risk import ACTIVE, RiskGuard
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
SIZE_CAPS = {"contracts_per_order", "contracts_total", "margin_cap", "cushion", "bad_account",
             "what_if_missing", "what_if_invalid", "campaign_max_loss", "roll_step"}


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


def trade(intent: Intent, qty: int | None = None) -> dict[Contract, int]:
    """Signed contracts per contract of `qty` units (default all) of the intent."""
    n = intent.qty if qty is None else qty
    out: dict[Contract, int] = {}
    for leg in intent.legs:
        out[leg.contract] = out.get(leg.contract, 0) + leg.ratio * n
    return out


def worst_exposure(held: dict[Contract, int], orders: list[dict[Contract, int]]) -> int:
    """Most contracts held over every combination of the orders filling whole."""
    worst = 0
    for r in range(len(orders) + 1):
        for chosen in combinations(orders, r):
            pos = dict(held)
            for o in chosen:
                for c, q in o.items():
                    pos[c] = pos.get(c, 0) + q
            worst = max(worst, sum(abs(n) for n in pos.values()))
    return worst


class World(RuleBasedStateMachine):
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
        self.seq = 0
        # orders placed and not done: key -> [intent, filled, what the max loss is checked by]
        self.working: dict[str, list] = {}
        # model of the trading state: the operator's flag and the daily-loss rule's
        self.m_held, self.m_daily = ACTIVE, ACTIVE
        self.m_day, self.m_start, self.m_last, self.m_auto = None, None, None, None

    def held(self) -> dict[Contract, int]:
        return {c: n for c, n in self.positions.values() if n}

    def closable(self) -> dict[Contract, int]:
        """Held, less what working orders would close (per contract, toward flat)."""
        left = self.held()
        for intent, filled, _ in self.working.values():
            for c, q in trade(intent, intent.qty - filled).items():
                h = left.get(c, 0)
                if q * h < 0:
                    left[c] = h + int(math.copysign(min(abs(q), abs(h)), q))
        return left

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
          lag=st.sampled_from([None, 0, 5, 60, 119, 120, None, 0, 5, 121, 600, -600]))
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
          cushion=st.sampled_from([0.05, 0.19, 0.2, 0.5, 0.9, 0.5, 0.9, float("nan")]))
    def move_account(self, factor, cushion):
        self.nl = self.nl_base() * factor if math.isfinite(factor) else float("nan")
        self.cushion = cushion

    def nl_base(self) -> float:
        return self.nl if math.isfinite(self.nl) else 1_000_000.0


    # --- intents ------------------------------------------------------------------------------
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
        held = [(c, n) for c, n in self.closable().items() if n]
        qty = data.draw(st.integers(1, 6) if kind == "random" else st.integers(1, 4))
        action = {"condor": "open", "random": "open", "close": "close", "roll": "roll",
                  "vix": "hedge_open", "future": "hedge_open", "calendar": "hedge_open"}[kind]
        if kind == "condor":
            legs = self.condor(data, data.draw(st.sampled_from([E1, E2])), 1)
        elif kind == "random":
            cs = self.contracts()
            legs = [Leg(cs[data.draw(st.integers(0, len(cs) - 1))],
                        data.draw(st.sampled_from([-2, -1, 1, 2])))
                    for _ in range(data.draw(st.integers(1, 4)))]
            action = data.draw(st.sampled_from(["open", "roll", "hedge_open", "close",
                                                "hedge_close"]))
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
        self.seq += 1
        return Intent(f"k{self.seq}", "c", action, tuple(legs), qty, float(mid), float(nat), step)

