"""Synthetic market for the embedded simulator: SPX, its vol surface, VIX, VIX futures, breadth.

Model (SVCJ-style Heston with co-jumps, in trading time):
  d ln S = (mu - lam*kbar - v/2 - revert*ln(S/S0)) dt + sqrt(v) dW1 + J dN
  dv     = kappa(v) (theta - v) dt + xi sqrt(v) dW2,  corr(dW1, dW2) = rho,
  kappa(v) = kappa * sqrt(max(1, v/theta))  (vol spikes decay faster than calm drifts back),
  jumps: N Poisson(lam), J ~ N(jump_mean, jump_sd), and v jumps up by Exp(jump_var) with it.
Time runs in trading years of 252 sessions. Each session moves on a fixed one-minute grid
from the open to the index close (16:00 New York); OVERNIGHT = 20% of a day's variance
arrives as the opening gap. Off-grid times see the last grid value and the path never
depends on how often it is queried (same scenario, seed and start -> same path).

Pricing (risk-neutral Q) uses the same state: instantaneous variance vq = vrp x v (vrp > 1 is
the variance risk premium: VIX exceeds the volatility then realized, on average) reverting at
kappa_q(vq) to a long-run theta_q above the usual level (the futures curve heads there):
  expected_var(t) = theta_q + (vq - theta_q) (1 - e^(-k t)) / (k t) + lam E[J^2],  k = kappa_q(vq)
  VIX             = 100 sqrt(expected_var(30/365))   (not drawn independently)
  VIX future(T)   = 100 sqrt(that 30-day variance at E_Q[vq_T]) (convexity ignored): contango
                    while vq < theta_q (calm), backwardation when vq >> theta_q (stress).
  SPX implied vol: the smile of bot.sim.surface at each expiry, scaled so that its variance
                    swap (what the VIX formula replicates) is expected_var(t): the VIX formula
                    on the simulated chain gives back VIX, and ATM vol sits below it (skew).
                    Forwards F = S e^((r - q) t): the scenario's short rate r and dividend
                    yield q (both continuously compounded).
  VIX option vol: bot.sim.surface.vix_option_vol, vol-of-vol rising with VIX, a call skew.
Bid/ask half-spreads scale with `spread_factor` = VIX/15 (clipped 0.8..6).
A/D line: each day adds 2800 tanh(r/1.2%) + noise (r = SPX return); during a divergence
episode (random, `divergence_rate` a year, 10-25 days; or scheduled) breadth follows returns
at 30% strength and drifts down 350 a day, so SPX highs go unconfirmed. Anchored days
(scenarios.Anchor) replace the free step by a Brownian bridge in ln S and ln v that lands on
the anchored close/open and the variance whose VIX is the anchored VIX.
A year of daily bars (`history_days`) precedes the start, ending at the starting levels.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from bot.sim import scenarios as scn
from bot.sim import surface
from bot.sim.bars import ad_move, append_bar
from bot.sim.grid import (
    OVERNIGHT,
    STEP,
    TAU30,
    V_CAP,
    V_FLOOR,
    YEAR_DAYS,
    SessionGrid,
    vx_tick,
    years_to,
)
from bot.sim.grid import settle_at as settle_at  # (re-exported: the broker and baselines use it)
from bot.sim.history import history_bars
from strategies import expiry as xp
from strategies.instruments import INSTRUMENTS


def index_session(d: date) -> tuple[datetime, datetime] | None:
    """(open, index close) of the SPX index on d; the options trade 15 minutes longer."""
    s = xp.spx_option_session(d)
    return None if s is None else (s[0], s[1] - xp.CLOSE_LAG)


class Market(SessionGrid):
    """SPX, variance and breadth on a one-minute session grid; VIX and surfaces from the state."""

    def __init__(self, scenario: str | scn.Scenario, seed: int, start: datetime,
                 history_days: int = 260) -> None:
        self.scenario = scenario if isinstance(scenario, scn.Scenario) else scn.get(scenario)
        sc = self.scenario
        self.seed = seed
        self.rng = np.random.default_rng([seed, 0])
        self.r, self.q = sc.r, sc.q  # short rate, dividend yield
        self._jv = sc.jump_rate * (sc.jump_mean**2 + sc.jump_sd**2)
        self._kbar = math.exp(sc.jump_mean + 0.5 * sc.jump_sd**2) - 1.0
        self._vix_memo = (-1.0, 0.0)
        self._sf_memo = (-1.0, 0.0)  # (v, spread_factor at v)
        self._vix_exps: dict[tuple[date, int], list[date]] = {}
        self.now = start.astimezone(UTC)
        self.time = self.now  # time of the grid point the state belongs to
        self.spx = sc.spx0
        self.v = self.var_for_vix(sc.vix0)
        self.ad_line = 0.0
        self.day = -1  # index of the current (or last) session; 0 = first
        self.opens: dict[date, tuple[float, float]] = {}  # SPX and VIX at each open
        self._x0 = math.log(sc.spx0)
        self._episode = 0  # divergence days left
        self._sess: dict | None = None
        d0 = xp.exchange_date(self.now)
        s0 = index_session(d0)
        self._next = d0 if s0 and self.now < s0[1] else xp.exchange_date(xp.next_spx_open(self.now))
        self._bars = history_bars(self, history_days)
        self.advance_to(self.now)

    # --- variance algebra (Q measure) ---------------------------------------------------------
    def _kq(self, vq: np.ndarray | float) -> np.ndarray:
        sc = self.scenario
        return sc.kappa_q * np.sqrt(np.maximum(1.0, np.asarray(vq) / sc.theta_q))

    def _q_var(self, t: float | np.ndarray, vq: float | np.ndarray) -> np.ndarray:
        """E_Q[average variance over t years] from Q instantaneous variance vq (+ jumps)."""
        th = self.scenario.theta_q
        kt = np.maximum(self._kq(vq) * np.maximum(np.asarray(t, dtype=float), 1e-9), 1e-12)
        return th + (vq - th) * (-np.expm1(-kt) / kt) + self._jv

    def expected_var(self, t: float | np.ndarray,
                     v: float | np.ndarray | None = None) -> np.ndarray:
        """E_Q[average variance over the next t years] at (P) instantaneous variance v."""
        return self._q_var(t, self.scenario.vrp * (self.v if v is None else v))

    def var_for_vix(self, vix: float) -> float:
        """The instantaneous variance at which the model's VIX equals `vix` (bisection)."""
        target = (vix / 100.0) ** 2
        lo, hi = V_FLOOR, V_CAP
        if float(self.expected_var(TAU30, lo)) >= target:
            return lo
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if float(self.expected_var(TAU30, mid)) < target:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    def vix_at(self, v: float) -> float:
        return float(100.0 * math.sqrt(float(self.expected_var(TAU30, v))))

    @property
    def vix(self) -> float:
        if self._vix_memo[0] != self.v:
            self._vix_memo = (self.v, self.vix_at(self.v))
        return self._vix_memo[1]

    def vix_future(self, T: float | np.ndarray) -> np.ndarray:
        """VIX futures price for T years to its settlement: the VIX at E_Q[v_T]."""
        T = np.maximum(np.asarray(T, dtype=float), 0.0)
        th, vq = self.scenario.theta_q, self.scenario.vrp * self.v
        ev = th + (vq - th) * np.exp(-self._kq(vq) * T)
        return 100.0 * np.sqrt(self._q_var(TAU30, ev))

    def vix_futures(self, when: datetime | None = None, count: int = 7) -> dict[date, float]:
        """Listed VIX monthly futures (expiry -> price, VX tick) as of `when` (state time)."""
        return self.vix_curve(when, count)[0]

    def vix_curve(self, when: datetime | None = None,
                  count: int = 7) -> tuple[dict[date, float], list[float]]:
        """`vix_futures` and the years to each listed future's settlement."""
        when = self.time if when is None else when
        day = xp.exchange_date(when)
        exps = self._vix_exps.get((day, count))
        if exps is None:
            exps = self._vix_exps[(day, count)] = xp.vix_expiries(day, count)
        s = self.grid()
        if s is not None and when == self.time:  # the session's curve, priced at its open
            k = s["k"]
            curve = self.session_curve(s, day, count)
            got = [(e, ts[k], px[k]) for e, ts, px in curve if ts[k] > 0]
            return {e: vx_tick(p) for e, _, p in got}, [t for _, t, _ in got]
        ts = [(e, years_to(e, when)) for e in exps]
        exps, tv = [e for e, t in ts if t > 0], [t for _, t in ts if t > 0]
        if not exps:
            return {}, []
        px, tick = self.vix_future(np.array(tv)), INSTRUMENTS["VX"].tick_small
        return {e: round(round(float(p) / tick) * tick, 2) for e, p in zip(exps, px)}, tv

    @property
    def spread_factor(self) -> float:
        m = self._sf_memo
        if m[0] != self.v:  # a function of v alone (via VIX): kept while v stays
            m = self._sf_memo = (self.v, float(min(6.0, max(0.8, self.vix / 15.0))))
        return m[1]

    # --- surfaces ----------------------------------------------------------------------------
    def iv_surface(self, strikes: np.ndarray, ts: np.ndarray, spx: float | None = None,
                   v: float | None = None) -> np.ndarray:
        """SPX implied vol, shape (len(ts), len(strikes)), at the current state or at SPX
        `spx` and variance `v` when given (the smile: bot.sim.surface)."""
        return self.spx_iv(np.asarray(strikes, dtype=float)[None, :],
                           np.asarray(ts, dtype=float)[:, None], spx, v)

    def spx_iv(self, K: np.ndarray, t: np.ndarray, spx: float | None = None,
               v: float | None = None) -> np.ndarray:
        """SPX implied vol at strikes K and t years (broadcast together, elementwise)."""
        t = np.maximum(t, 1e-6)
        x = np.log(K / self.forward(t, spx))
        return surface.implied_vol(x, t, self.expected_var(t, v))

    def forward(self, t: float | np.ndarray, spx: float | None = None) -> np.ndarray:
        """SPX forward for t years: S e^((r - q) t)."""
        return (self.spx if spx is None else spx) * np.exp((self.r - self.q) * np.asarray(t))

    def iv(self, strikes: np.ndarray, t: float) -> np.ndarray:
        """SPX implied vol by strike for one expiry t years away."""
        return self.iv_surface(strikes, np.array([t]))[0]

    def vix_iv(self, strikes: np.ndarray, F: np.ndarray, T: np.ndarray,
               vix: float | None = None) -> np.ndarray:
        """VIX option implied vol (Black-76 on the future F), shape (len(F), len(strikes));
        at the current VIX, or at `vix` when given."""
        return self.vix_iv_at(np.asarray(strikes, dtype=float)[None, :],
                              np.asarray(F, dtype=float)[:, None],
                              np.asarray(T, dtype=float)[:, None], vix)

    def vix_iv_at(self, K: np.ndarray, F: np.ndarray, T: np.ndarray,
                  vix: float | None = None) -> np.ndarray:
        """VIX option implied vol at strikes K on futures F, T years (broadcast together)."""
        return surface.vix_option_vol(K, F, T, self.vix if vix is None else vix)

    # --- time --------------------------------------------------------------------------------
    def advance_to(self, ts: datetime) -> None:
        """Move the state to the last grid point at or before ts (never backwards)."""
        ts = ts.astimezone(UTC)
        if ts < self.now:
            return
        while True:
            s = self._sess
            if s is None:
                o, c = index_session(self._next)  # type: ignore[misc]
                if ts < o:
                    break
                self._open_session(self._next, o, c)
                continue
            k = min(s["n"], int((ts - s["open"]).total_seconds() // STEP))
            if k > s["k"]:
                self._set(k)
            if ts < s["close"]:
                break
            self._close_session()
        self.now = ts

    def _set(self, k: int) -> None:
        s = self._sess
        assert s is not None
        s["k"] = k
        self.spx, self.v, self.ad_line = s["spx"][k], s["v"][k], s["ad"][k]
        self._vix_memo = (self.v, self.grid_vix(s)[1][k])  # = vix_at(v), priced per session
        self.time = s["open"] + timedelta(seconds=STEP * k)

    def _open_session(self, d: date, o: datetime, c: datetime) -> None:
        self.day += 1
        n = int(round((c - o).total_seconds() / STEP))
        sc = self.scenario
        u_ep = self.rng.random(2)
        sched = [ln for first, ln in sc.divergences if first == self.day]
        if sched:
            self._episode = sched[0]
        elif self._episode == 0 and u_ep[0] < sc.divergence_rate / YEAR_DAYS:
            self._episode = 10 + int(u_ep[1] * 16)
        diverging = self._episode > 0
        self._episode = max(0, self._episode - 1)
        spx, v = self._path(n, sc.anchor(self.day))
        ret = spx / spx[0] * (spx[0] / self.spx) - 1.0  # return from the previous close
        noise = np.cumsum(self.rng.standard_normal(n + 1)) * (300.0 / math.sqrt(n + 1))
        ad = self.ad_line + ad_move(ret, diverging, np.arange(n + 1) / n) + noise
        self._sess = {"date": d, "open": o, "close": c, "n": n, "k": -1, "spx": spx.tolist(),
                      "v": v.tolist(), "ad": ad.tolist(), "hi": np.maximum.accumulate(spx),
                      "lo": np.minimum.accumulate(spx), "prev": self.spx, "div": diverging,
                      "cache": {}}
        self._set(0)
        self.opens[d] = (self.spx, self.vix)

    def _close_session(self) -> None:
        s = self._sess
        assert s is not None
        n = s["n"]
        if s["k"] < n:
            self._set(n)
        row = [s["spx"][0], float(s["hi"][n]), float(s["lo"][n]), self.spx, self.vix,
               self.ad_line]  # open, high, low, close, vix, ad_line
        self._bars = append_bar(self._bars, row, s["date"], floats=True)  # (all float frames)
        self._sess = None
        self._next = xp.exchange_date(xp.next_spx_open(s["close"] + xp.CLOSE_LAG))

    def session_high_low(self) -> tuple[float, float]:
        s = self._sess
        if s is None or s["k"] < 0:
            return self.spx, self.spx
        return float(s["hi"][s["k"]]), float(s["lo"][s["k"]])

    @property
    def diverging(self) -> bool:
        return bool(self._sess and self._sess["div"])

    # --- the model ---------------------------------------------------------------------------
    def _path(self, n: int, anchor: scn.Anchor | None) -> tuple[np.ndarray, np.ndarray]:
        """SPX and variance at the n+1 grid points of one session (index 0 = the open)."""
        sc = self.scenario
        # flat lists of floats (a list per row would be 2 x 391 GC-tracked containers)
        z = self.rng.standard_normal((n + 1, 3)).ravel().tolist()
        u = self.rng.random((n + 1, 2)).ravel().tolist()
        day = 1.0 / YEAR_DAYS
        dts = [OVERNIGHT * day] + [(1.0 - OVERNIGHT) * day / n] * n
        rc = math.sqrt(1.0 - sc.rho**2)
        x_prev = math.log(self.spx)
        x, v = x_prev, self.v
        a = anchor or scn.Anchor(-1)
        xT = None if a.close_ret is None else x_prev + math.log1p(a.close_ret)
        yT = None if a.close_vix is None else math.log(self.var_for_vix(a.close_vix))
        rem = 1.0 * day
        xs, vs = [], []
        # the scenario's numbers as locals, and per-dt constants taken once: the same
        # operations on the same values, in the same order, as written out per step
        rho, jr, jmean, jsd, jvar = sc.rho, sc.jump_rate, sc.jump_mean, sc.jump_sd, sc.jump_var
        kappa, theta, xi, revert, x0 = sc.kappa, sc.theta, sc.xi, sc.revert, self._x0
        mu_k = sc.mu - sc.jump_rate * self._kbar  # drift's first term
        sqrt, log, exp = math.sqrt, math.log, math.exp
        per_dt = {d: (sqrt(d), jr * d) for d in set(dts)}
        bridged = xT is not None or yT is not None
        if not bridged and a.open_ret is None:  # no anchor (most days): the model alone
            # the loop below without its anchor branches: the same operations on the same
            # values, in the same order (its bridge share and time left are not read then).
            # max/min are written as the comparisons they make (the same value, NaN too)
            sq, jp = [per_dt[d][0] for d in dts], [per_dt[d][1] for d in dts]
            for z1, z2, z3, u1, u2, dt, sqdt, jump_p in zip(z[0::3], z[1::3], z[2::3],
                                                             u[0::2], u[1::2], dts, sq, jp):
                sv = sqrt(v)
                zv = rho * z1 + rc * z2
                jump = 0.0
                if u1 < jump_p:
                    jump = jmean + jsd * z3
                    v += -jvar * log(1.0 - u2)
                    sv = sqrt(v)
                drift = mu_k - 0.5 * v - revert * (x - x0)
                x += drift * dt + sv * sqdt * z1 + jump
                m = v / theta
                kap = kappa * sqrt(m if m > 1.0 else 1.0)  # max(1.0, m)
                v = v + kap * (theta - v) * dt + xi * sv * sqdt * zv
                v = v if v > V_FLOOR else V_FLOOR  # max(V_FLOOR, v)
                v = v if v < V_CAP else V_CAP  # min(V_CAP, v)
                xs.append(x)
                vs.append(v)
            return np.exp(np.array(xs)), np.array(vs)
        for i in range(n + 1):
            dt = dts[i]
            z1, z2, z3 = z[3 * i], z[3 * i + 1], z[3 * i + 2]
            sv = sqrt(v)
            zv = rho * z1 + rc * z2
            if i == 0 and a.open_ret is not None:
                x = x_prev + math.log1p(a.open_ret)
                if a.open_vix is not None:
                    v = self.var_for_vix(a.open_vix)
                rem -= dt
                xs.append(x)
                vs.append(v)
                continue
            sqdt, jump_p = per_dt[dt]
            share = 0.0
            if bridged and rem > dt * 1.0000001:
                share = sqrt(max(0.0, dt * (rem - dt) / rem))
            if xT is not None:
                x += (xT - x) * dt / rem + sv * share * z1
            else:
                jump = 0.0
                if u[2 * i] < jump_p:
                    jump = jmean + jsd * z3
                    v += -jvar * log(1.0 - u[2 * i + 1])
                    sv = sqrt(v)
                drift = mu_k - 0.5 * v - revert * (x - x0)
                x += drift * dt + sv * sqdt * z1 + jump
            if yT is not None:
                y = log(v)
                eta = min(6.0, max(1.0, xi / sv))
                v = exp(y + (yT - y) * dt / rem + eta * share * zv)
            else:
                kap = kappa * sqrt(max(1.0, v / theta))
                v = v + kap * (theta - v) * dt + xi * sv * sqdt * zv
            v = min(V_CAP, max(V_FLOOR, v))
            rem -= dt
            xs.append(x)
            vs.append(v)
        return np.exp(np.array(xs)), np.array(vs)

    @property
    def bars(self) -> pd.DataFrame:
        return self._bars
