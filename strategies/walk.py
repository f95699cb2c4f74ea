"""The executor's price walk, pure: a combo limit starts at mid and steps toward natural.

`limit(mid, natural, step, steps, max_slippage, tick)` is the limit of walk step `step`
(0-based) of `steps`; the executor (`bot.orders`) sends these, and the strategy prices a roll's
funding at `last(...)`, the limit the walk ends at: the worst price the executor sends.
Prices are rounded to the tick toward mid, except the last step with `max_slippage` >= 1,
which rounds toward natural so that a natural off the grid is still reachable.
"""

from __future__ import annotations

from strategies.instruments import to_tick

__all__ = ["last", "limit"]


def limit(mid: float, natural: float, step: int, steps: int, max_slippage: float,
          tick: float) -> float:
    last_step = step >= steps - 1
    frac = 0.0 if steps <= 1 else min(1.0, step / (steps - 1)) * max_slippage
    raw = mid + (natural - mid) * frac
    buying = natural >= mid  # a higher limit is more aggressive
    toward_natural = last_step and max_slippage >= 1.0
    # a buyer rounds down to stay passive (up on the last step); a seller the other way
    return to_tick(raw, tick, down=buying != toward_natural)


def last(mid: float, natural: float, steps: int, max_slippage: float, tick: float) -> float:
    """The walk's final limit: step `steps - 1` (a one-step walk only ever sends mid)."""
    return limit(mid, natural, steps - 1, steps, max_slippage, tick)
