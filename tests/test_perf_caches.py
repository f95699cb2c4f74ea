"""The per-step caches in strategies/ answer exactly what they stand in for."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import expiry as xp
from strategies import layers, signals
from strategies.events import EventCalendar


def test_next_event_cache_equals_the_calendar_across_releases_and_back_in_time() -> None:
    cal = EventCalendar()
    t0 = datetime(2025, 1, 2, 14, 30, tzinfo=UTC)
    # every 7 hours for ~2 years, then a jump backwards: each answer equals the calendar's
    times = [t0 + timedelta(hours=7 * i) for i in range(2500)] + [t0, t0 + timedelta(days=40)]
    for kind in ("CPI", "PPI", "FOMC"):
        whens = {ev.when for ev in cal.events(kind)}
        times += [w for w in whens if t0 <= w <= times[2499]]  # exactly at a release
        for t in times:
            assert layers._next_event(cal, kind, t) == cal.next_event(kind, t), (kind, t)


def test_exchange_date_cache_is_per_instant() -> None:
    a = datetime(2025, 3, 4, 3, 0, tzinfo=UTC)  # 22:00 on the 3rd in New York
    b = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
    d3, d4 = date(2025, 3, 3), date(2025, 3, 4)
    assert [xp.exchange_date(t) for t in (a, a, b, b, a)] == [d3, d3, d4, d4, d3]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 20),
       st.lists(st.one_of(st.floats(-1e6, 1e6), st.floats(0, 5), st.just(0.0)), min_size=0,
                max_size=300),
       st.sampled_from([1 / 14, 2 / 13, 2 / 27, 0.2, 0.5, 1.0]))
def test_ewm_is_pandas_ewm_bit_for_bit(lead: int, vals: list[float], alpha: float) -> None:
    xs = [math.nan] * lead + vals
    ours = np.array(signals._ewm(xs, alpha), dtype=float)
    theirs = pd.Series(xs, dtype=float).ewm(alpha=alpha, adjust=False).mean().to_numpy()
    assert ours.tobytes() == theirs.tobytes()
    if vals:  # a gap after a value is left to pandas
        assert signals._ewm([*xs, math.nan, 1.0], alpha) is None
