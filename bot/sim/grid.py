"""The current session's grid (`SessionGrid`, mixed into `bot.sim.market.Market`): values at
every grid minute of a session, priced once when first asked, cached in the session.

A session's path (spot and variance at every minute) is drawn when it opens, and VIX, years
to expiry, forwards and the VIX futures curve are elementwise functions of (minute, expiry):
computing them for all minutes in one pass gives, bit for bit, what the per-minute formulas
give at each minute (`years_to` is exact: whole seconds to settlement; a test checks).
Settlement times are cached here too (`settle_at`, `years_to`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from strategies import expiry as xp
from strategies.instruments import INSTRUMENTS

STEP = 60.0  # seconds per grid step inside a session
TAU30 = 30.0 / 365.0
# the model's time and variance bounds (`bot.sim.market`, `bot.sim.history`)
YEAR_DAYS = 252.0
OVERNIGHT = 0.2  # share of a session's variance in the opening gap
V_FLOOR = 0.06**2
V_CAP = 25.0


_SETTLE: dict[date, datetime] = {}


def settle_at(expiry: date) -> datetime:
    """`expiry.settlement_time(expiry)`, cached (the simulator asks every step)."""
    st = _SETTLE.get(expiry)
    if st is None:
        st = _SETTLE[expiry] = xp.settlement_time(expiry)
    return st


def years_to(expiry: date, when: datetime) -> float:
    """`expiry.year_fraction(expiry, when)`, same arithmetic, settlement cached; `when` aware."""
    return max((settle_at(expiry) - when).total_seconds(), 0.0) / (xp.DAYS_PER_YEAR * 86400.0)


_VX_TICKS: dict[int, float] = {}  # ticks -> round(ticks x tick, 2)


def vx_tick(p: float) -> float:
    """`round(round(p / tick) * tick, 2)` (a VX future's price to its tick); the final
    rounding (Python's, correctly rounded: slow) kept by the whole number of ticks."""
    tick = INSTRUMENTS["VX"].tick_small
    n = round(p / tick)
    got = _VX_TICKS.get(n)
    if got is None:
        got = _VX_TICKS[n] = round(n * tick, 2)
    return got


class SessionGrid:
    """Grid methods of `Market` (they use its state: `_sess`, `scenario`, `r`, `q`, and its
    variance algebra `expected_var`, `_kq`, `_q_var`)."""

    _sess: dict | None
    time: datetime
    _vix_exps: dict[tuple[date, int], list[date]]
    scenario: Any
    r: float
    q: float

    def expected_var(self, t: float | np.ndarray,
                     v: float | np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def _kq(self, vq: np.ndarray | float) -> np.ndarray:
        raise NotImplementedError

    def _q_var(self, t: float | np.ndarray, vq: float | np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def grid(self) -> dict | None:
        """The current session (its path and a cache of values by grid minute), or None
        between sessions. `k` is the minute of the state now (`time` = open + k minutes)."""
        s = self._sess
        return s if s is not None and s["k"] >= 0 else None

    def holds_close(self, s: dict) -> bool:
        """Is the state now the last minute of session `s`, after its index close (until
        the next session opens: the state a day's last steps see)?"""
        return self._sess is None and s["k"] == s["n"] and self.time == s["close"]

    def grid_path(self, s: dict) -> tuple[np.ndarray, np.ndarray]:
        """(SPX, variance) at every grid minute of session `s` (the market's values)."""
        got = s["cache"].get("path")
        if got is None:
            got = s["cache"]["path"] = (np.array(s["spx"]), np.array(s["v"]))
        return got

    def grid_vix(self, s: dict) -> tuple[np.ndarray, list[float]]:
        """`vix_at(v)` at every grid minute of session `s` (array, and as Python floats)."""
        got = s["cache"].get("vix")
        if got is None:
            vix = 100.0 * np.sqrt(self.expected_var(TAU30, self.grid_path(s)[1]))
            got = s["cache"]["vix"] = (vix, vix.tolist())
        return got

    def grid_years(self, s: dict, e: date) -> np.ndarray:
        """`years_to(e, t_k)` at every grid minute t_k of session `s` (whole seconds to the
        settlement, exact in floats: the same values)."""
        got = s["cache"].get(("years", e))
        if got is None:
            base = (settle_at(e) - s["open"]).total_seconds()
            if base % 1.0 == 0.0:
                kk = np.arange(s["n"] + 1, dtype=float)
                got = np.maximum(base - STEP * kk, 0.0) / (xp.DAYS_PER_YEAR * 86400.0)
            else:  # (never for exchange times) minute by minute
                got = np.array([years_to(e, s["open"] + timedelta(seconds=STEP * k))
                                for k in range(s["n"] + 1)])
            s["cache"][("years", e)] = got
        return got

    def grid_forward(self, s: dict, e: date) -> np.ndarray:
        """`forward(years_to(e, t_k))` at every grid minute of session `s`."""
        got = s["cache"].get(("fwd", e))
        if got is None:
            got = s["cache"][("fwd", e)] = (self.grid_path(s)[0]
                                            * np.exp((self.r - self.q) * self.grid_years(s, e)))
        return got

    def grid_lists(self, s: dict, e: date, stride: int = 1) -> tuple[list[float], list[float]]:
        """(`grid_years`, `grid_forward`) of expiry `e` as lists of Python floats, at every
        `stride`-th minute from the open (index j: minute j x stride)."""
        got = s["cache"].get(("lists", e, stride))
        if got is None:
            got = s["cache"][("lists", e, stride)] = (
                self.grid_years(s, e)[::stride].tolist(),
                self.grid_forward(s, e)[::stride].tolist())
        return got

    def _grid_curve(self, s: dict, exps: list[date],
                    at: slice | np.ndarray = slice(None)) -> list[tuple[date, list, list]]:
        """(expiry, years to settlement, future price before `vix_curve` rounds it to the
        tick) at every grid minute (or the minutes `at`), for the futures `exps`:
        `vix_future` at each minute's variance."""
        if not exps:
            return []
        T = np.maximum(np.array([self.grid_years(s, e)[at] for e in exps]), 0.0)
        th, vq = self.scenario.theta_q, self.scenario.vrp * self.grid_path(s)[1][at]
        ev = th + (vq - th) * np.exp(-self._kq(vq) * T)
        px = 100.0 * np.sqrt(self._q_var(TAU30, ev))
        return list(zip(exps, T.tolist(), px.tolist()))

    def session_curve(self, s: dict, day: date, count: int) -> list[tuple[date, list, list]]:
        """The VIX futures curve of session `s` (on exchange date `day`) at every minute
        (`_grid_curve` of the `count` listed expiries), priced once per session."""
        curve = s["cache"].get(("curve", day, count))
        if curve is None:
            exps = self._vix_exps.get((day, count))
            if exps is None:
                exps = self._vix_exps[(day, count)] = xp.vix_expiries(day, count)
            curve = s["cache"][("curve", day, count)] = self._grid_curve(s, exps)
        return curve
