"""Daily signals, computed once per set of daily bars.

The bars in a snapshot only change when a session closes, but decisions run every minute;
recomputing RSI, MACD and divergence over a year of bars every tick was most of a tick's cost.
`memo(bars, name, fn)` keys a result by the bars object itself (its id and length; the cache
holds a reference, so an id cannot be reused while its entry lives) — pure memoization of a
pure function, bounded to a handful of entries. Daily bars are replaced, not edited in place.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

from strategies import signals

T = TypeVar("T")
_CACHE: OrderedDict[tuple[Any, ...], tuple[pd.DataFrame, Any]] = OrderedDict()
_SIZE = 32


# name -> (bars, their length, value) of its last answer: a tick asks each name of the same
# bars as the tick before (the bars change once a day)
_LAST: dict[tuple[Any, ...], tuple[pd.DataFrame, int, Any]] = {}


def memo(bars: pd.DataFrame, name: tuple[Any, ...], fn: Callable[[pd.DataFrame], T]) -> T:
    n = len(bars)
    last = _LAST.get(name)
    if last is not None and last[0] is bars and last[1] == n:
        hit: T = last[2]
        return hit
    key = (name, id(bars), n)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        value: T = _CACHE[key][1]
    else:
        value = fn(bars)
        _CACHE[key] = (bars, value)
        if len(_CACHE) > _SIZE:
            _CACHE.popitem(last=False)
    if len(_LAST) >= _SIZE:
        _LAST.clear()
    _LAST[name] = (bars, n, value)
    return value


def macd_state(bars: pd.DataFrame, fast: int = 12, slow: int = 26,
               signal: int = 9) -> dict[str, float]:
    """The last EMAs of MACD(fast, slow, signal) over the daily closes, for O(1) updates."""

    def compute(b: pd.DataFrame) -> dict[str, float]:
        # signals.macd_last: ema(close, fast), ema(close, slow) and macd(close)'s last values,
        # the same bits, each average computed once and without pandas' per-call cost
        f, s, sig, hist = signals.macd_last(b["close"].astype(float), fast, slow, signal)
        return {"fast": f, "slow": s, "signal": sig, "hist": hist}

    return memo(bars, ("macd", fast, slow, signal), compute)


def macd_hist_with(bars: pd.DataFrame, price: float, fast: int = 12, slow: int = 26,
                   signal: int = 9) -> tuple[float, float]:
    """(histogram with `price` appended as the newest close, histogram of the last bar).

    Equal to recomputing MACD on the closes plus `price` (the averages are recursive), at the
    cost of a few multiplications per tick.
    """
    st = macd_state(bars, fast, slow, signal)
    af, as_, ag = 2.0 / (fast + 1), 2.0 / (slow + 1), 2.0 / (signal + 1)
    f = st["fast"] + af * (price - st["fast"])
    s = st["slow"] + as_ * (price - st["slow"])
    line = f - s
    sig = st["signal"] + ag * (line - st["signal"])
    return line - sig, st["hist"]
