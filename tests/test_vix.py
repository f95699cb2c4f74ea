"""strategies.vix: the Cboe VIX methodology on the white paper's sample calculation and on a
small example worked by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from strategies import vix
from strategies.types import Chain

DATA = Path(__file__).parent / "data" / "cboe_vix_whitepaper.tsv"
# Cboe VIX white paper (2019 edition), sample calculation: minutes to settlement and the
# Treasury-derived rates of the near and next terms.
TERMS = {"near": (34_484, 0.00031664), "next": (44_954, 0.00028797)}


def whitepaper(term: str) -> vix.TermVariance:
    lines = (ln for ln in DATA.read_text().splitlines() if not ln.startswith("#"))
    rows = [r for r in csv.DictReader(lines, delimiter="\t") if r["term"] == term]
    col = {c: np.array([float(r[c]) for r in rows])
           for c in ("strike", "call_bid", "call_ask", "put_bid", "put_ask")}
    minutes, rate = TERMS[term]
    return vix.term_variance(col["strike"], col["call_bid"], col["call_ask"], col["put_bid"],
                             col["put_ask"], minutes / 525_600, rate)


@pytest.mark.parametrize("term, forward, put_end, call_end, sigma2", [
    # the white paper's figures: F1 = 1962.89996, F2 = 1962.40006, K0 = 1960 for both; the
    # near put strip stops at 1370 (1365 and 1360 have zero bids: 1355 and 1350 are out
    # although they have bids), the near call strip at 2125 (2120's lone zero bid is
    # skipped; 2150, 2175 end it); sigma1^2 = 0.019233906, sigma2^2 = 0.019423884
    ("near", 1962.89996, 1370.0, 2125.0, 0.019233906),
    ("next", 1962.40006, 1275.0, 2200.0, 0.019423884),
])
def test_term_variance_reproduces_the_white_paper(term, forward, put_end, call_end, sigma2):
    tv = whitepaper(term)
    assert tv.forward == pytest.approx(forward, abs=5e-5) and tv.k0 == 1960.0
    assert (tv.put_end, tv.call_end) == (put_end, call_end)
    assert tv.sigma2 == pytest.approx(sigma2, abs=1e-9)


def test_vix_reproduces_the_white_paper():
    # published: 100 x sqrt(...) = 100 x 0.13927842 = 13.93
    assert vix.interpolate(whitepaper("near"), whitepaper("next")) == pytest.approx(13.927842,
                                                                                   abs=1e-5)


# A chain worked by hand: T = 0.1 years, R = 0 (so e^(RT) = 1).
#   strike  call bid/ask   put bid/ask
HAND = np.array([
    [70, 31.0, 31.2, 0.05, 0.10],   # put has a bid but lies beyond two zero bids: unused
    [75, 26.0, 26.2, 0.00, 0.05],   # zero bid  } two consecutive zero bids end the put strip
    [80, 21.0, 21.2, 0.00, 0.05],   # zero bid  }
    [90, 11.4, 11.6, 0.40, 0.60],   # put mid 0.50
    [100, 2.9, 3.1, 1.90, 2.10],    # |C - P| = |3.0 - 2.0| = 1.0 is the smallest: F here
    [110, 0.4, 0.6, 9.40, 9.60],    # call mid 0.50
    [120, 0.0, 0.10, 19.0, 19.2],   # a lone zero bid: skipped, the strip goes on
    [130, 0.05, 0.15, 29.0, 29.2],  # call mid 0.10
])


def hand_term(t: float = 0.1) -> vix.TermVariance:
    k, cb, ca, pb, pa = HAND.T
    return vix.term_variance(k, cb, ca, pb, pa, t, 0.0)


def test_term_variance_on_a_hand_worked_chain():
    tv = hand_term()
    # F = 100 + e^0 (3.0 - 2.0) = 101; K0 = 100 (the strike at or below F)
    assert tv.forward == pytest.approx(101.0) and tv.k0 == 100.0
    # strikes used: 90 P (0.50), 100 (call and put mids averaged: (3.0 + 2.0)/2 = 2.50),
    # 110 C (0.50), 130 C (0.10); dK: 90 -> 100-90 = 10, 100 -> (110-90)/2 = 10,
    # 110 -> (130-100)/2 = 15, 130 -> 130-110 = 20
    assert (tv.put_end, tv.call_end, tv.strikes_used) == (90.0, 130.0, 4)
    # sum dK/K^2 Q = 10/8100 x 0.5 + 10/10000 x 2.5 + 15/12100 x 0.5 + 20/16900 x 0.1
    #              = 0.000617284 + 0.0025 + 0.000619835 + 0.000118343 = 0.003855462
    # sigma^2 = (2/0.1) x 0.003855462 - (1/0.1) x (101/100 - 1)^2 = 0.07710924 - 0.001
    assert tv.sigma2 == pytest.approx(0.07610924, abs=1e-8)


def test_rate_grows_the_prices_and_moves_the_forward():
    k, cb, ca, pb, pa = HAND.T
    tv = vix.term_variance(k, cb, ca, pb, pa, 0.1, 0.05)
    g = np.exp(0.005)  # e^(RT) = e^(0.05 x 0.1)
    assert tv.forward == pytest.approx(100 + g * 1.0)
    f_term = (tv.forward / 100 - 1) ** 2 / 0.1
    assert tv.sigma2 == pytest.approx(20 * g * 0.003855462 - f_term, abs=1e-8)


def test_interpolation_to_30_days_in_minutes():
    # near 20 days (N1 = 28,800 min), sigma^2 = 0.04; next 40 days (N2 = 57,600), 0.0625:
    # weights (57600-43200)/28800 = 0.5 each; T1 s1^2 = 28800/525600 x 0.04 = 1152/525600,
    # T2 s2^2 = 57600/525600 x 0.0625 = 3600/525600; 0.5 x 4752/525600 x 525600/43200
    # = 2376/43200 = 0.055; VIX = 100 sqrt(0.055) = 23.4521
    near = vix.TermVariance(28_800 / 525_600, 0.04, 0, 0, 0, 0, 0)
    nxt = vix.TermVariance(57_600 / 525_600, 0.0625, 0, 0, 0, 0, 0)
    assert vix.interpolate(near, nxt) == pytest.approx(23.452079, abs=1e-6)
    with pytest.raises(ValueError, match="after the near"):
        vix.interpolate(nxt, near)


def test_pick_terms_brackets_30_days():
    d = 1 / 365
    assert vix.pick_terms([45 * d, 17 * d, 80 * d]) == (1, 0)
    assert vix.pick_terms([2 * d, 29 * d, 57 * d]) == (1, 2)  # latest at or within 30 days
    assert vix.pick_terms([30 * d, 58 * d]) == (0, 1)
    assert vix.pick_terms([40 * d, 70 * d, 100 * d]) == (0, 1)  # none within: extrapolate
    with pytest.raises(ValueError):
        vix.pick_terms([0.0, 20 * d])


def test_vix_from_chains_picks_the_bracketing_pair():
    k, cb, ca, pb, pa = HAND.T
    nan = np.full(k.size, np.nan)

    def chain(days: float) -> Chain:
        return Chain("SPX", "SPX", date(2026, 1, 1), days / 365, k, cb, ca, pb, pa,
                     nan, nan, nan, nan, nan, nan)

    got = vix.vix_from_chains([chain(60), chain(20), chain(40)], 0.0)
    near, nxt = hand_term(20 / 365), hand_term(40 / 365)
    assert got == pytest.approx(vix.interpolate(near, nxt))


def test_bad_quotes_are_refused():
    k, cb, ca, pb, pa = HAND.T
    with pytest.raises(ValueError, match="ascending"):
        vix.term_variance(k[::-1], cb, ca, pb, pa, 0.1, 0.0)
    with pytest.raises(ValueError, match="one length"):
        vix.term_variance(k, cb[:-1], ca, pb, pa, 0.1, 0.0)
    with pytest.raises(ValueError, match="> 0 years"):
        vix.term_variance(k, cb, ca, pb, pa, 0.0, 0.0)
    nan = np.full(k.size, np.nan)
    with pytest.raises(ValueError, match="both a call and a put"):
        vix.term_variance(k, nan, nan, pb, pa, 0.1, 0.0)
