"""Report figures on hand-made series, and a report whose images exist and are PNGs."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from bot import report as rp


def test_metrics_hand_computed():
    m = rp.metrics([110.0, 99.0, 121.0], 100.0)
    assert m["total_return"] == pytest.approx(0.21)
    assert m["max_drawdown"] == pytest.approx(99 / 110 - 1)
    assert m["max_drawdown_usd"] == pytest.approx(-11.0)
    assert m["cagr"] == pytest.approx(1.21 ** (252 / 3) - 1)
    r = np.array([0.1, -0.1, 121 / 99 - 1])
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    assert m["sortino"] == pytest.approx(r.mean() / math.sqrt(0.01 / 3) * math.sqrt(252))


def test_metrics_flat_and_rising_series_have_no_ratio_or_no_drawdown():
    flat = rp.metrics([100.0] * 5, 100.0)
    assert flat["sharpe"] is None and flat["sortino"] is None and flat["max_drawdown"] == 0
    up = rp.metrics([101.0, 102.0, 104.0], 100.0)
    assert up["max_drawdown"] == 0 and up["sortino"] is None and up["sharpe"] > 0


def _runs(n: int = 400):
    t0 = datetime(2026, 1, 5, 15, tzinfo=UTC)
    times = [t0 + timedelta(minutes=30 * i) for i in range(n)]
    rng = np.random.default_rng(1)
    spx = 6000 + np.cumsum(rng.normal(0, 5, n))
    nan = np.full(n, np.nan)
    ticks = {"time": times, "equity": list(1e6 + np.cumsum(rng.normal(0, 50, n))),
             "margin": [5000.0] * n, "spx": list(spx), "vix": list(15 + rng.random(n)),
             "fund": list(np.cumsum(rng.normal(0, 10, n))), "campaign_fund": list(nan),
             "state": ["ACTIVE"] * n, "long_put": [5500.0] * n, "short_put": [5550.0] * n,
             "short_call": [6450.0] * n, "long_call": [6500.0] * n}
    mt = lambda i: times[i].isoformat()  # noqa: E731
    events = [{"event": "campaign.entered", "market_time": mt(1)},
              {"event": "campaign.rolled", "market_time": mt(100)},
              {"event": "hedge.opened", "layer": "tail", "market_time": mt(50)},
              {"event": "hedge.monetized", "layer": "tail", "market_time": mt(90)},
              {"event": "campaign.closed", "market_time": mt(300)}]
    days = sorted({t.date() for t in times})
    daily = pd.DataFrame({"method": 1e6, "cndr": 1e6 + np.arange(len(days)),
                          "buy_and_hold": 1e6 - np.arange(len(days))}, index=days)
    return {"method": {"ticks": ticks, "events": events},
            "plain_condor": {"ticks": ticks, "events": []}}, daily


def test_report_references_existing_pngs(tmp_path):
    runs, daily = _runs()
    pngs = rp.charts(tmp_path, daily, runs, 1e6)
    summary = {"run": {"scenario": "chop", "seed": 1},
               "comparison": {k: rp.metrics(daily[k], 1e6) for k in daily},
               "method": {"campaigns": 1, "errors": 0}}
    path = rp.write_html(tmp_path, summary, pngs, [{"kind": "fill", "time": "t", "price": 1}])
    doc = path.read_text()
    srcs = re.findall(r'<img src="([^"]+)"', doc)
    assert sorted(srcs) == sorted(rp.CHARTS)
    for s in srcs:
        data = (tmp_path / s).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert "Cboe CNDR rules" in doc and "buy-and-hold SPX" in doc
    for k in ("trades.csv", "equity.csv", "summary.json"):
        assert f'href="{k}"' in doc


def _camp_run():
    ev = [{"event": "campaign.entered", "campaign": "A", "market_time": "2026-01-05T15:00",
           "strikes": [5500.0, 5550.0, 6450.0, 6500.0], "credit": 5.0, "qty": 1},
          {"event": "hedge.monetized", "campaign": "A", "layer": "tail", "pnl": 300.0},
          {"event": "ledger.debited", "campaign": "A", "source": "roll", "amount": 120.0},
          {"event": "campaign.rolled", "campaign": "A", "qty": 2, "credit": 4.0,
           "strikes": [5400.0, 5475.0, 6300.0, 6375.0]},
          {"event": "hedge.closed", "campaign": "A", "layer": "event", "pnl": -50.0},
          {"event": "campaign.stopped", "campaign": "A", "pnl": -900.0, "why": "steps_exhausted",
           "market_time": "2026-02-01T15:00"},
          {"event": "campaign.entered", "campaign": "B", "market_time": "2026-02-10T15:00",
           "strikes": [5500.0, 5550.0, 6450.0, 6500.0], "credit": 6.0, "qty": 1}]
    # account: 1e6, then A's -900 condor and +250 hedges; B still held, worth -1,200 at the end
    return {"events": ev, "initial_cash": 1e6, "ticks": {"equity": [1e6, 1e6 - 650 - 1200]}}


def test_campaign_table_from_events_counts_an_open_campaign():
    from bot import report_tables as tb

    a, b = tb.campaigns(_camp_run())
    assert (a["steps"], a["max_condors"], a["max_contracts"]) == (1, 2, 8)
    assert a["max_loss"] == (75 - 4.0) * 100 * 2  # the rolled condor: wider wings, 2 condors
    assert (a["hedge_gains"], a["hedge_pnl"], a["fund_drawn"]) == (300.0, 250.0, 120.0)
    assert a["pnl"] == -650.0 and a["ended"] == "steps_exhausted"
    assert b["ended"] == "open at end" and b["pnl"] == -1200.0  # marked, not left out
    assert tb.worst([a, b])["campaign"] == "B"
    d = rp.details({**_camp_run(), "ticks": {**_runs()[0]["method"]["ticks"],
                                             "equity": [1e6] * 399 + [1e6 - 1850.0]},
                    "ledger": {"layers": {}, "drawn": 0, "carried": 0, "credits": 0,
                               "debits": 0, "funds": {}}, "trades": [], "errors": [],
                    "status": "OPEN", "costs": {"fills": 0, "commissions": 0.0,
                                                "vs_mid": 0.0}})
    assert d["worst_campaign"]["campaign"] == "B" and d["worst_campaign"]["total"] == -1200.0


def test_monthly_returns_chain_month_ends_from_the_initial_cash():
    from bot import report_tables as tb

    idx = [pd.Timestamp(x).date() for x in ("2026-01-05", "2026-01-30", "2026-02-02",
                                             "2026-02-27", "2026-03-02")]
    frame = pd.DataFrame({"method": [101.0, 110.0, 99.0, 88.0, 99.0]}, index=idx)
    rows = tb.monthly_returns(frame, 100.0, ("method", "cndr"))
    assert [r["month"] for r in rows] == ["2026-01", "2026-02", "2026-03"]
    assert [r["method"] for r in rows] == pytest.approx([0.10, 88 / 110 - 1, 99 / 88 - 1])


def test_verdict_names_the_winner_and_each_columns_risk():
    from bot import report_tables as tb

    summary = {"comparison": {
        "method": {"pnl": -500.0, "max_drawdown_usd": -900.0, "peak_margin": 20000.0,
                   "return_on_peak_margin": -0.025},
        "plain_condor": {"pnl": 300.0, "max_drawdown_usd": -100.0, "peak_margin": 5000.0,
                         "return_on_peak_margin": 0.06},
        "cndr": {"pnl": -700.0, "max_drawdown_usd": -2000.0, "peak_margin": 9000.0,
                 "return_on_peak_margin": -0.08}},
        "method": {"worst_campaign": {"pnl": -800.0}},
        "plain_condor": {"worst_campaign": {"pnl": -40.0}}, "cndr": {"worst_cycle": -900.0}}
    v = tb.verdict(summary)
    assert v["text"].startswith("The method beat Cboe CNDR rules and trailed plain condor")
    assert v["columns"]["cndr"]["worst_campaign"] == -900.0
    assert "worst campaign -800.00" in v["text"] and "-2.50% on it" in v["text"]
