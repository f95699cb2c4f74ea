"""The daemon's HTTP server (bot.web): /metrics during a sim run, the token, the status page
in real headless Chromium against a `python -m bot run` subprocess."""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from bot import config as cfg
from bot.web import Ops
from tests import simrun
from tests.procs import Proc

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[1]


def _get(url: str, **headers: str) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _value(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    assert m, f"{name}{labels} not exported"
    return float(m.group(1))


def test_metrics_scraped_during_a_sim_run_have_plausible_values(settings_factory, log_file):
    s = settings_factory(sim={"speed": "max", "days": 30}, web={"port": 0})
    d = simrun.build(s)
    ops = Ops(s, s.store_path)
    ops.attach(d)
    scraped: list[str] = []
    held: list[bool] = []

    def scrape_once_a_condor_is_held(daemon, snap):
        camp = daemon.state.campaign
        held.append(camp is not None and bool(camp.legs) and daemon.state.pending is None)
        # the step after the fill: its snapshot's account carries the condor's margin
        if not scraped and held[-2:] == [True, True]:
            assert ops.server is not None
            scraped.append(_get(f"http://127.0.0.1:{ops.server.port}/metrics")[1])
            daemon.stop(0)

    d.step_hooks.append(scrape_once_a_condor_is_held)  # after ops' own hook
    try:
        assert asyncio.run(d.run()) == 0
    finally:
        d.store.close()
        ops.close()
    assert scraped, "no condor was entered"
    text = scraped[0]
    nl = _value(text, "condorbot_net_liquidation_dollars")
    assert 0.95e6 < nl < 1.05e6  # 1,000,000 initial cash, one 1-lot condor
    assert 0 < _value(text, "condorbot_margin_used_dollars") <= 50 * 100 * 1.5
    assert 0.9 < _value(text, "condorbot_cushion_ratio") < 1
    assert _value(text, "condorbot_portfolio_greek", '{greek="vega"}') < 0  # short condor
    assert _value(text, "condorbot_portfolio_greek", '{greek="theta"}') > 0
    assert _value(text, "condorbot_portfolio_greek", '{greek="gamma"}') < 0
    assert _value(text, "condorbot_contracts_held") == 4
    assert _value(text, "condorbot_campaign_step") == 0
    assert _value(text, "condorbot_roll_fund_dollars") >= 0
    assert _value(text, "condorbot_orders_total") >= 1
    assert _value(text, "condorbot_fills_total") == 1
    assert _value(text, "condorbot_tick_duration_seconds_count") > 10
    assert _value(text, "condorbot_broker_connected") == 1
    assert _value(text, "condorbot_last_heartbeat_timestamp_seconds") > 1.7e9
    assert _value(text, "condorbot_trading_state", '{state="ACTIVE"}') == 1
    assert -300 < _value(text, "condorbot_unrealized_pnl_dollars", '{at="mid"}') < 300
    assert (_value(text, "condorbot_unrealized_pnl_dollars", '{at="natural"}')
            < _value(text, "condorbot_unrealized_pnl_dollars", '{at="mid"}'))


def test_the_token_is_required_off_loopback_and_checked(settings_factory, tmp_path):
    with pytest.raises(cfg.ConfigError, match="web.token"):
        settings_factory(web={"host": "0.0.0.0"})
    s = settings_factory(web={"port": 0, "token": "s3cret"})
    ops = Ops(s, tmp_path / "none.db")
    try:
        assert ops.server is not None
        base = f"http://127.0.0.1:{ops.server.port}"
        assert _get(base + "/")[0] == 401
        assert _get(base + "/metrics")[0] == 401
        assert _get(base + "/?token=wrong")[0] == 401
        assert _get(base + "/?token=s3cret")[0] == 200
        code, text = _get(base + "/metrics", Authorization="Bearer s3cret")
        assert code == 200 and "condorbot_net_liquidation_dollars" in text
        req = urllib.request.Request(base + "/?token=s3cret", data=b"stop", method="POST")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 405  # read-only: no control actions
    finally:
        ops.close()


def test_a_taken_port_is_logged_not_fatal(settings_factory, log_file, tmp_path):
    s = settings_factory(web={"port": 0})
    first = Ops(s, tmp_path / "none.db")
    try:
        assert first.server is not None
        taken = settings_factory(web={"port": first.server.port})
        second = Ops(taken, tmp_path / "none.db")
        assert second.server is None
        second.close()
    finally:
        first.close()
    assert '"web.bind_failed"' in log_file.read_text()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no headless Chromium at {CHROMIUM}")
def test_status_page_shows_the_open_condor_in_headless_chromium(tmp_path):
    pw = pytest.importorskip("playwright.sync_api", reason="playwright (python) not installed")
    raw = {"store_path": str(tmp_path / "state" / "c.db"), "control_file": str(tmp_path / "ctl"),
           "log": {"dir": str(tmp_path / "logs")}, "heartbeat_seconds": 60,
           "sim": {"speed": 1200, "days": 30}, "web": {"port": 0, "refresh_seconds": 1}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    proc = Proc(["run", "--config", str(tmp_path / "c.yaml")], REPO)
    try:
        port = proc.until(lambda e: e.get("event") == "web.started", 30)["port"]
        with pw.sync_playwright() as play:
            browser = play.chromium.launch(executable_path=CHROMIUM, headless=True)
            entered = proc.until(lambda e: e.get("event") == "campaign.entered", 60)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            # the page reloads itself until the daemon's marks of the new condor are in
            page.wait_for_selector("table#legs", timeout=30_000)
            legs = page.inner_text("table#legs")
            pnl = page.inner_text("table#pnl")
            status = page.inner_text("#status")
            browser.close()
    finally:
        proc.stop()
    exp = entered["expiry"].replace("-", "")
    p, c = entered["strikes"][1], entered["strikes"][2]
    assert f"SPX:SPX:{exp}:P:{p:g}" in legs and f"SPX:SPX:{exp}:C:{c:g}" in legs
    assert "-1" in legs and "+1" in legs
    realized, mid, natural = pnl.splitlines()[-1].split("\t")
    assert float(realized.replace(",", "")) == pytest.approx(0.0, abs=0.01)  # nothing closed yet
    assert float(natural.replace(",", "")) < float(mid.replace(",", ""))
    assert "condorbot status" in status and "OPEN" in status
