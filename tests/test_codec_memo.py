"""bot.codec keeps the encoding of deeply immutable objects (contracts, legs, fills,
campaigns, ledgers, flows) by object: dumps must equal a fresh encoding as objects are
replaced, and load back to equal values."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np

from bot import codec
from strategies import ledger, tvm
from strategies.types import Contract, Intent, Layer, Leg


def _fresh(obj: object) -> str:
    """json's own text of a fresh encoding (what dumps wrote before it kept texts)."""
    codec._KEPT.clear()
    return json.dumps(codec._enc(obj), separators=(",", ":"), sort_keys=True)


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


def test_dumps_writes_json_own_text_for_every_kind_of_value() -> None:
    e = date(2026, 3, 20)
    legs = (Leg(Contract("VIX", "OPT", e, 20.0, "C", "VIX"), 1),
            Leg(Contract("VIX", "OPT", e, 30.0, "C", "VIX"), -1))
    reason = {"trigger": "rsi_high", "rsi": 71.25, "nan": math.nan, "inf": math.inf,
              "-inf": -math.inf, "n": np.int64(3), "x": np.float64(0.1), "flag": True,
              "none": None, "list": [1, 2.5, "é✓"], "nested": {"b": 1, "a": (2, 3)}, 7: "int key",
              "when": datetime(2026, 1, 5, 15, 30, tzinfo=UTC), "day": e, "big": 10 ** 20,
              "neg": -0.0, "tiny": 5e-324, "quote\"s": 'a"b\\c\n'}
    intent = Intent("C0001:hedge:tail:x:open:1", "C0001", "hedge_open", legs, 2, 1.25, 1.4,
                    layer="tail", reason=reason)
    layer = Layer("tail", "C0001", "rsi_high:2026-01-05", "opening", legs, 2, pending=intent,
                  event_date=e, opened_at=datetime(2026, 1, 5, 15, tzinfo=UTC))
    led = ledger.Ledger(funds=(("C0001", -0.5),), carried=math.nan,
                        layer_flows=(("tail", (ledger.Flow(datetime(2026, 1, 5, tzinfo=UTC),
                                                           -250.0),)),))
    state = tvm.State(status=tvm.Status.OPEN, seq=1, pending=intent, ledger=led,
                      hedges=(layer,), hedged=("rsi_high:2026-01-05",))
    for obj in (state, intent, layer, led, tvm.Status.ROLLING, {"a": [state]}, [], (), "x",
                1.5, None, {"guard": {"orders": [], "start_nl": 1e5}}):
        want = _fresh(obj)
        codec._TEXT.clear()
        assert codec.dumps(obj) == want
        assert codec.dumps(obj) == want  # kept texts
