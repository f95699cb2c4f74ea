"""bot.codec keeps the encoding of deeply immutable objects (contracts, legs, fills,
campaigns, ledgers, flows) by object: dumps must equal a fresh encoding as objects are
replaced, and load back to equal values."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from bot import codec
from strategies import ledger, tvm
from strategies.types import Contract, Leg


def _fresh(obj: object) -> str:
    codec._KEPT.clear()
    return codec.dumps(obj)


def test_kept_encodings_equal_fresh_ones() -> None:
    e = date(2026, 3, 20)
    legs = tuple(Leg(Contract("SPX", "OPT", e, k, r, "SPX"), q)
                 for k, r, q in ((5500.0, "P", 1), (5600.0, "P", -1), (6000.0, "C", -1)))
    camp = tvm.Campaign("C0001", legs=legs, qty=2, credit=11.5,
                        entered_at=datetime(2026, 1, 5, 15, tzinfo=UTC))
    led = ledger.Ledger(funds=(("C0001", 100.0),))
    state = tvm.State(campaign=camp, ledger=led)
    t = datetime(2026, 1, 5, 16, tzinfo=UTC)
    for i in range(30):  # each step replaces some objects and keeps others
        flows = (("tail", tuple(ledger.Flow(t + timedelta(hours=j), -1.5 * j)
                                for j in range(i % 7))),)
        led = replace(led, credits=led.credits + i, layer_flows=flows)
        if i % 4 == 0:
            camp = replace(camp, step=i, realized=camp.realized - 3.25)
        state = replace(state, campaign=camp, ledger=led)
        text = codec.dumps(state)
        assert text == _fresh(state)
        codec.dumps(state)  # warm again
        assert codec.loads(text) == state
