"""Which option strikes IBBroker's market book subscribes on one expiry (bot.broker.ib_market):
the short candidates nearest the target delta on each side, then their wings."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from strategies import pricing
from strategies.types import Contract

if TYPE_CHECKING:
    from bot.broker.ib_market import Plan


def pick_strikes(strikes: np.ndarray, S: float, t: float, r: float, sigma: np.ndarray,
                 plan: Plan, keep: frozenset[tuple[float, str]] = frozenset(),
                 seen: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
                 ) -> list[tuple[float, str]]:
    """Short candidates by estimated delta on each side, then their wings. A strike in `keep`
    (already subscribed) stays while it ranks within two places of the cut (hysteresis).
    `seen` (right -> strikes, |delta| from IB's model ticks) corrects the estimate: our
    Black-Scholes (rate `r`, no dividends) is not IB's model, and a bias of 0.01-0.02 in
    delta left the lines on strikes just outside the short-delta band."""
    if not (S > 0 and t > 0) or strikes.size == 0:
        return []
    out: list[tuple[float, str]] = []
    for right in ("P", "C"):
        d = np.abs(pricing.greeks(right.lower(), S, strikes, t, r, sigma)["delta"])
        if seen and right in seen:
            ks, actual = seen[right]
            est = np.interp(ks, strikes, d)
            d = d + np.interp(strikes, ks, actual - est)
        dist = np.where(np.isfinite(d), np.abs(d - plan.short_delta), np.inf)
        ranked = [i for i in np.argsort(dist) if np.isfinite(dist[i])]
        shorts = [float(strikes[i]) for n, i in enumerate(ranked[:plan.per_side + 2])
                  if n < plan.per_side or (float(strikes[i]), right) in keep]
        out += [(k, right) for k in shorts]
        for w in plan.widths:
            for k in shorts:
                beyond = (strikes[strikes <= k - w + 1e-9] if right == "P"
                          else strikes[strikes >= k + w - 1e-9])
                if beyond.size:
                    out.append((float(beyond.max() if right == "P" else beyond.min()), right))
    return list(dict.fromkeys(out))

def held_wings(held: list[Contract]) -> dict[date, float]:
    """Wing width of the SPX condor held on each expiry (the widest side)."""
    by: dict[tuple[date, str], list[float]] = {}
    for c in held:
        if c.symbol == "SPX" and c.sec_type == "OPT":
            by.setdefault((c.expiry, c.right), []).append(c.strike)
    out: dict[date, float] = {}
    for (e, _), ks in by.items():
        out[e] = max(out.get(e, 0.0), max(ks) - min(ks))
    return {e: w for e, w in out.items() if w > 0}
