"""`condorbot status` on a store that holds a campaign, its hedge layer and a ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot import config as cfg
from bot.status import estimate_greeks, positions, render, show
from bot.store import Store
from strategies import alvh, tvm
from strategies import ledger as lg
from strategies.types import Contract, Leg

EXP = date(2026, 3, 20)


def _leg(strike: float, right: str, ratio: int, sym: str = "SPX", exp: date = EXP) -> Leg:
    return Leg(Contract(sym, "OPT", exp, strike, right, sym, 100), ratio)


def _state() -> tvm.State:
    legs = (_leg(5400, "P", 1), _leg(5450, "P", -1), _leg(6550, "C", -1), _leg(6600, "C", 1))
    camp = tvm.Campaign(id="C0001-20260202", step=1, legs=legs, qty=2, credit=12.5,
                        realized=-310.0, premium=2500.0,
                        entered_at=datetime(2026, 2, 2, 15, tzinfo=UTC))
    layer = alvh.Layer("tail", camp.id, "rsi_high:2026-02-10", "open",
                       (_leg(18, "C", 1, "VIX", date(2026, 3, 18)),
                        _leg(28, "C", -1, "VIX", date(2026, 3, 18))), 3, cost=360.0)
    led, _ = lg.credit(lg.Ledger(), camp.id, 420.0, "hedge")
    led = lg.realize_layer(led, camp.id, "event", 55.5)[0]
    return tvm.State(status=tvm.Status.OPEN, seq=1, campaign=camp, hedges=(layer,), ledger=led)


def _store(tmp_path, beat=True) -> Store:
    st = Store(tmp_path / "state" / "condorbot.db")
    st.put("strategy_state", _state())
    st.put("trading_state", "REDUCING")
    st.put("control", "reduce")
    if beat:
        st.put("heartbeat", {"wall_time": "2026-11-25T10:00:00+00:00",
                             "market_time": "2026-02-12T16:00:00+00:00", "spx": 6010.5,
                             "vix": 17.2, "net_liquidation": 1000123.45, "sessions": 29})
    st.upsert_campaign("C0001-20260202", "OPEN", 1, -310.0, None,
                       datetime(2026, 2, 2, 15, tzinfo=UTC))
    return st


def test_status_shows_legs_greeks_ledger_and_state(tmp_path):
    st = _store(tmp_path)
    text = render(st, "test")
    st.close()
    assert "REDUCING" in text and "reduce" in text and "OPEN" in text
    for key in ("SPX:SPX:20260320:P:5450", "SPX:SPX:20260320:C:6600", "VIX:VIX:20260318:C:28"):
        assert key in text
    assert "-2" in text and "+3" in text  # short condor legs x qty 2, hedge x 3
    assert "1,000,123.45" in text and "6,010.50" in text
    assert "estimate" in text and "vega $/vol pt" in text
    assert "C0001-20260202 475.50" in text  # the open fund: 420 credited + 55.50 realized
    assert "event" in text and "55.50" in text  # the layer's realized P&L
    assert "C0001-20260202" in text and "-310.00" in text


def test_estimated_greeks_have_the_signs_of_a_short_condor_plus_a_vix_call_spread():
    state = _state()
    now = datetime(2026, 2, 12, 16, tzinfo=UTC)
    condor = [p for p in positions(state) if p[1].startswith("condor")]
    g = estimate_greeks(condor, 6000.0, 17.0, now)
    assert g["vega"] < 0 and g["gamma"] < 0 and g["theta"] > 0 and abs(g["delta"]) < 50
    hedge = [p for p in positions(state) if p[1].startswith("hedge")]
    h = estimate_greeks(hedge, 6000.0, 17.0, now)
    assert h["delta"] > 0  # long VIX calls: gains when VIX rises


def test_heartbeat_greeks_are_shown_as_given(tmp_path):
    st = _store(tmp_path)
    beat = st.get("heartbeat")
    st.put("heartbeat", {**beat, "greeks": {"delta": 1.25, "gamma": -0.5, "vega": -77.0,
                                            "theta": 12.0}})
    text = render(st)
    st.close()
    assert "estimate" not in text and "-77.00" in text


def test_show_without_a_store(tmp_path, capsys):
    s = cfg.parse({"store_path": str(tmp_path / "none" / "c.db")})
    assert show(s) == 1
    assert "no store yet" in capsys.readouterr().out


def test_show_reads_the_configured_store(tmp_path, capsys):
    _store(tmp_path, beat=False).close()
    s = cfg.parse({"store_path": str(tmp_path / "state" / "condorbot.db")})
    assert show(s) == 0
    out = capsys.readouterr().out
    assert "SPX:SPX:20260320:P:5400" in out and "(flat)" not in out
