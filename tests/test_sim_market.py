"""The simulated market: reproducibility, VIX from the model, term structure, skew, breadth,
and the magnitudes of the historical scenarios."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from functools import cache

import numpy as np
import pandas as pd
import pytest

from bot.sim import scenarios as scn
from bot.sim.market import TAU30, Market, index_session
from strategies import expiry as xp

START = datetime(2026, 1, 5, 9, 30, tzinfo=xp.NY)


def run_days(m: Market, days: int) -> pd.DataFrame:
    """Advance to the close of `days` more sessions; their daily bars."""
    d = xp.exchange_date(m.now)
    done = 0
    while done < days:
        s = index_session(d)
        if s is not None and s[1] > m.now:
            m.advance_to(s[1])
            done += 1
        d += timedelta(days=1)
    return m.bars.iloc[-days:]


@cache
def daily(scenario: str, seed: int, days: int) -> pd.DataFrame:
    return run_days(Market(scenario, seed, START, history_days=30), days).copy()


def test_same_seed_same_path_whatever_the_query_pattern():
    a = Market("chop", 11, START)
    b = Market("chop", 11, START)
    t = START
    for _ in range(3 * 24 * 60 // 7):  # a every 7 minutes (off the grid), b only at closes
        t += timedelta(minutes=7)
        a.advance_to(t)
    run_days(b, 3)
    b.advance_to(t)
    assert a.spx == b.spx and a.v == b.v and a.ad_line == b.ad_line
    pd.testing.assert_frame_equal(a.bars, b.bars)
    c = Market("chop", 12, START)
    c.advance_to(t)
    assert c.spx != a.spx
    assert not np.allclose(c.bars.close.to_numpy()[:200], a.bars.close.to_numpy()[:200])


def test_history_is_a_warm_year_ending_at_the_start_levels():
    m = Market("calm", 3, START)
    h = m.bars
    assert len(h) == 260 and list(h.columns) == ["open", "high", "low", "close", "vix", "ad_line"]
    assert h.index[-1] < pd.Timestamp(START.date()) and h.index.is_monotonic_increasing
    sc = scn.get("calm")
    assert h.close.iloc[-1] == pytest.approx(sc.spx0)
    assert h.vix.iloc[-1] == pytest.approx(sc.vix0, abs=0.01)
    assert (h.high >= h[["open", "close"]].max(axis=1)).all()
    assert (h.low <= h[["open", "close"]].min(axis=1)).all()
    assert h.close.pct_change().std() > 0.003 and h.ad_line.diff().abs().mean() > 100


def test_index_moves_only_in_session_and_opens_are_recorded():
    m = Market("calm", 5, START)
    run_days(m, 1)
    close = m.spx
    m.advance_to(datetime(2026, 1, 6, 9, 0, tzinfo=xp.NY))
    assert m.spx == close  # overnight: frozen
    m.advance_to(datetime(2026, 1, 6, 9, 30, tzinfo=xp.NY))
    assert m.opens[datetime(2026, 1, 6).date()][0] == m.spx != close  # the opening gap


def test_vix_is_the_models_30_day_expected_vol_and_forecasts_realized():
    m = Market("chop", 2, START, history_days=30)
    for _ in range(5):
        run_days(m, 1)
        assert m.vix == pytest.approx(100 * math.sqrt(float(m.expected_var(TAU30))))
    bars = run_days(m, 300)
    ret = np.log(bars.close).diff()
    fwd = ret.rolling(21).std().shift(-21) * math.sqrt(252) * 100  # next 21 sessions
    ok = fwd.notna()
    corr = np.corrcoef(bars.vix[ok], fwd[ok])[0, 1]
    ratio = bars.vix[ok].mean() / fwd[ok].mean()
    assert corr > 0.4, corr
    assert 1.02 < ratio < 1.6, ratio  # a variance risk premium, not an unrelated series


def test_vix_futures_contango_when_calm_backwardation_at_the_crash_peak():
    m = Market("calm", 4, START)
    checked = 0
    for _ in range(6):
        run_days(m, 5)
        f = list(m.vix_futures().values())
        if m.vix < 16:
            checked += 1
            assert m.vix < f[0] < f[1] < f[2] < f[-1], (m.vix, f)
    assert checked >= 4
    c = Market("crash_2020", 4, START)
    bars = run_days(c, 29)  # day 28 is Mar 16 2020
    assert bars.vix.iloc[-1] == pytest.approx(82.69, abs=0.01)
    f = list(c.vix_futures().values())
    assert c.vix > f[0] > f[1] > f[2] > f[-1], (c.vix, f)
    assert f[1] < 0.8 * c.vix


def test_skew_is_a_put_skew_flatter_relative_to_atm_when_vol_rises():
    calm = Market("crash_2020", 1, START)
    run_days(calm, 3)
    peak = Market("crash_2020", 1, START)
    run_days(peak, 29)
    t = 45 / 365
    rel = []
    for m in (calm, peak):
        k = m.spx * np.array([0.90, 1.0, 1.05])
        iv = m.iv(k, t)
        assert iv[0] > iv[1] > iv[2]
        rel.append(iv[0] / iv[1] - 1)
    assert peak.vix > 3 * calm.vix and rel[1] < 0.5 * rel[0]  # (in delta terms: test_sim_surface)


def test_daily_spx_returns_and_vix_changes_are_strongly_negatively_correlated():
    figures, rets, dvix = {}, [], []
    for name, days in (("calm", 250), ("chop", 250), ("crash_2020", 60)):
        b = daily(name, 7, days)
        rets.append(b.close.pct_change()[1:])
        dvix.append(b.vix.diff()[1:])
        figures[name] = np.corrcoef(rets[-1], dvix[-1])[0, 1]
    figures["pooled"] = np.corrcoef(np.concatenate(rets), np.concatenate(dvix))[0, 1]
    # measured (seed 7): calm -0.73, chop -0.66, crash_2020 -0.76, pooled -0.74
    # (SPX vs VIX since 1990: about -0.7 to -0.8); seeds 1-8 range -0.66 .. -0.81
    assert all(v < -0.6 for v in figures.values()) and figures["pooled"] < -0.7, figures


def test_ad_line_follows_returns_and_diverges_before_the_crash():
    b = daily("calm", 7, 250)
    assert np.corrcoef(b.close.pct_change()[1:], b.ad_line.diff()[1:])[0, 1] > 0.5
    c = daily("crash_2020", 7, 12)
    # days 0-10: SPX up to its Feb 19 2020 record while the (scheduled) divergence sinks breadth
    assert c.close.iloc[10] == c.close.iloc[:11].max()
    assert c.ad_line.iloc[10] < c.ad_line.iloc[0] - 1000


def test_crash_2020_magnitudes():
    b = daily("crash_2020", 7, 45)
    r = b.close.pct_change()
    assert r.iloc[28] == pytest.approx(-0.1198, abs=5e-4)  # Mar 16 2020
    assert r.min() == r.iloc[28] and b.vix.max() > 80
    peak, trough = b.close.iloc[10], b.close.iloc[33]
    assert trough / peak - 1 == pytest.approx(-0.339, abs=0.002)  # Feb 19 -> Mar 23: a month
    assert b.open.iloc[28] / b.close.iloc[27] - 1 == pytest.approx(-0.0747, abs=5e-4)


def test_volmageddon_vix_more_than_doubles_in_one_day_from_the_mid_teens():
    b = daily("volmageddon_2018", 7, 20)
    jump = b.vix / b.vix.shift(1)
    day = int(np.nanargmax(jump.to_numpy()))
    assert day == 14 and jump.iloc[day] > 2.0 and 13 <= b.vix.iloc[day - 1] <= 20
    assert b.close.iloc[day] / b.close.iloc[day - 1] - 1 == pytest.approx(-0.041, abs=1e-3)


def test_gap_down_opens_through_the_lows_of_the_quiet_week():
    b = daily("gap_down", 7, 6)
    gap = b.open.iloc[4] / b.close.iloc[3] - 1
    assert gap == pytest.approx(-0.0747, abs=5e-4)
    assert b.open.iloc[4] < 0.95 * b.low.iloc[:4].min()
    assert b.vix.iloc[4] == pytest.approx(42, abs=0.01)


def test_replay_csv_lands_on_every_close(tmp_path):
    rows = [(4000.0, 20.0), (4040.0, 18.5), (3900.0, 27.0), (3950.0, 24.0), (3700.0, 45.0)]
    path = tmp_path / "closes.csv"
    days = ("2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07", "2020-01-08")  # sessions
    path.write_text("Date,Close,VIX\n" + "".join(f"{d},{s},{v}\n"
                                                  for d, (s, v) in zip(days, rows)))
    m = Market(f"replay:{path}", 1, START)
    b = run_days(m, 6)
    np.testing.assert_allclose(b.close.iloc[:4], [r[0] for r in rows[1:]], rtol=1e-9)
    np.testing.assert_allclose(b.vix.iloc[:4], [r[1] for r in rows[1:]], atol=1e-6)
    assert b.close.iloc[4] != pytest.approx(3700.0, rel=1e-6)  # free model afterwards
    with pytest.raises(ValueError, match="columns"):
        bad = tmp_path / "bad.csv"
        bad.write_text("a,b\n1,2\n3,4\n")
        scn.get(f"replay:{bad}")
    with pytest.raises(ValueError, match="unknown scenario"):
        Market("nope", 1, START)


def _euler_day(m: Market, n: int, z: np.ndarray, u: np.ndarray) -> tuple[list, list]:
    """One free (unanchored) session of the model in the module docstring, an Euler step per
    grid minute (the overnight gap first), written out plainly: the reference."""
    sc = m.scenario
    day = 1.0 / 252.0
    x, v = math.log(m.spx), m.v
    xs, vs = [], []
    for i in range(n + 1):
        dt = 0.2 * day if i == 0 else 0.8 * day / n
        sv = math.sqrt(v)
        zv = sc.rho * z[i, 0] + math.sqrt(1.0 - sc.rho**2) * z[i, 1]
        jump = 0.0
        if u[i, 0] < sc.jump_rate * dt:
            jump = sc.jump_mean + sc.jump_sd * z[i, 2]
            v += -sc.jump_var * math.log(1.0 - u[i, 1])
            sv = math.sqrt(v)
        kbar = math.exp(sc.jump_mean + 0.5 * sc.jump_sd**2) - 1.0
        drift = sc.mu - sc.jump_rate * kbar - 0.5 * v - sc.revert * (x - math.log(sc.spx0))
        x += drift * dt + sv * math.sqrt(dt) * z[i, 0] + jump
        kap = sc.kappa * math.sqrt(max(1.0, v / sc.theta))
        v = v + kap * (sc.theta - v) * dt + sc.xi * sv * math.sqrt(dt) * zv
        v = min(25.0, max(0.06**2, v))
        xs.append(x)
        vs.append(v)
    return xs, vs


@pytest.mark.parametrize("scenario", ["chop", "calm"])
def test_a_free_session_path_is_the_models_euler_step(scenario: str) -> None:
    """The session path (drawn at the open) is the model's Euler step per minute, bit for bit
    where the arithmetic is the same (to 1e-12 where the reference orders it differently)."""
    m = Market(scenario, 3, datetime(2026, 3, 2, 9, 30, tzinfo=xp.NY))
    for _ in range(5):
        state = m.rng.bit_generator.state
        spx0, v0 = m.spx, m.v
        n = 390
        got_s, got_v = m._path(n, None)
        m.rng.bit_generator.state = state
        z = m.rng.standard_normal((n + 1, 3))
        u = m.rng.random((n + 1, 2))
        m.spx, m.v = spx0, v0
        xs, vs = _euler_day(m, n, z, u)
        np.testing.assert_allclose(np.log(got_s), xs, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got_v, vs, rtol=1e-12, atol=0)
        m.spx, m.v = float(got_s[-1]), float(got_v[-1])
