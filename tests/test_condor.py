"""Strike selection on a synthetic chain whose deltas are known by construction."""

from datetime import date

import numpy as np
import pytest

from strategies.condor import build_condor, nearest_delta
from strategies.types import Chain

EXP = date(2026, 3, 20)


def chain(strikes, put_delta, call_delta, bid=1.0, ask=1.2) -> Chain:
    n = len(strikes)
    full = lambda v: np.full(n, v, dtype=float)  # noqa: E731
    return Chain("SPX", "SPX", EXP, 0.15, np.asarray(strikes, float),
                 call_bid=full(bid), call_ask=full(ask), put_bid=full(bid), put_ask=full(ask),
                 call_delta=np.asarray(call_delta, float), put_delta=np.asarray(put_delta, float),
                 call_iv=full(0.2), put_iv=full(0.2), call_vega=full(1.0), put_vega=full(1.0))


def linear_chain(step=5.0):
    strikes = np.arange(5000.0, 7000.0 + step, step)
    # delta falls linearly away from 6000 so the expected strikes can be worked out by hand
    call_delta = np.clip(0.5 - (strikes - 6000.0) / 1000.0, 0.0, 1.0)
    put_delta = -np.clip(0.5 + (strikes - 6000.0) / 1000.0, 0.0, 1.0)
    return chain(strikes, put_delta, call_delta)


def test_shorts_at_delta_016_and_wings_50_out():
    c, why = build_condor(linear_chain(), 0.16, 0.15, 0.20, 50)
    assert why == ""
    # |put delta| = 0.5 + (K-6000)/1000 = 0.16 -> K = 5660;
    # call delta = 0.5 - (K-6000)/1000 = 0.16 -> K = 6340
    assert c.strikes == (5610.0, 5660.0, 6340.0, 6390.0)
    assert [leg.ratio for leg in c.legs] == [1, -1, -1, 1]
    assert [leg.contract.right for leg in c.legs] == ["P", "P", "C", "C"]
    assert c.mid == pytest.approx(2 * 1.1 - 2 * 1.1)
    assert c.natural == pytest.approx(2 * 1.2 - 2 * 1.0)


def test_wings_snap_outward_to_listed_strikes():
    c, _ = build_condor(linear_chain(step=25.0), 0.16, 0.15, 0.20, 30)
    # shorts nearest 0.16 on a 25-point grid: 5650 (0.15) or 5675 (0.175) -> 5650 ; 6350
    assert c.short_put == 5650.0 and c.short_call == 6350.0
    assert c.long_put == 5600.0 and c.long_call == 6400.0  # 30 points out, snapped outward


def test_no_strike_in_band():
    strikes = np.arange(5000.0, 7000.0, 100.0)
    put_delta = np.where(strikes < 6000, -0.05, -0.5)
    call_delta = np.where(strikes > 6000, 0.05, 0.5)
    c, why = build_condor(chain(strikes, put_delta, call_delta), 0.16, 0.15, 0.20, 50)
    assert c is None and why == "no_short_strike_in_delta_band"


def test_bad_quotes_are_skipped():
    ch = linear_chain()
    i = int(np.searchsorted(ch.strikes, 5660.0))
    ch.put_bid[i] = np.nan  # the ideal strike has a broken quote
    c, _ = build_condor(ch, 0.16, 0.15, 0.20, 50)
    assert c.short_put in (5655.0, 5665.0)


def test_crossed_quote_is_not_a_candidate():
    ok = np.array([True, True, True])
    delta = np.array([-0.10, -0.16, -0.19])
    assert nearest_delta(np.array([1.0, 2.0, 3.0]), delta, ok, 0.16, 0.15, 0.2) == 1
    assert nearest_delta(np.array([1.0, 2.0, 3.0]), delta, np.array([True, False, True]),
                         0.16, 0.15, 0.2) == 2
