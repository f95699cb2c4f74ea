"""Market scenarios for the simulator: model parameters plus scheduled, anchored days.

A scenario is a set of model parameters (see `bot.sim.market` for the model) and a tuple of
`Anchor`s. An anchor pins one trading day (counted from the scenario start: day 0 is the
first session the market runs) to a close and/or an open taken from the public record; the
model interpolates the path in between with a Brownian bridge, and steers its variance so
that the VIX it computes (from its own 30-day expected variance) lands on the anchored VIX.
SPX anchors are *returns* (applied to wherever the simulated SPX stands), VIX anchors are
levels. Days after the last anchor run on the free model again.

Every scenario carries a short rate `r` and an SPX dividend yield `q` (continuously
compounded; `Market.r`, `Market.q`): they set the forwards the options are priced on, and
are the rates a backtest credits on cash and pays out on an index holding. Defaults are
2025-26 levels (3-month T-bill ~4%, S&P 500 dividend yield ~1.3%); the replays use their
era's (2017 ~0.9% / 1.9%, early 2018 ~1.4% / 1.8%, Feb 2020 ~1.5% / 1.9%).

Built-in scenarios (`condorbot scenarios` lists them):
  calm              low, mean-reverting vol; SPX drifts up; no schedule.
  grind_up          2017-like: very low vol, steady rally (2017: SPX +19.4%, VIX averaged
                    11.1, record-low close 9.14 on 2017-11-03; Cboe VIX history).
  chop              range-bound, vol-of-vol high, frequent small jumps (2015-like: SPX range
                    1867-2131, VIX 11-40). The pull back to the start level is gentle
                    (revert 1.5/year, half-life ~5 months): option prices cannot know of
                    it, so a strong pull is a free lunch for premium sellers (at 6/year a
                    17% dip drifted back at ~100%/year and the CNDR rules earned 20-105%
                    a year on their collateral over seeds 1-5).
  crash_2020        Feb 4 - Mar 31 2020 replayed from day 0: an up-leg to the Feb 19 record
                    (3386.15), then the crash from day 11: -33.9% to Mar 23 (2237.40), the
                    -11.98% day of Mar 16 on day 28 (open gap -7.5%), VIX record close 82.69.
  volmageddon_2018  Jan 16 - Feb 16 2018 replayed: VIX 10-11 in mid-January, then on day 14
                    (Feb 5 2018) VIX 17.31 -> 37.32 (+115.6%, its largest one-day % rise),
                    SPX -4.10%; Feb 8 SPX -3.75%.
  gap_down          calm start, then an overnight gap of -7.5% (Mar 16 2020's) at the open
                    of day 4, through the short put of a 16-delta condor entered on day 0.
  replay:PATH       a CSV of daily closes (columns date, spx, vix; header names
                    case-insensitive, `close`/`spx_close` and `vix_close` accepted; dates
                    YYYY-MM-DD). Row 0 is the close before day 0; row i+1 anchors day i. A
                    replay runs on the file's own dates (`Scenario.dates`; the sim factory
                    starts the clock on the first), on that era's exchange calendar: rows
                    must be consecutive SPX sessions, ascending, within the calendar
                    (2000-2050), with positive prices; the first bad row is named.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

from strategies import expiry as xp


@dataclass(frozen=True)
class Anchor:
    """Pins trading day `day`: `close_ret`/`open_ret` are SPX returns from the previous
    close, `close_vix`/`open_vix` VIX levels. None leaves that value to the model."""

    day: int
    close_ret: float | None = None
    close_vix: float | None = None
    open_ret: float | None = None
    open_vix: float | None = None


@dataclass(frozen=True)
class Scenario:
    """Model parameters (annualized, trading-time years of 252 sessions) and a schedule."""

    name: str
    summary: str
    spx0: float = 6000.0  # SPX close before day 0
    vix0: float = 14.0  # VIX close before day 0 (the model's variance is set to match)
    theta: float = 0.15**2  # long-run variance, real-world (P) measure
    vrp: float = 1.35  # Q / P instantaneous variance: the variance risk premium (see market)
    theta_q: float = 0.185**2  # long-run variance under Q: where the VIX futures curve heads
    kappa: float = 5.0  # mean reversion per year at v <= theta (faster above: see market)
    kappa_q: float = 3.0  # the same under Q (sets the VIX futures curve)
    xi: float = 0.35  # vol of variance
    rho: float = -0.8  # correlation of SPX and variance shocks
    mu: float = 0.07  # SPX drift per year
    jump_rate: float = 1.0  # jumps per year
    jump_mean: float = -0.025  # mean log jump
    jump_sd: float = 0.02
    jump_var: float = 0.02  # mean variance added by a jump (exponential)
    revert: float = 0.0  # pull of log SPX back to spx0, per year (chop: 1.5, see below)
    divergence_rate: float = 3.0  # A/D divergence episodes started per year
    divergences: tuple[tuple[int, int], ...] = ()  # scheduled (first day, length) episodes
    r: float = 0.04  # short rate (3-month T-bill), continuously compounded: forwards, cash
    q: float = 0.013  # SPX dividend yield, continuously compounded: F = S e^((r - q) t)
    anchors: tuple[Anchor, ...] = field(default_factory=tuple)
    dates: tuple[date, ...] = ()  # a replay's session dates: day i is dates[i]

    def anchor(self, day: int) -> Anchor | None:
        for a in self.anchors:
            if a.day == day:
                return a
        return None


def _replay(rows: list[tuple[float, float]], first_day: int = 0,
            opens: dict[int, float] | None = None) -> tuple[Anchor, ...]:
    """Anchors from consecutive (SPX close, VIX close) rows; rows[0] is the base close.
    `opens` maps a row index to its SPX open (an overnight gap to reproduce)."""
    out = []
    for i in range(1, len(rows)):
        ret = rows[i][0] / rows[i - 1][0] - 1.0
        op = (opens or {}).get(i)
        out.append(Anchor(first_day + i - 1, close_ret=ret, close_vix=rows[i][1],
                          open_ret=None if op is None else op / rows[i - 1][0] - 1.0))
    return tuple(out)


# Daily closes, S&P 500 index and Cboe VIX, Feb 3 - Mar 31 2020 (public record: S&P Dow
# Jones Indices, Cboe VIX historical data). Row 0 (Feb 3) is the base; Feb 4 is day 0.
# Landmarks: record high Feb 19 (3386.15); Mar 9 -7.60%, Mar 12 -9.51%, Mar 16 -11.98%
# (the worst day since 1987; VIX record close 82.69); trough Mar 23 (2237.40, -33.9%).
CRASH_2020 = [
    (3248.92, 17.97),  # Feb 3
    (3297.59, 16.05), (3334.69, 15.15), (3345.78, 14.96), (3327.71, 15.47),  # Feb 4-7
    (3352.09, 15.04), (3357.75, 15.18), (3379.45, 13.74), (3373.94, 14.15),  # Feb 10-13
    (3380.16, 13.68), (3370.29, 14.83), (3386.15, 14.38),  # Feb 14, 18, 19 (day 10)
    (3373.23, 15.56), (3337.75, 17.08), (3225.89, 25.03), (3128.21, 27.85),  # Feb 20-25
    (3116.39, 27.56), (2978.76, 39.16), (2954.22, 40.11),  # Feb 26-28
    (3090.23, 33.42), (3003.37, 36.82), (3130.12, 31.99), (3023.94, 39.62),  # Mar 2-5
    (2972.37, 41.94),  # Mar 6
    (2746.56, 54.46), (2882.23, 47.30), (2741.38, 53.90), (2480.64, 75.47),  # Mar 9-12
    (2711.02, 57.83),  # Mar 13
    (2386.13, 82.69), (2529.19, 75.91), (2398.10, 76.45), (2409.39, 72.00),  # Mar 16-19
    (2304.92, 66.04),  # Mar 20
    (2237.40, 61.59), (2447.33, 63.95), (2475.56, 61.67), (2630.07, 61.00),  # Mar 23-26
    (2541.47, 65.54), (2626.65, 57.08), (2584.59, 53.54),  # Mar 27, 30, 31
]
# Opening prints on the gap days (S&P 500 daily open): Mar 9 2863.89 (futures limit-down
# overnight), Mar 12 2630.86, Mar 16 2508.59 (-7.5% gap after the Fed's Sunday cut).
CRASH_2020_OPENS = {24: 2863.89, 27: 2630.86, 29: 2508.59}

# Daily closes Jan 12 - Feb 16 2018 (S&P 500, Cboe VIX). Row 0 (Jan 12) is the base.
# Feb 5 2018 (day 14): VIX 17.31 -> 37.32 (+115.6%, the largest one-day % rise in its
# history), SPX -4.10% (2762.13 -> 2648.94); Feb 8: SPX -3.75%, VIX 33.46.
VOLMAGEDDON_2018 = [
    (2786.24, 10.16),  # Jan 12
    (2776.42, 11.66), (2802.56, 11.91), (2798.03, 12.22), (2810.30, 11.27),  # Jan 16-19
    (2832.97, 11.03), (2839.13, 11.10), (2837.54, 11.47), (2839.25, 11.58),  # Jan 22-25
    (2872.87, 11.08),  # Jan 26 (record high)
    (2853.53, 13.84), (2822.43, 14.79), (2823.81, 13.54), (2821.98, 13.47),  # Jan 29-Feb 1
    (2762.13, 17.31),  # Feb 2
    (2648.94, 37.32), (2695.14, 29.98), (2681.66, 27.73), (2581.00, 33.46),  # Feb 5-8
    (2619.55, 29.06),  # Feb 9
    (2656.00, 25.61), (2662.94, 24.97), (2698.63, 19.26), (2731.20, 19.13),  # Feb 12-15
    (2732.22, 19.46),  # Feb 16
]

# gap_down: the largest overnight gap of the modern SPX record, Mar 16 2020 (open 2508.59
# after a 2711.02 close: -7.5%), dropped into a calm market. A calm-market 16-delta put at
# 45-60 DTE sits ~6-7% below spot, so the gap goes through it. The session then closes at
# -8.0%; VIX opens at 45 and closes at 42 (Aug 24 2015: 28.03 -> 53.29 intraday; Aug 5 2024:
# 23.39 -> 65.73 pre-market, 38.57 close).
# The four sessions before it are pinned quiet and drifting a little lower (modelled, not
# historical: closes within 0.4%, -0.6% in all; VIX left to the model) so that the gap
# meets the condor where it was entered.
GAP_DAY = 4
GAP_DOWN = (
    *(Anchor(d, close_ret=r) for d, r in enumerate((-0.002, 0.001, -0.004, -0.001))),
    Anchor(GAP_DAY, close_ret=-0.080, close_vix=42.0, open_ret=-0.0747, open_vix=45.0),
)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("calm", "low, mean-reverting vol (VIX ~13-15, realized ~10%); SPX drifts up; "
             "no scheduled shock", theta=0.10**2, vrp=1.45, xi=0.3, mu=0.06, jump_rate=0.5),
    Scenario("grind_up", "2017-like: VIX ~10-11, realized vol ~7%, steady rally, few jumps",
             vix0=10.5, theta=0.085**2, theta_q=0.15**2, xi=0.2, mu=0.18, jump_rate=0.3,
             jump_mean=-0.015, jump_var=0.005, divergence_rate=2.0, r=0.009, q=0.019),
    Scenario("chop", "range-bound SPX, VIX ~18 swinging hard, frequent small jumps (2015-like)",
             vix0=18.0, theta=0.17**2, theta_q=0.21**2, kappa=4.0, xi=0.7, mu=0.0, jump_rate=4.0,
             jump_mean=-0.012, jump_sd=0.006, jump_var=0.01, revert=1.5, divergence_rate=5.0,
             q=0.015),
    Scenario("crash_2020", "Feb-Mar 2020 replay: record high day 10, crash from day 11, "
             "-11.98% and VIX 82.69 on day 28, trough day 33",
             vix0=CRASH_2020[0][1], theta=0.17**2, theta_q=0.22**2,
             anchors=_replay(CRASH_2020, 0, CRASH_2020_OPENS), divergences=((0, 11),),
             r=0.015, q=0.019),
    Scenario("volmageddon_2018", "Jan-Feb 2018 replay: VIX 17.31 -> 37.32 (+116%) and SPX "
             "-4.1% on day 14 (Feb 5 2018)",
             vix0=VOLMAGEDDON_2018[0][1], theta=0.12**2, theta_q=0.17**2,
             anchors=_replay(VOLMAGEDDON_2018, 0), r=0.014, q=0.018),
    Scenario("gap_down", f"calm, then a -7.5% overnight gap at the open of day {GAP_DAY} "
             "(VIX to 45), through a 16-delta short put entered on day 0",
             anchors=GAP_DOWN),
)}

REPLAY_PREFIX = "replay:"


def load_csv(path: str | Path) -> Scenario:
    """A replay scenario from a CSV of daily SPX and VIX closes (see the module docstring);
    ValueError naming the file, line and value of the first bad row."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ValueError(f"cannot read replay CSV {p}: {e.strerror}") from None
    reader = csv.DictReader(text.splitlines())
    names = {n.strip().lower(): n for n in (reader.fieldnames or [])}
    spx_col = next((names[n] for n in ("spx", "close", "spx_close") if n in names), None)
    vix_col = next((names[n] for n in ("vix", "vix_close") if n in names), None)
    if spx_col is None or vix_col is None or "date" not in names:
        raise ValueError(f"replay CSV {p} needs columns date, spx (or close) and vix; "
                         f"found {reader.fieldnames}")
    rows: list[tuple[float, float]] = []
    days: list[date] = []
    for n, rec in enumerate(reader, start=2):
        days.append(_row_date(p, n, rec[names["date"]], days[-1] if days else None))
        try:
            spx, vix = float(rec[spx_col]), float(rec[vix_col])
        except (TypeError, ValueError):
            raise ValueError(f"replay CSV {p} line {n} ({days[-1]}): missing or bad price "
                             f"(spx {rec[spx_col]!r}, vix {rec[vix_col]!r})") from None
        if not (spx > 0 and 0 < vix < 200):
            raise ValueError(f"replay CSV {p} line {n} ({days[-1]}): spx must be > 0 and vix "
                             f"in (0, 200), got spx {spx:g}, vix {vix:g}")
        rows.append((spx, vix))
    if len(rows) < 2:
        raise ValueError(f"replay CSV {p} needs at least two rows of closes")
    return replace(SCENARIOS["chop"], name=f"{REPLAY_PREFIX}{p}", revert=0.0, mu=0.05,
                   summary=f"replay of {len(rows) - 1} daily closes from {p.name}, "
                           f"{days[1]} to {days[-1]}",
                   spx0=rows[0][0], vix0=rows[0][1], anchors=_replay(rows),
                   dates=tuple(days[1:]))


def _row_date(p: Path, n: int, text: str | None, prev: date | None) -> date:
    """The date of CSV line n, checked: a session of the calendar, the one after `prev`."""
    where = f"replay CSV {p} line {n}"
    try:
        d = date.fromisoformat((text or "").strip())
    except ValueError:
        raise ValueError(f"{where}: bad date {text!r} (want YYYY-MM-DD)") from None
    if not xp.CALENDAR_START <= d <= xp.CALENDAR_END:
        raise ValueError(f"{where}: {d} is outside the exchange calendar "
                         f"({xp.CALENDAR_START}..{xp.CALENDAR_END})")
    if xp.spx_option_session(d) is None:
        raise ValueError(f"{where}: {d} is not an SPX trading day ({d:%A} or a holiday)")
    if prev is not None:
        if d <= prev:
            raise ValueError(f"{where}: {d} does not follow {prev} (line {n - 1}): rows must "
                             f"be in date order, one per trading day")
        nxt = _next_session(prev)
        if d != nxt:
            raise ValueError(f"{where}: gap: no row for {nxt}, a trading day between {prev} "
                             f"(line {n - 1}) and {d}")
    return d


def _next_session(d: date) -> date:
    for k in range(1, 15):
        c = d + timedelta(days=k)
        if c > xp.CALENDAR_END or xp.spx_option_session(c) is not None:
            return c
    raise ValueError(f"no SPX session in the two weeks after {d}")


def get(name: str) -> Scenario:
    """A scenario by name, or `replay:PATH` (a bare path ending in .csv works too)."""
    if name in SCENARIOS:
        return SCENARIOS[name]
    if name.startswith(REPLAY_PREFIX):
        return load_csv(name[len(REPLAY_PREFIX):])
    if name.lower().endswith(".csv"):
        return load_csv(name)
    raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}, "
                     f"or {REPLAY_PREFIX}PATH.csv")
