"""Daily bars of the simulated market: appending a session's bar, and the A/D line's move."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

BAR_COLUMNS = ("open", "high", "low", "close", "vix", "ad_line")
KEEP_BARS = 400


def append_bar(bars: pd.DataFrame, row: list[float], day: date) -> pd.DataFrame:
    """`pd.concat([bars, <row on day>]).iloc[-KEEP_BARS:]` for float bars (the same frame:
    values, columns, dtypes, index and its unit; a test checks), without concat's cost."""
    if list(bars.columns) != list(BAR_COLUMNS) or any(t != np.float64 for t in bars.dtypes):
        new = pd.DataFrame({c: [v] for c, v in zip(BAR_COLUMNS, row)},
                           index=pd.DatetimeIndex([pd.Timestamp(day)], name="date"))
        return pd.concat([bars, new]).iloc[-KEEP_BARS:]
    keep = bars.iloc[-(KEEP_BARS - 1):]
    idx = keep.index.append(pd.DatetimeIndex([pd.Timestamp(day)], name="date"))
    vals = np.vstack([keep.to_numpy(dtype=float), np.array([row], dtype=float)])
    return pd.DataFrame(vals, index=idx, columns=list(BAR_COLUMNS))


def ad_move(ret: np.ndarray, diverging: bool, frac: np.ndarray) -> np.ndarray:
    """Net advances added by a day's return so far (`frac` = share of the day elapsed)."""
    strength, drift = (0.3, -350.0) if diverging else (1.0, 0.0)
    return 2800.0 * strength * np.tanh(ret / 0.012) + drift * frac
