"""Market._close_session appends the day's bar without pd.concat (bot.sim.bars.append_bar):
the same frame as concatenating and keeping the last 400 rows."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from bot.sim.bars import BAR_COLUMNS, append_bar
from bot.sim.market import Market
from strategies import expiry as xp


def test_append_bar_equals_concat() -> None:
    bars = Market("chop", 7, datetime(2026, 1, 5, 9, 30, tzinfo=xp.NY)).bars
    rng = np.random.default_rng(5)
    for i in range(160):  # from 260 rows through the 400-row cap
        row = rng.normal(size=6).tolist()
        d = date(2027, 1, 1) + timedelta(days=i)
        want = pd.concat([bars, pd.DataFrame(
            {c: [v] for c, v in zip(BAR_COLUMNS, row)},
            index=pd.DatetimeIndex([pd.Timestamp(d)], name="date"))]).iloc[-400:]
        got = append_bar(bars, row, d)
        pd.testing.assert_frame_equal(got, want, check_exact=True, check_freq=True)
        # the market's frames (its history's, then append_bar's): their columns need no check
        pd.testing.assert_frame_equal(append_bar(bars, row, d, floats=True), want,
                                      check_exact=True, check_freq=True)
        assert got.index.dtype == want.index.dtype and got.index.name == "date"
        bars = want
    assert len(bars) == 400
