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
