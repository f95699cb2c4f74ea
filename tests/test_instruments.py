"""Instrument rules against the published Cboe / CFE contract specs, and the price walk."""

from __future__ import annotations

from datetime import date

import pytest

from strategies import instruments as ins
from strategies import walk
from strategies.types import Contract, Leg

EXP = date(2026, 3, 20)


def opt(symbol: str, tc: str, strike: float = 100.0, right: str = "C") -> Contract:
    return Contract(symbol, "OPT", EXP, strike, right, tc, 100)


def condor(symbol: str, tc: str) -> tuple[Leg, ...]:
    return tuple(Leg(opt(symbol, tc, k, r), q)
                 for k, r, q in ((90, "P", 1), (95, "P", -1), (105, "C", -1), (110, "C", 1)))


@pytest.mark.parametrize(("tc", "price", "tick"), [
    ("SPX", 2.95, 0.05), ("SPX", 3.0, 0.10), ("SPX", 45.0, 0.10),
    ("SPXW", 1.0, 0.05), ("SPXW", 12.0, 0.10),
])
def test_spx_single_leg_ticks(tc: str, price: float, tick: float) -> None:
    assert ins.leg_tick(opt("SPX", tc), price) == tick


def test_spx_complex_orders_tick_in_a_nickel_at_any_price() -> None:
    assert ins.combo_tick(condor("SPX", "SPX"), 12.35) == 0.05
    assert ins.combo_tick(condor("SPX", "SPXW"), -1.2) == 0.05


def test_vix_ticks_since_cboe_2022_change() -> None:
    # single leg: 0.01 under $3, 0.05 at or over; complex orders 0.01 at any net price
    assert ins.leg_tick(opt("VIX", "VIX"), 2.99) == 0.01
    assert ins.leg_tick(opt("VIX", "VIX"), 3.5) == 0.05
    spread = (Leg(opt("VIX", "VIX", 20), 1), Leg(opt("VIX", "VIX", 30), -1))
    assert ins.combo_tick(spread, 4.37) == 0.01
    assert ins.combo_tick(spread, -6.0) == 0.01


def test_vix_future_and_multipliers() -> None:
    fut = Contract("VIX", "FUT", EXP, multiplier=1000)
    vx = ins.for_contract(fut)
    assert (vx.trading_class, vx.multiplier, vx.tick(18.0), vx.exchange) == ("VX", 1000, 0.05,
                                                                            "CFE")
    assert ins.for_contract(opt("SPX", "SPX")).multiplier == 100
    assert ins.for_contract(opt("SPX", "SPX")).settlement == "AM_SOQ"
    assert ins.for_contract(opt("SPX", "SPXW")).settlement == "PM_CLOSE"
    assert ins.for_contract(opt("VIX", "VIX")).settlement == "AM_VRO"


def test_unknown_instruments_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no instrument rules for OPT NDX"):
        ins.for_contract(opt("NDX", "NDX"))
    with pytest.raises(ValueError, match="trading class 'VIX'"):
        ins.for_contract(opt("SPX", "VIX"))  # an SPX option cannot carry VIX's class
    with pytest.raises(ValueError, match="at least one leg"):
        ins.combo_tick((), 1.0)


def test_grid_and_rounding() -> None:
    assert ins.to_tick(4.373, 0.01, down=True) == 4.37
    assert ins.to_tick(4.371, 0.05, down=False) == 4.40
    assert ins.on_grid(4.37, 0.01) and not ins.on_grid(4.37, 0.05)
    assert ins.on_grid(-12.35, 0.05) and not ins.on_grid(12.33, 0.05)


def test_walk_ends_at_natural_and_starts_at_mid() -> None:
    # a credit condor: mid -10.00, natural -9.60 (selling: a higher limit gives more away)
    assert walk.limit(-10.0, -9.6, 0, 4, 1.0, 0.05) == -10.0
    assert walk.last(-10.0, -9.6, 4, 1.0, 0.05) == -9.6
    # half the way at most, rounded toward mid on the grid
    assert walk.last(-10.0, -9.6, 4, 0.5, 0.05) == -9.80
    # a debit whose natural is off the grid is reached on the last step, one tick through
    assert walk.last(2.0, 2.13, 4, 1.0, 0.05) == 2.15
    assert walk.last(2.0, 2.13, 1, 1.0, 0.05) == 2.0  # one step: mid only
