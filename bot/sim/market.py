"""Synthetic market for the embedded simulator (minimal model; deepened by the sim-market issue).

Model: Heston-type stochastic variance, SPX log-price correlated negatively with variance.
VIX is the model's 30-day expected volatility, sqrt(E[average variance over 30 days]), not an
independent draw. Implied vol surface = term ATM vol from the same expectation plus a skew.
Seeded: the same scenario, seed and start give the same path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

YEAR = 365.0 * 86400.0


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    spx0: float = 6000.0
    v0: float = 0.13**2  # starting variance
    theta: float = 0.15**2  # long-run variance
    kappa: float = 4.0  # mean reversion per year
    xi: float = 0.5  # vol of variance
    rho: float = -0.75  # SPX / variance correlation
    mu: float = 0.06  # drift per year


SCENARIOS: dict[str, Scenario] = {
    "calm": Scenario("calm", "low, mean-reverting volatility; SPX drifts up", v0=0.14**2,
                     theta=0.15**2, xi=0.25, mu=0.08),
    "chop": Scenario("chop", "moderate volatility with frequent swings, no trend", v0=0.17**2,
                     theta=0.18**2, xi=0.9, mu=0.0),
}


class Market:
    """Evolves SPX and its variance in steps of at most `max_step` seconds."""

    max_step = 300.0

    def __init__(self, scenario: str, seed: int, start: datetime, history_days: int = 260):
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        self.scenario = SCENARIOS[scenario]
        self.rng = np.random.default_rng(seed)
        self.r = 0.04
        self.now = start.astimezone(timezone.utc)
        sc = self.scenario
        self.spx = sc.spx0
        self.v = sc.v0
        self.ad_line = 0.0
        self._bars = self._history(history_days)
        self._day = self.now.date()
        self._open = self.spx
        self._high = self.spx
        self._low = self.spx

    # --- model ---------------------------------------------------------------------------
    def _step(self, dt: float) -> None:
        sc = self.scenario
        z1, z2 = self.rng.standard_normal(2)
        w2 = sc.rho * z1 + math.sqrt(1 - sc.rho**2) * z2
        v = max(self.v, 1e-6)
        self.spx *= math.exp((sc.mu - 0.5 * v) * dt + math.sqrt(v * dt) * z1)
        self.v = abs(v + sc.kappa * (sc.theta - v) * dt + sc.xi * math.sqrt(v * dt) * w2)
        self.ad_line += 1500.0 * z1 * math.sqrt(v * dt) / 0.01

    def expected_var(self, t: float | np.ndarray) -> np.ndarray:
        """E[average variance over the next t years] under the model."""
        sc = self.scenario
        t = np.maximum(np.asarray(t, dtype=float), 1e-6)
        k = sc.kappa * t
        return sc.theta + (self.v - sc.theta) * (1.0 - np.exp(-k)) / k

    @property
    def vix(self) -> float:
        return float(100.0 * math.sqrt(self.expected_var(30.0 / 365.0)))

    def iv(self, strikes: np.ndarray, t: float) -> np.ndarray:
        """Implied vol by strike for one expiry: term ATM vol plus a put skew."""
        atm = math.sqrt(float(self.expected_var(t)))
        m = np.log(np.asarray(strikes, dtype=float) / self.spx) / max(math.sqrt(t), 0.05)
        skew = -0.9 * m + 0.6 * m**2
        return np.clip(atm * (1.0 + 0.25 * skew), 0.04, 3.0)

    def advance_to(self, ts: datetime) -> None:
        ts = ts.astimezone(timezone.utc)
        while self.now < ts:
            step = min(self.max_step, (ts - self.now).total_seconds())
            self._step(step / YEAR)
            self.now += timedelta(seconds=step)
            self._mark_bar()

    def _mark_bar(self) -> None:
        d = self.now.date()
        if d != self._day:
            self._close_bar()
            self._day, self._open, self._high, self._low = d, self.spx, self.spx, self.spx
        self._high = max(self._high, self.spx)
        self._low = min(self._low, self.spx)

    def _close_bar(self) -> None:
        row = pd.DataFrame(
            {"open": [self._open], "high": [self._high], "low": [self._low], "close": [self.spx],
             "vix": [self.vix], "ad_line": [self.ad_line]},
            index=pd.DatetimeIndex([pd.Timestamp(self._day)], name="date"),
        )
        self._bars = pd.concat([self._bars, row]).iloc[-400:]

    def _history(self, days: int) -> pd.DataFrame:
        """A year of daily bars before the start, ending at today's starting levels."""
        rows = []
        spx, v, ad = self.spx, self.v, 0.0
        for _ in range(days):
            self._step(1.0 / 252.0)
            rows.append((self.spx, self.vix, self.ad_line))
        # shift the synthetic history so it ends exactly at the starting level
        scale = spx / rows[-1][0]
        self.spx, self.v, self.ad_line = spx, v, ad
        idx = pd.bdate_range(end=self.now.date() - timedelta(days=1), periods=days, name="date")
        closes = np.array([r[0] for r in rows]) * scale
        return pd.DataFrame(
            {"open": closes, "high": closes, "low": closes, "close": closes,
             "vix": [r[1] for r in rows], "ad_line": [r[2] - rows[-1][2] for r in rows]},
            index=idx,
        )

    @property
    def bars(self) -> pd.DataFrame:
        return self._bars
