"""The simulated SPX surface against the facts a trader checks first (MARKET-FACTS.md): the
Cboe VIX formula run on the simulator's own quotes gives back the simulator's VIX; ATM 30-day
vol sits below VIX; the 25-delta put skew is 2-8 points in calm markets, steeper in points
and flatter relative to ATM as VIX rises; the chain is free of static arbitrage; forwards
carry the scenario's short rate and dividend yield."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

import numpy as np
import pytest
from scipy.special import ndtr

from bot.broker.sim import SimBroker
from bot.clock import SimClock
from bot.sim import chains as ch
from bot.sim import scenarios as scn
from bot.sim import surface_vix as sv
from bot.sim.market import Market
from strategies import expiry as xp
from strategies import vix as vx
from strategies.pricing import black76_price

T30 = 30 / 365
WHEN = (datetime(2026, 1, 5, 10, 0, tzinfo=xp.NY), datetime(2026, 2, 9, 15, 0, tzinfo=xp.NY),
        datetime(2026, 3, 30, 12, 0, tzinfo=xp.NY))


def market_at(vix: float, when: datetime = WHEN[0], base: str = "calm") -> Market:
    m = Market(replace(scn.get(base), vix0=vix), 7, when, history_days=5)
    m.advance_to(when)
    return m


def atm_and_25d_put(m: Market, t: float = T30) -> tuple[float, float]:
    """(ATM vol at the forward, vol of the put whose Black-Scholes delta is -0.25), 30 days,
    the delta found here from the surface's vols (not by the simulator)."""
    F = float(m.forward(t))
    K = F * np.exp(np.linspace(-1.0, 0.0, 20001))
    iv = m.spx_iv(K, np.full(K.size, t))
    d1 = (np.log(F / K) + 0.5 * iv * iv * t) / (iv * math.sqrt(t))
    put_delta = -math.exp(-m.q * t) * ndtr(-d1)
    i = int(np.argmin(np.abs(put_delta + 0.25)))
    return float(iv[-1]) * 100, float(iv[i]) * 100


@pytest.mark.parametrize("level", [12.0, 20.0, 40.0, 80.0])
def test_the_vix_formula_on_the_sim_chain_gives_back_the_sim_vix(level):
    for when in WHEN:
        m = market_at(level, when)
        got = sv.surface_vix(m)
        assert abs(got - m.vix) < 0.5, (when, m.vix, got)


async def test_the_same_holds_on_the_broker_listing_and_for_its_monthlies_near_30_days():
    b = SimBroker(SimClock(datetime(2026, 1, 26, 10, 0, tzinfo=xp.NY)), "chop", 2)
    snap = await b.snapshot()
    assert abs(sv.surface_vix(b.market, b.book.strikes) - snap.vix) < 0.1
    # the listed monthlies (25 and 53 days out) bracket 30 days loosely: the formula still
    # lands within half a point at this calm level
    monthlies = vx.vix_from_chains(snap.chains.values(), b.market.r)
    assert abs(monthlies - snap.vix) < 0.5


def test_vix_terms_are_the_fridays_bracketing_30_days():
    terms = sv.vix_expiries(datetime(2026, 1, 5, 10, 0, tzinfo=xp.NY))
    i, j = vx.pick_terms([t for _, t in terms])
    (e1, t1), (e2, t2) = terms[i], terms[j]
    assert (e1.isoformat(), e2.isoformat()) == ("2026-01-30", "2026-02-06")
    # weeklies settle at 16:00 New York: Jan 5 10:00 -> Jan 30 16:00 is 25 days 6 hours
    assert t1 * 365 == pytest.approx(25.25) and t2 * 365 == pytest.approx(32.25)
    # the third Friday is the AM-settled monthly (09:30), Good Friday 2026 (Apr 3) moves to
    # the Thursday
    feb = dict(sv.vix_expiries(datetime(2026, 1, 25, 9, 30, tzinfo=xp.NY)))
    assert feb[datetime(2026, 2, 20).date()] * 365 == pytest.approx(26.0)
    apr = dict(sv.vix_expiries(datetime(2026, 3, 6, 10, 0, tzinfo=xp.NY)))
    assert datetime(2026, 4, 2).date() in apr and datetime(2026, 4, 3).date() not in apr


@pytest.mark.parametrize("level, lo, hi", [(12.0, 1.0, 4.0), (20.0, 1.0, 4.0), (40.0, 0.5, 8.0),
                                           (80.0, 0.5, 10.0)])
def test_atm_30_day_vol_sits_below_vix(level, lo, hi):
    m = market_at(level)
    atm, _ = atm_and_25d_put(m)
    assert lo <= m.vix - atm <= hi, (m.vix, atm)  # 1-4 points in normal markets


def test_25_delta_put_skew_band_and_how_it_moves_with_the_level():
    skews, rel = [], []
    for level in (12.0, 16.0, 20.0, 24.0, 40.0, 80.0):
        m = market_at(level)
        atm, put = atm_and_25d_put(m)
        if m.vix < 25:
            assert 2.0 <= put - atm <= 8.0, (m.vix, atm, put)
        skews.append(put - atm)
        rel.append(put / atm - 1)
    assert skews == sorted(skews)  # steeper in vol points as VIX rises ...
    assert rel == sorted(rel, reverse=True)  # ... flatter relative to ATM


@pytest.mark.parametrize("level", [12.0, 40.0, 80.0])
def test_the_surface_is_free_of_static_arbitrage(level):
    m = market_at(level)
    ks = ch.listing(m.spx)
    for t in (2 / 365, 30 / 365, 120 / 365):
        iv = m.spx_iv(ks, np.full(ks.size, t))
        call = black76_price("c", float(m.forward(t)), ks, t, m.r, iv)
        slope = np.diff(call) / np.diff(ks)
        df = math.exp(-m.r * t)
        assert np.all(slope <= 1e-12) and np.all(slope >= -df - 1e-12)  # verticals
        assert np.all(np.diff(slope) >= -1e-10)  # butterflies
    x = np.linspace(-0.5, 0.3, 41)
    w = [m.spx_iv(float(m.forward(t)) * np.exp(x), np.full(x.size, t)) ** 2 * t
         for t in (7 / 365, 30 / 365, 90 / 365, 180 / 365)]
    assert all(np.all(b > a) for a, b in zip(w, w[1:]))  # calendars: total variance grows


def test_scenarios_carry_a_short_rate_and_a_dividend_yield():
    for sc in scn.SCENARIOS.values():
        assert 0.0 <= sc.r <= 0.06 and 0.01 <= sc.q <= 0.025, sc.name
    m = market_at(20.0)
    assert (m.r, m.q) == (scn.get("calm").r, scn.get("calm").q)
    assert float(m.forward(0.5)) == pytest.approx(m.spx * math.exp((m.r - m.q) * 0.5))
    assert scn.get("crash_2020").r < scn.get("calm").r  # Feb 2020 T-bills ~1.5%
