"""IBBroker's contract mapping takes trading class, exchange and multiplier from the one
instrument table (strategies.instruments, #15 item 4), not from what a caller happened to set."""

from __future__ import annotations

from datetime import date

import pytest
from ib_async import Future, Option

from bot.broker.ib_contracts import from_ib, to_ib
from strategies.instruments import INSTRUMENTS
from strategies.types import Contract

EXP = date(2026, 2, 18)


def test_future_gets_the_vx_class_exchange_and_multiplier_whatever_the_contract_says():
    ic = to_ib(Contract("VIX", "FUT", EXP))  # Contract's default multiplier is 100
    vx = INSTRUMENTS["VX"]
    assert isinstance(ic, Future)
    assert (ic.tradingClass, ic.exchange, ic.multiplier) == ("VX", "CFE", "1000") == (
        vx.trading_class, vx.exchange, str(vx.multiplier))


@pytest.mark.parametrize("tc", ["SPX", "SPXW", "VIX"])
def test_options_keep_their_class_and_its_multiplier(tc):
    sym = "VIX" if tc == "VIX" else "SPX"
    ic = to_ib(Contract(sym, "OPT", EXP, 20.0, "C", tc, multiplier=1))
    assert isinstance(ic, Option) and (ic.tradingClass, ic.multiplier) == (tc, "100")
    back = from_ib(Option(sym, "20260218", 20.0, "C", "SMART", multiplier="",
                          tradingClass=tc))
    assert back is not None and (back.trading_class, back.multiplier) == (tc, 100)


def test_a_blank_ib_multiplier_defaults_to_the_classs():
    fut = from_ib(Future("VIX", "20260218", exchange="CFE"))  # IB left the multiplier blank
    assert fut is not None and fut.multiplier == 1000
