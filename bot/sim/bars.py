"""Daily bars of the simulated market: appending a session's bar, and the A/D line's move."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

BAR_COLUMNS = ("open", "high", "low", "close", "vix", "ad_line")
KEEP_BARS = 400
_COLUMNS = pd.Index(BAR_COLUMNS)  # (immutable: every frame made here shares it; a third of
# a frame's making was building its column index from the names)


def append_bar(bars: pd.DataFrame, row: list[float], day: date,
               floats: bool = False) -> pd.DataFrame:
    """`pd.concat([bars, <row on day>]).iloc[-KEEP_BARS:]` for float bars (the same frame:
    values, columns, dtypes, index and its unit; a test checks), without concat's cost.
    `floats`: the caller knows `bars` has the float columns of BAR_COLUMNS (a frame this
    made), so they are not checked again."""
    if not floats and (list(bars.columns) != list(BAR_COLUMNS)
                       or any(t != np.float64 for t in bars.dtypes)):
        new = pd.DataFrame({c: [v] for c, v in zip(BAR_COLUMNS, row)},
                           index=pd.DatetimeIndex([pd.Timestamp(day)], name="date"))
        return pd.concat([bars, new]).iloc[-KEEP_BARS:]
    vals, index = bars.to_numpy(dtype=float), bars.index
    if len(index) > KEEP_BARS - 1:
        vals, index = vals[-(KEEP_BARS - 1):], index[-(KEEP_BARS - 1):]
    idx = index.insert(len(index), pd.Timestamp(day))  # (concat's index and unit)
    if idx.name != "date":
        idx = idx.rename(None)  # (concat keeps a name only where both indexes have it)
    out = np.empty((len(vals) + 1, len(BAR_COLUMNS)))
    out[:-1] = vals
    out[-1] = row
    return pd.DataFrame(out, index=idx, columns=_COLUMNS)


def ad_move(ret: np.ndarray, diverging: bool, frac: np.ndarray) -> np.ndarray:
    """Net advances added by a day's return so far (`frac` = share of the day elapsed)."""
    strength, drift = (0.3, -350.0) if diverging else (1.0, 0.0)
    return 2800.0 * strength * np.tanh(ret / 0.012) + drift * frac
