"""`condorbot status` on a store that holds a campaign, its hedge layer and a ledger."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
import pytest

from bot import config as cfg
from bot.status import estimate_greeks, mark, positions, realized, render, show
from bot.store import Store
from strategies import alvh, tvm
from strategies import ledger as lg
from strategies.pricing import greeks as bs_greeks
from strategies.types import Account, Chain, Contract, Intent, Leg, Snapshot

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


# --- P&L and greeks on a hand-built position ------------------------------------------------

NOW = datetime(2026, 2, 12, 16, tzinfo=UTC)
# strike: (put bid, put ask, put iv, call bid, call ask, call iv): a skewed, hand-made chain
QUOTES = {5400: (4.0, 4.4, 0.30, 0, 0, 0), 5450: (5.6, 6.0, 0.28, 0, 0, 0),
          6550: (0, 0, 0, 2.1, 2.5, 0.13), 6600: (0, 0, 0, 1.2, 1.4, 0.12)}


def _chain(symbol: str, exp: date, quotes: dict, delta: float = math.nan) -> Chain:
    ks = sorted(quotes)
    col = [np.array([quotes[k][i] for k in ks], float) for i in range(6)]
    nan = np.full(len(ks), delta)
    return Chain(symbol, symbol, exp, (exp - NOW.date()).days / 365.0, np.array(ks, float),
                 col[3], col[4], col[0], col[1], nan, nan, col[5], col[2], nan, nan)


def _open_condor(tmp_path, commission: float = 2.6):
    """Sold 2 condors at 12.50 credit, commission 2.60: nothing closed yet."""
    legs = (_leg(5400, "P", 1), _leg(5450, "P", -1), _leg(6550, "C", -1), _leg(6600, "C", 1))
    cash = 12.5 * 2 * 100 - commission
    camp = tvm.Campaign(id="C0001-20260202", legs=legs, qty=2, credit=12.5, realized=cash,
                        premium=2500.0, entered_at=NOW)
    state = tvm.State(status=tvm.Status.OPEN, seq=1, campaign=camp)
    st = Store(tmp_path / "state" / "condorbot.db")
    st.put("strategy_state", state)
    intent = Intent(f"{camp.id}:open:0:0", camp.id, "open", legs, 2, -12.4, -12.0)
    st.add_intent(intent, NOW)
    st.update_intent(intent.key, NOW, status="filled", filled=2, avg_price=-12.5,
                     commission=commission)
    snap = Snapshot(NOW, 6010.0, 17.0, {EXP: _chain("SPX", EXP, QUOTES)},
                    Account(1_000_000.0))
    return st, state, snap


def test_open_condor_realized_zero_unrealized_credit_minus_cost_to_close(tmp_path):
    st, state, snap = _open_condor(tmp_path)
    m = mark(state, snap, 2.6)
    # cost to close now, by hand: buy back the shorts, sell the longs (x 2 condors x 100)
    close_mid = (5.8 + 2.3 - 4.2 - 1.3) * 200
    close_natural = (6.0 + 2.5 - 4.0 - 1.2) * 200
    assert realized(st, state) == pytest.approx(0.0)
    assert m["realized"] == pytest.approx(0.0)
    assert m["unrealized_mid"] == pytest.approx(2500 - 2.6 - close_mid)
    assert m["unrealized_natural"] == pytest.approx(2500 - 2.6 - close_natural)
    st.put("marks", m)
    text = render(st)
    st.close()
    assert f"{2500 - 2.6 - close_mid:,.2f}" in text and f"{2500 - 2.6 - close_natural:,.2f}" in text
    assert "2,497.40" in text  # the credit is the basis, not a realized gain
    assert "estimate" not in text


def test_greeks_come_from_each_legs_own_implied_vol(tmp_path):
    st, state, snap = _open_condor(tmp_path)
    st.close()
    m = mark(state, snap)
    t = snap.chains[EXP].t
    for row in m["legs"]:
        k = float(row["key"].split(":")[-1])
        right = row["key"].split(":")[-2]
        iv = QUOTES[int(k)][2 if right == "P" else 5]
        ref = bs_greeks(right.lower(), 6010.0, k, t, 0.04, iv)
        assert row["iv"] == iv
        assert row["gamma"] == pytest.approx(float(ref["gamma"]) * row["qty"] * 100)
        assert row["delta"] == pytest.approx(float(ref["delta"]) * row["qty"] * 100)


def test_vix_options_are_priced_off_their_future_not_spot(tmp_path):
    vexp = date(2026, 3, 18)
    layer = alvh.Layer("tail", "C0001-20260202", "rsi", "open",
                       (_leg(20, "C", 1, "VIX", vexp),), 1, cost=150.0)
    state = tvm.State(hedges=(layer,))
    chain = _chain("VIX", vexp, {20: (0, 0, 0, 1.4, 1.6, 0.8)})
    # spot VIX 15, its March future 20: the 20 call is at the money on the future
    snap = Snapshot(NOW, 6010.0, 15.0, {}, Account(1e6), vix_futures={vexp: 20.0},
                    vix_chains={vexp: chain})
    (row,) = mark(state, snap)["legs"]
    assert row["underlying"] == 20.0
    assert 0.5 < row["delta"] / 100 < 0.65  # at the money on F (about 0.2 on spot VIX)
    (g,) = mark(state, snap)["groups"]
    assert g["unrealized_mid"] == pytest.approx(1.5 * 100 - 150.0)


def test_status_says_when_log_records_were_lost(tmp_path):
    """A full log disk loses log lines, not the store: the heartbeat carries the count."""
    st = _store(tmp_path)
    assert "log records lost" not in render(st)
    st.put("heartbeat", {**st.get("heartbeat"), "log_records_lost": 17})
    text = render(st)
    st.close()
    assert "log records lost (log disk full?): 17" in text
