"""Backtests: the same decisions as the daemon, figures that agree with their data, logging
left as it was found, CNDR rules on synthetic chains, the sweep and the CLI."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import math
from datetime import date

import numpy as np
import pytest

from bot import baselines, logs
from bot.backtest import parse_override, read_trades, run_backtest
from tests.conftest import make_settings, read_events
from tests.simrun import run as run_daemon
from tests.synth import at, snapshot

DAYS, SEED, SCEN, TICK = 12, 1, "chop", 300  # seed 1: its 12 days hold 6+ orders


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A plain in-process daemon run and a backtest on the same settings (module-scoped)."""
    tmp = tmp_path_factory.mktemp("pair")
    s = make_settings(tmp, sim={"speed": "max", "days": DAYS, "seed": SEED, "scenario": SCEN},
                      tick_seconds=TICK)
    path = logs.setup(tmp / "logs", "condorbot.jsonl", "INFO", console=False)
    code, _ = asyncio.run(run_daemon(s))
    daemon_events = read_events(path)
    root = logging.getLogger()
    before = (list(root.handlers), list(logs._listeners), logs._clock)
    out = tmp / "bt"
    summary = run_backtest(s, out, days=DAYS, tick=TICK, plain=True, parallel=True)
    after = (list(root.handlers), list(logs._listeners), logs._clock)
    logs.get("test").info("test.after_backtest")
    tail = read_events(path)[len(daemon_events):]
    logs.use_clock(None)
    return {"code": code, "events": daemon_events, "summary": summary, "out": out,
            "before": before, "after": after, "tail": tail, "settings": s}


def test_backtest_makes_the_daemons_decisions(pair):
    assert pair["code"] == 0
    daemon = [(e["key"], e["limit"], e["market_time"]) for e in pair["events"]
              if e["event"] == "order.submitted"]
    rows = read_trades(pair["out"] / "trades.csv")
    bt = [(r["key"], float(r["price"]), r["time"]) for r in rows if r["kind"] == "order"]
    assert len(daemon) >= 3, "the window must contain orders to compare"
    assert bt == daemon
    # and the method really is the method: the twin run without rolls/hedges differs
    plain = read_trades(pair["out"] / "trades_plain_condor.csv")
    assert not [r for r in plain if r["layer"] or r["action"] in ("roll", "hedge_open")]


def test_logging_left_as_found(pair):
    assert pair["after"] == pair["before"]
    assert [e["event"] for e in pair["tail"]] == ["test.after_backtest"]
    assert (pair["out"] / "logs" / "condorbot.jsonl").exists()
    assert (pair["out"] / "logs" / "plain_condor.jsonl").exists()


def test_trades_csv_has_every_order_and_fill(pair):
    rows = read_trades(pair["out"] / "trades.csv")
    ev = pair["events"]
    fills = [r for r in rows if r["kind"] == "fill"]
    assert len(fills) == sum(e["event"] == "order.filled" for e in ev)
    for r in fills:
        assert r["campaign"] and r["action"] and r["commission"] and r["reason"]
    opens = {r["key"]: r for r in rows if r["kind"] == "order"}
    assert {r["key"] for r in fills} <= set(opens)
    assert all(r["reason"] for r in opens.values())
    layered = [r for r in opens.values() if r["action"].startswith("hedge")]
    assert all(r["layer"] in ("event", "fomc", "tail") for r in layered)


def test_summary_figures_from_the_equity_series(pair):
    s, out = pair["summary"], pair["out"]
    initial = pair["settings"].sim.initial_cash
    with open(out / "equity.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == DAYS
    for col in ("method", "plain_condor", "cndr", "buy_and_hold"):
        eq = [initial] + [float(r[col]) for r in rows]
        peak, worst = eq[0], 0.0
        for v in eq:
            peak = max(peak, v)
            worst = min(worst, v / peak - 1)
        m = s["comparison"][col]
        assert m["max_drawdown"] == pytest.approx(worst, abs=1e-9)
        assert m["total_return"] == pytest.approx(eq[-1] / initial - 1, abs=1e-9)
        dates = [date.fromisoformat(r["date"]) for r in rows]
        gaps = [0] + [(b - a).days for a, b in zip(dates, dates[1:])]
        r = s["money_rules"]["short_rate"]  # every column's cash earns it: Sharpe on excess
        rets = [b / a - 1 - math.expm1(r * g / 365) for a, b, g in zip(eq, eq[1:], gaps)]
        mean = sum(rets) / len(rets)
        sd = math.sqrt(sum((x - mean) ** 2 for x in rets) / (len(rets) - 1))
        if sd > 0:
            assert m["sharpe"] == pytest.approx(mean / sd * math.sqrt(252), rel=1e-4)  # csv: 4 dp
    js = json.loads((out / "summary.json").read_text())
    assert js["comparison"]["method"]["max_drawdown"] == pytest.approx(
        s["comparison"]["method"]["max_drawdown"])


def test_summary_counts_from_the_trades_and_events(pair):
    s = pair["summary"]["method"]
    ev = pair["events"]
    assert s["campaigns"] == sum(e["event"] == "campaign.entered" for e in ev) >= 1
    assert s["roll_steps"] == sum(e["event"] == "campaign.rolled" for e in ev)
    rows = read_trades(pair["out"] / "trades.csv")
    assert s["fills"] == sum(r["kind"] == "fill" for r in rows)
    hedge_pnl = sum(e["pnl"] for e in ev if e["event"] in ("hedge.closed", "hedge.monetized"))
    assert s["hedge_pnl_total"] == pytest.approx(hedge_pnl, abs=0.05)
    assert s["errors"] == sum(e["level"] == "error" for e in ev)
    assert sum(s["trading_state_days"].values()) == DAYS
    assert 0 < s["peak_margin"]["share_of_net_liq"] < 1
    # the buy-and-hold line is the SPX path itself
    with open(pair["out"] / "equity.csv") as f:
        rows = list(csv.DictReader(f))
    r0, r1 = rows[0], rows[-1]
    q = pair["summary"]["money_rules"]["dividend_yield"]
    years = (date.fromisoformat(r1["date"]) - date.fromisoformat(r0["date"])).days / 365
    assert float(r1["buy_and_hold"]) / float(r0["buy_and_hold"]) == pytest.approx(
        float(r1["spx"]) / float(r0["spx"]) * math.exp(q * years), rel=1e-6)


def test_every_column_under_the_same_money_rules(pair):
    js = json.loads((pair["out"] / "summary.json").read_text())
    rules, comp = js["money_rules"], js["comparison"]
    assert rules["cash_earns_rate"] is True and rules["short_rate"] > 0
    assert rules["dividend_yield"] > 0 and rules["text"]
    rows = list(csv.DictReader(open(pair["out"] / "equity.csv")))
    days = (date.fromisoformat(rows[-1]["date"]) - date.fromisoformat(rows[0]["date"])).days
    for col in ("method", "plain_condor", "cndr"):
        m = comp[col]  # ~rate x account x calendar time, the same for every option column
        assert m["interest"] == pytest.approx(
            pair["settings"].sim.initial_cash * rules["short_rate"] * days / 365, rel=0.05)
        assert m["pnl_before_interest"] == pytest.approx(m["pnl"] - m["interest"], abs=0.02)
        assert m["return_on_peak_margin"] == pytest.approx(
            m["pnl_before_interest"] / m["peak_margin"], abs=0.01 / m["peak_margin"])
    assert comp["buy_and_hold"]["interest"] == 0 and comp["buy_and_hold"]["dividends"] > 0
    assert comp["buy_and_hold"]["peak_margin"] == pair["settings"].sim.initial_cash


# --- CNDR rules on synthetic chains ---------------------------------------------------------------
def test_cndr_strikes_by_delta():
    snap = snapshot(at(date(2026, 3, 20), 11, 45), 6000.0, 18.0)
    exp = sorted(snap.chains)[1]
    ch = snap.chains[exp]
    lp, sp, sc, lc = baselines.pick_strikes(ch, snap.spx)
    assert lp < sp < 6000 < sc < lc
    d = {k: abs(ch.delta(k, r)) for k, r in ((lp, "P"), (sp, "P"), (sc, "C"), (lc, "C"))}
    for k, target in ((sp, 0.20), (sc, 0.20), (lp, 0.05), (lc, 0.05)):
        right = "P" if k < 6000 else "C"
        others = np.abs(np.abs(np.where(ch.strikes < 6000, ch.put_delta, ch.call_delta)) - target)
        side = (ch.strikes < 6000) if right == "P" else (ch.strikes > 6000)
        assert abs(d[k] - target) == pytest.approx(others[side].min(), abs=1e-12)


def test_cndr_settles_at_the_opening_print_and_earns_tbill():
    cndr = baselines.Cndr(1_000_000.0, qty=1, commission=0.0, rate=0.05)
    t0 = at(date(2026, 2, 23), 11, 30)  # after the February expiry: first cycle on the next
    snap = snapshot(t0, 6000.0, 18.0)
    cndr.on_snapshot(snap, 0.05, {})
    pos = cndr.pos
    assert pos is not None and baselines.MIN_DTE <= (pos["expiry"] - t0.date()).days
    lp, sp, sc, lc = pos["strikes"]
    # a week later, SPX unchanged; then settlement far below the long put: max loss
    cndr.on_snapshot(snapshot(at(date(2026, 3, 2), 12, 0), 6000.0, 18.0), 0.05, {})
    interest = pos["interest"]
    days = (at(date(2026, 3, 2), 12, 0) - t0).total_seconds() / 86400
    assert interest == pytest.approx(pos["collateral"] * math.expm1(0.05 * days / 365), rel=1e-9)
    assert cndr.cash == pytest.approx(1e6 + pos["credit"] * 100)  # the account's interest is
    # credited to every column alike by bot.money, not here
    settle = at(pos["expiry"], 10, 0)
    cndr.on_snapshot(snapshot(settle, 4000.0, 40.0), 0.05, {pos["expiry"]: (lp - 100, 40.0)})
    c = cndr.cycles[0]
    assert c["pnl"] == pytest.approx((pos["credit"] - (sp - lp)) * 100, abs=0.01)
    assert c["settle_spx"] == pytest.approx(lp - 100)


def test_settle_value_payoff():
    k = (5500.0, 5600.0, 6400.0, 6500.0)
    assert baselines.settle_value(k, 6000) == 0
    assert baselines.settle_value(k, 5550) == -50
    assert baselines.settle_value(k, 5000) == -100
    assert baselines.settle_value(k, 6450) == -50
    assert baselines.settle_value(k, 7000) == -100


def test_buy_and_hold_follows_spx_with_dividends_reinvested():
    eq = baselines.buy_and_hold({date(2026, 1, 2): 110.0, date(2026, 1, 5): 99.0}, 1000.0, 100.0)
    assert eq == {date(2026, 1, 2): pytest.approx(1100.0), date(2026, 1, 5): pytest.approx(990.0)}
    eq = baselines.buy_and_hold({date(2026, 1, 2): 110.0, date(2027, 1, 2): 99.0}, 1000.0, 100.0,
                                dividend_yield=0.02)
    assert eq[date(2027, 1, 2)] == pytest.approx(990.0 * math.exp(0.02))


def test_interest_compounds_per_session_on_the_closing_equity():
    from bot import money

    total, earned = money.with_interest(
        {date(2026, 1, 2): 100.0, date(2026, 1, 5): 100.0, date(2026, 1, 6): 90.0}, 0.10)
    i1 = 100.0 * math.expm1(0.10 * 3 / 365)  # over the weekend: three calendar days
    i2 = (100.0 + i1) * math.expm1(0.10 / 365)  # then on the equity with its interest
    assert earned == {date(2026, 1, 2): 0.0, date(2026, 1, 5): pytest.approx(i1),
                      date(2026, 1, 6): pytest.approx(i1 + i2)}
    assert total[date(2026, 1, 6)] == pytest.approx(90.0 + i1 + i2)
    from bot.sim import scenarios

    chop = scenarios.get("calm")  # its own rate and dividend yield (the surface's): q 1.3%
    r = money.money_rules(chop)
    assert r.short_rate == chop.r and r.dividend_yield == chop.q
    assert "constant" not in r.dividend_source


# --- sweep and CLI ------------------------------------------------------------------------------
def test_parse_override_types_values():
    assert parse_override("strategy.max_steps=0,1,3") == ("strategy.max_steps", [0, 1, 3])
    assert parse_override("hedge.tail_layer=true,false") == ("hedge.tail_layer", [True, False])


def test_sweep_runs_a_grid_in_workers(tmp_path, capsys):
    from bot import backtest_cli as bc

    base = make_settings(tmp_path)
    kw = {"scenario": "calm", "seed": 3, "days": 3, "tick": 900}
    table = bc.run_sweep(base, tmp_path / "sw", ["strategy.max_steps=0,2"], kw,
                         start_method="fork")
    assert [r["point"] for r in table] == ["strategy.max_steps=0", "strategy.max_steps=2"]
    with open(tmp_path / "sw" / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["point"] for r in rows] == [r["point"] for r in table]
    for r in table:
        js = json.loads((tmp_path / "sw" / "sweep" / r["point"] / "summary.json").read_text())
        assert js["run"]["overrides"] == {"strategy.max_steps": int(r["point"][-1])}
        assert r["total_return"] == pytest.approx(js["comparison"]["method"]["total_return"])


def test_sweep_refuses_an_unknown_key(tmp_path, capsys):
    from bot.cli import main

    code = main(["backtest", "--config", str(tmp_path / "none.yaml"), "--out", str(tmp_path),
                 "--days", "2", "--sweep", "strategy.no_such_key=1,2"])
    assert code == 2
    assert "strategy.no_such_key" in capsys.readouterr().err


def test_plain_condor_holds_through_a_test_and_stops_at_its_loss_multiple():
    from strategies import tvm
    from strategies.condor import combo_prices, reverse
    from strategies.params import StrategyParams

    p = StrategyParams(max_steps=0)  # what backtest_settings gives the plain twin
    t0 = at(date(2026, 3, 2))
    d = tvm.decide(tvm.State(), snapshot(t0, 6000.0, 15.0), p)
    st = tvm.on_order_done(d.state, d.intents[0], 1, d.intents[0].mid, 2.6, t0).state
    credit = st.campaign.credit  # per unit; the 5735 short put is tested below ~5850
    plain = baselines.plain_decide(0.5)
    t1 = at(date(2026, 3, 4))
    for spx, stop in ((5800.0, False), (5750.0, False), (5700.0, True)):
        snap = snapshot(t1, spx, 15.0)
        loss = combo_prices(snap.chains, reverse(st.campaign.legs))[0] - credit
        assert (loss >= 0.5 * credit) is stop  # the hand numbers straddle the stop
        method = tvm.decide(st, snap, p)  # max_steps 0 alone: closed at the first test
        assert [i.reason["trigger"] for i in method.intents] == ["steps_exhausted"]
        got = plain(st, snap, p)
        if stop:
            (i,) = got.intents
            assert i.action == "close" and i.reason["trigger"] == "plain_stop"
            assert i.reason["threshold"] == pytest.approx(0.5 * credit, abs=0.01)
        else:
            assert got.intents == () and got.state == st
            assert [e[1]["why"] for e in got.events] == ["plain_condor_holds"]
    assert baselines.plain_decide(2.0)(st, snapshot(t1, 5700.0, 15.0), p).intents == ()
    with pytest.raises(ValueError, match="plain_stop_mult"):
        baselines.plain_decide(0.0)


def test_cndr_fills_through_the_fill_model_never_at_mid():
    from bot.sim.fills import FillModel

    fm = FillModel(3, commission_per_contract=1.25)
    t0 = at(date(2026, 2, 23), 11, 30)
    snap = snapshot(t0, 6000.0, 18.0)
    at_mid = baselines.Cndr(1e6, qty=2, commission=0.0, rate=0.0)
    at_mid.on_snapshot(snap, 0.0, {})
    cndr = baselines.Cndr(1e6, qty=2, rate=0.0, fills=fm, walk_steps=4)
    cndr.on_snapshot(snap, 0.0, {})
    pos, mid_credit = cndr.pos, at_mid.pos["credit"]
    assert pos["strikes"] == at_mid.pos["strikes"]
    lp, sp, sc, lc = pos["strikes"]
    ch = snap.chains[pos["expiry"]]
    natural = -(ch.quote(lp, "P")[1] - ch.quote(sp, "P")[0] - ch.quote(sc, "C")[0]
                + ch.quote(lc, "C")[1])  # the credit at natural
    assert natural - 1e-9 <= pos["credit"] < mid_credit  # less credit than at mid
    assert pos["fees"] == pytest.approx(4 * 2 * 1.25)  # the model's commission schedule
    s = cndr.summary()
    assert s["vs_mid"] == pytest.approx((mid_credit - pos["credit"]) * 100 * 2, abs=0.01)
    assert s["vs_mid"] > 0
    assert s["fill_model"] == fm.describe()


def test_backtest_cndr_uses_the_brokers_own_fill_model(tmp_path):
    from bot.backtest import backtest_settings, run_variant

    s = backtest_settings(make_settings(tmp_path, sim={"scenario": "chop", "seed": 1}),
                          tmp_path / "bt", days=2, tick=1800)
    cndr = baselines.Cndr(1e6, rate=0.0)
    seen = []
    run_variant(s, extra_hooks=[cndr, lambda d, snap: seen.append(d.broker.fills)])
    assert seen and all(f is cndr.fill_model for f in seen)  # the very object, not a copy
    assert cndr.n_fills == 1 and cndr.fill_model.seed == 1


def test_a_backtest_writes_its_events_to_its_file_not_the_console(tmp_path, capfd):
    """The console handler is a subclass of StreamHandler since log writes became safe; the
    isolation matched the exact type and let every backtest event through to stdout."""
    logs.setup(tmp_path / "logs", "condorbot.jsonl", "INFO", console=True)
    s = make_settings(tmp_path, sim={"speed": "max", "days": 1, "seed": SEED, "scenario": SCEN},
                      tick_seconds=TICK)
    capfd.readouterr()
    run_backtest(s, tmp_path / "bt", days=1, tick=TICK, plain=False, parallel=False,
                 report=False)
    out = capfd.readouterr().out
    assert "order.submitted" not in out and "daemon.started" not in out, out[:500]
    assert "order.submitted" in (tmp_path / "bt" / "logs" / "condorbot.jsonl").read_text()
    logs.use_clock(None)
