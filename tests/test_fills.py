"""The one fill model (bot.sim.fills): marketable limits fill at natural, nothing fills at mid,
resting fills are seeded draws whose rate rises toward natural and falls with the spread and
the leg count; the same (seed, key) gives the same answer in any order."""

from __future__ import annotations

import random

import pytest

from bot.broker.sim import make_sim_broker
from bot.config import Settings
from bot.sim.fills import FillModel

M = FillModel(seed=11)
MID, NAT = -4.00, -3.50  # a credit condor: selling at natural gets less credit than mid


def rate(model: FillModel, limit: float, mid: float, natural: float, legs: int,
         n: int = 4000) -> float:
    return sum(model.fill(limit, mid, natural, legs, f"k{i}") is not None for i in range(n)) / n


def test_marketable_limit_fills_at_natural_whatever_the_draw():
    # signed prices, debit > 0: BUYing the combo at -3.50 (a 3.50 credit) or any higher limit
    # is marketable when natural is -3.50; the fill is at natural, never at the limit
    for i in range(200):
        assert M.fill(-3.50, MID, NAT, 4, f"m{i}") == NAT
        assert M.fill(-1.00, MID, NAT, 4, f"m{i}") == NAT
        assert M.fill(2.10, 2.00, 2.10, 2, f"d{i}") == 2.10  # a debit spread, limit = natural
    assert M.fill(5.0, 5.0, 5.0, 1, "zero-width") == 5.0


def test_nothing_fills_at_mid_or_better():
    for i in range(2000):
        assert M.fill(MID, MID, NAT, 4, f"x{i}") is None
        assert M.fill(MID - 0.25, MID, NAT, 4, f"x{i}") is None
        assert M.fill(1.99, 2.00, 2.10, 1, f"x{i}") is None
    assert M.fill(4.99, 5.0, 5.0, 1, "zero-width") is None


def test_fill_rate_rises_from_mid_toward_natural():
    rates = [rate(M, MID + a * (NAT - MID), MID, NAT, 4) for a in (0.1, 0.3, 0.5, 0.7, 0.9)]
    assert rates == sorted(rates) and rates[0] < 0.02 and rates[-1] > 0.4
    # the documented curve: a^2 x 0.9^3 / (1 + 0.5/2) at a = 0.5 is 0.1458
    assert rates[2] == pytest.approx(0.25 * 0.729 / 1.25, abs=0.02)


def test_fill_rate_falls_with_spread_width_and_leg_count():
    half = 0.5  # halfway from mid to natural
    narrow = rate(M, 1.0 + half * 0.2, 1.0, 1.2, 2)
    wide = rate(M, 1.0 + half * 4.0, 1.0, 5.0, 2)
    assert wide < 0.6 * narrow
    two, four = rate(M, -3.75, MID, NAT, 2), rate(M, -3.75, MID, NAT, 4)
    assert four < two * 0.9


def test_same_seed_and_key_same_answer_in_any_order():
    keys = [f"C0001:entry#{i}@20260105T{10 + i // 60:02d}{i % 60:02d}" for i in range(500)]
    args = (-3.70, MID, NAT, 4)
    first = {k: M.fill(*args, k) for k in keys}
    shuffled = keys[:]
    random.Random(5).shuffle(shuffled)
    again = FillModel(seed=11)
    assert {k: again.fill(*args, k) for k in shuffled} == first
    other = FillModel(seed=12)
    assert {k: other.fill(*args, k) for k in keys} != first
    assert 0.05 < sum(v is not None for v in first.values()) / len(keys) < 0.6


def test_a_model_without_resting_fills_fills_only_marketable_limits():
    strict = FillModel(seed=11, resting=False)
    assert rate(strict, MID + 0.99 * (NAT - MID), MID, NAT, 1) == 0.0
    assert strict.fill(NAT, MID, NAT, 4, "k") == NAT
    assert "only marketable" in strict.describe()


def test_commission_and_partial_fill_quantities():
    assert M.commission(4) == pytest.approx(2.60)
    assert M.commission(8, futures=2) == pytest.approx(8 * 0.65 + 2 * 2.25)
    half = FillModel(seed=1, fill_ratio=0.5)
    assert [half.quantity(n) for n in (5, 3, 1)] == [2, 1, 1]
    assert M.quantity(7) == 7


@pytest.mark.parametrize("kw", [{"fill_ratio": 0.0}, {"leg_factor": 1.5}, {"shape": 0.0},
                                {"commission_per_contract": -1.0}])
def test_bad_parameters_are_refused(kw):
    with pytest.raises(ValueError):
        FillModel(seed=1, **kw)


def test_bad_prices_are_refused():
    with pytest.raises(ValueError, match="natural >= mid"):
        M.fill(-3.8, -3.5, -4.0, 4, "k")  # natural better than mid: not a quote
    with pytest.raises(ValueError, match="finite"):
        M.fill(float("nan"), -4.0, -3.5, 4, "k")


def test_the_sim_broker_trades_through_the_configured_model():
    s = Settings().model_copy(update={"sim": Settings().sim.model_copy(update={
        "seed": 4, "fill_shape": 1.5, "fill_leg_factor": 0.8, "commission_per_contract": 0.5})})
    broker, _ = make_sim_broker(s)
    assert broker.fills == FillModel(4, 0.5, shape=1.5, leg_factor=0.8)
    line = broker.fills.describe()
    assert "\n" not in line and "a^1.5" in line and "0.8^(legs-1)" in line and "$0.50" in line
