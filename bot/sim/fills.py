"""The one fill model of the simulator: when a combo limit order fills, at what price, and
what it costs. Every backtest column (the method, the plain condor, the Cboe CNDR rules)
trades through it, so their results differ by their rules, not by their fills.

Prices are signed per-unit combo prices, as `bot.broker.base` documents: debit > 0, credit
< 0, and the order BUYs the combo, so a higher limit is always the more aggressive one.
`natural` is what it costs to trade now (asks of bought legs minus bids of sold legs, the
worse side); `mid` the sum of leg mids; `natural - mid` >= 0 is the half-spread of the combo.

  limit >= natural              marketable: fills at once, at natural (never at the limit)
  limit <= mid                  rests and never fills: nothing fills at mid for free
  mid < limit < natural         rests; each draw fills it at its limit with probability
      p = a ** shape * leg_factor ** (n_legs - 1) / (1 + (natural - mid) / spread_scale)
      a = (limit - mid) / (natural - mid), the share of the half-spread given up: p rises
      from 0 at mid toward natural and falls as the spread widens and legs are added.

A draw is a uniform number from a hash of (seed, key): the same seed and key give the same
answer whatever else was drawn before, so a run is reproducible and two columns asking about
the same order at the same minute see the same luck. SimBroker draws once per working order
per market minute it matches (key = order ref, order id and that minute). `fill_ratio` < 1
fills that share of the remaining quantity per fill (partial fills).

Commission: `commission_per_contract` per option contract, `commission_per_future` per
future, on every fill (IB's tiered SPX rate is about $0.65 a contract before exchange fees).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import SimSettings

EPS = 1e-9


@dataclass(frozen=True)
class FillModel:
    """Seeded, deterministic combo fills and commissions (see the module docstring)."""

    seed: int
    commission_per_contract: float = 0.65
    commission_per_future: float = 2.25
    shape: float = 2.0  # p ~ a ** shape: a resting limit near mid rarely fills
    leg_factor: float = 0.9  # each leg beyond the first multiplies p by this
    spread_scale: float = 2.0  # points of combo half-spread that halve p
    fill_ratio: float = 1.0  # share of the remaining quantity per fill
    resting: bool = True  # False: only marketable limits fill (tests needing a known fill time)

    def __post_init__(self) -> None:
        if self.commission_per_contract < 0 or self.commission_per_future < 0:
            raise ValueError("FillModel: commissions must be >= 0")
        if self.shape <= 0 or not 0 < self.leg_factor <= 1 or self.spread_scale <= 0:
            raise ValueError("FillModel: shape and spread_scale must be > 0, leg_factor in (0, 1]")
        if not 0 < self.fill_ratio <= 1:
            raise ValueError(f"FillModel: fill_ratio must be in (0, 1], got {self.fill_ratio}")

    @classmethod
    def from_settings(cls, sim: SimSettings) -> FillModel:
        """The model a `bot.config.SimSettings` describes (seeded by `sim.seed`)."""
        return cls(sim.seed, sim.commission_per_contract, shape=sim.fill_shape,
                   leg_factor=sim.fill_leg_factor, spread_scale=sim.fill_spread_scale,
                   fill_ratio=sim.fill_ratio)

    def describe(self) -> str:
        """One line for reports."""
        part = "" if self.fill_ratio >= 1 else f"; {self.fill_ratio:.0%} of the rest per fill"
        if not self.resting:
            return (f"fills: only marketable limits, at natural{part}; commission "
                    f"${self.commission_per_contract:.2f}/option; seed {self.seed}")
        return (f"fills: marketable at natural; a limit between mid and natural fills at its "
                f"limit with p = a^{self.shape:g} x {self.leg_factor:g}^(legs-1) / "
                f"(1 + half-spread/{self.spread_scale:g}) per market minute (a = share of "
                f"mid-to-natural given up); never at mid{part}; commission "
                f"${self.commission_per_contract:.2f}/option, ${self.commission_per_future:.2f}"
                f"/future; seed {self.seed}")

    def commission(self, contracts: int, futures: int = 0) -> float:
        """Commission in USD for `contracts` option contracts and `futures` futures."""
        return (abs(contracts) * self.commission_per_contract
                + abs(futures) * self.commission_per_future)

    def probability(self, limit: float, mid: float, natural: float, n_legs: int) -> float:
        """Chance that one draw fills a resting limit (1 when marketable, 0 at or below mid)."""
        if limit >= natural - EPS:
            return 1.0
        width = natural - mid
        if not self.resting or limit <= mid + EPS or width <= EPS:
            return 0.0
        a = (limit - mid) / width
        return float(a**self.shape * self.leg_factor ** max(0, n_legs - 1)
                     / (1.0 + width / self.spread_scale))

    def draw(self, key: str) -> float:
        """A uniform number in [0, 1) from (seed, key) alone."""
        h = hashlib.blake2b(f"{self.seed}\x1f{key}".encode(), digest_size=8).digest()
        return int.from_bytes(h, "big") / 2.0**64

    def fill(self, limit: float, mid: float, natural: float, n_legs: int,
             key: str) -> float | None:
        """The fill price of a combo limit order for one draw `key`, or None (no fill)."""
        if not all(map(math.isfinite, (limit, mid, natural))) or natural < mid - EPS:
            raise ValueError(f"FillModel.fill: need finite prices with natural >= mid, got "
                             f"limit={limit} mid={mid} natural={natural}")
        p = self.probability(limit, mid, natural, n_legs)
        if p >= 1.0:
            return natural
        if p > 0.0 and self.draw(key) < p:
            return limit
        return None

    def quantity(self, remaining: int) -> int:
        """Contracts one fill takes out of `remaining`."""
        if self.fill_ratio >= 1:
            return remaining
        return max(1, int(remaining * self.fill_ratio))

