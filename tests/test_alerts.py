"""Alerts (bot.alerts) reach a local HTTP receiver through apprise's json:// plugin.

The receiver is a real HTTP server on 127.0.0.1; the alerts come from the log events a real
daemon (embedded sim, or IBBroker over the TWS emulator) emits.
"""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import threading
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from ib_helpers import REPO, broker, gateway, ib_errors  # noqa: F401

from bot import cli, logs
from bot.alerts import Alerter
from bot.broker.ib_market import next_emit
from bot.store import Store, sim_path
from strategies import tvm
from strategies.types import Contract, Leg
from tests import simrun
from tests.conftest import read_events


class Receiver:
    """Collects POSTed JSON bodies; `hold` makes every request wait until `release`."""

    def __init__(self, status: int = 200, hold: bool = False) -> None:
        self.got: queue.Queue[dict] = queue.Queue()
        self.arrived = threading.Event()
        self.gate = threading.Event()
        if not hold:
            self.gate.set()
        recv = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recv.arrived.set()
                recv.gate.wait(30)
                recv.got.put(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"json://127.0.0.1:{self.httpd.server_address[1]}/alert"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def all(self) -> list[dict]:
        out = []
        while not self.got.empty():
            out.append(self.got.get_nowait())
        return out

    def close(self) -> None:
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(**kw) -> Receiver:
        made.append(Receiver(**kw))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _alerts(settings_factory, url: str, **kw):
    return settings_factory(alerts={"urls": [url], "min_interval_seconds": 0, "timeout": 5,
                                    **kw}).alerts


def _seed_mismatch(settings) -> None:
    """A store whose strategy state holds a condor the (flat) sim broker does not have."""
    exp = date(2026, 2, 20)
    legs = tuple(Leg(Contract("SPX", "OPT", exp, k, r, "SPX", 100), q)
                 for k, r, q in ((5500, "P", 1), (5550, "P", -1), (6300, "C", -1),
                                 (6350, "C", 1)))
    camp = tvm.Campaign(id="C0001-20260105", legs=legs, qty=1, credit=10.0,
                        entered_at=datetime(2026, 1, 5, 15, tzinfo=UTC))
    st = Store(settings.store_path)
    st.put("strategy_state", tvm.State(status=tvm.Status.OPEN, seq=1, campaign=camp))
    st.close()


def test_halted_and_reconcile_mismatch_reach_the_receiver(settings_factory, log_file, receiver):
    recv = receiver()
    s = settings_factory(sim={"speed": "max", "days": 1}, alerts={"urls": [recv.url],
                                                                   "min_interval_seconds": 0})
    _seed_mismatch(s)
    alerter = Alerter(s.alerts).start()
    try:
        code, _ = asyncio.run(simrun.run(s))
    finally:
        alerter.close()
    assert code == 0
    titles = [m["title"] for m in recv.all()]
    assert any("positions differ" in t for t in titles), titles
    assert any("HALTED" in t for t in titles), titles
    assert any("daemon started" in t for t in titles) and titles[-1] == "condorbot: daemon stopped"
    halted = [e for e in read_events(log_file) if e["event"] == "risk.state"]
    assert halted and halted[0]["state"] == "HALTED"  # the alert was driven by this event


async def test_broker_down_longer_than_disconnect_seconds_alerts_once(settings_factory, log_file,
                                                                       receiver, ib_errors):
    ib_errors.allow(r".")  # refused reconnects while the emulator is down are the point here
    recv = receiver()
    alerter = Alerter(_alerts(settings_factory, recv.url, disconnect_seconds=2.0)).start()
    try:
        async with gateway() as gw, broker(gw) as b:
            blip = asyncio.ensure_future(next_emit(b.ib.disconnectedEvent))
            gw.drop()  # a blip: reconnected well inside disconnect_seconds, no alert
            await blip
            await b.wait_ready()
            lost = asyncio.get_running_loop().run_in_executor(None, recv.got.get, True, 20)
            await gw.close()  # the gateway goes away for good
            first = await lost
    finally:
        alerter.close()
    assert first["title"].startswith("condorbot: broker disconnected for")
    assert "check IB Gateway" in first["message"]
    rest = [m["title"] for m in recv.all()]
    assert not any("disconnected" in t for t in rest), rest
    evs = [e["event"] for e in read_events(log_file)]
    assert evs.count("broker.disconnected") == 2 and "broker.reconnected" in evs


def test_a_hung_failing_alert_url_does_not_hold_up_the_daemon(settings_factory, log_file,
                                                               receiver):
    recv = receiver(status=500, hold=True)  # accepts, hangs, then refuses
    s = settings_factory(sim={"speed": "max", "days": 2},
                         alerts={"urls": [recv.url], "min_interval_seconds": 300, "timeout": 20})
    alerter = Alerter(s.alerts).start()
    steps: list[bool] = []
    d = simrun.build(s)
    # each step records whether the alert request (sent at daemon.started) is still hanging
    d.step_hooks.append(lambda daemon, snap: steps.append(recv.arrived.is_set()
                                                           and not recv.gate.is_set()))
    try:
        code = asyncio.run(d.run())
    finally:
        d.store.close()
        hanging = recv.arrived.is_set() and not recv.gate.is_set()
        recv.gate.set()
        alerter.close()
    assert code == 0 and hanging  # the whole run finished while the alert still hung
    assert len(steps) > 100 and sum(steps) > 100  # ticks ran on while it hung
    evs = read_events(log_file)
    failed = [e for e in evs if e["event"] == "alert.failed"]
    assert [e["kind"] for e in failed][:1] == ["daemon.started"]
    # one attempt per kind: no retries
    assert len(recv.all()) == len(failed) == len({e["kind"] for e in failed})


def test_rate_limit_per_kind_holds_repeats_and_counts_them(settings_factory, log_file,
                                                           receiver):
    recv = receiver()
    t = [0.0]
    alerter = Alerter(_alerts(settings_factory, recv.url, min_interval_seconds=300),
                      now=lambda: t[0]).start()
    log = logs.get("test")
    try:
        for i in range(5):
            log.warning("control.invalid", error=f"bad word {i}", content="go", mode="run")
        log.info("risk.state", previous="ACTIVE", state="REDUCING", why="daily_loss")
        alerter.q.join()
        first = recv.all()
        t[0] = 301.0  # the window has passed
        log.warning("control.invalid", error="bad word 5", content="go", mode="run")
        alerter.q.join()
        (again,) = recv.all()
    finally:
        alerter.close()
    assert [m["title"] for m in first] == ["condorbot: invalid control file",
                                           "condorbot: trading REDUCING: closing orders only"]
    assert "bad word 0" in first[0]["message"]
    assert "bad word 5" in again["message"] and "4 more 'control.invalid'" in again["message"]
    held = [e for e in read_events(log_file) if e["event"] == "alert.held"]
    assert len(held) == 4


def _run_child(tmp_path, recv: Receiver, before: list[str], after: list[str],
               locked: bool) -> subprocess.CompletedProcess:
    """Python `before` CONFIG `after` in a child process, with a config alerting to `recv`
    (and the sim store held by this process when `locked`)."""
    store = tmp_path / "state" / "c.db"
    raw = {"store_path": str(store), "control_file": str(tmp_path / "ctl"),
           "log": {"dir": str(tmp_path / "logs")}, "web": {"enabled": False},
           "alerts": {"urls": [recv.url], "timeout": 5}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    holder = Store(sim_path(store), exclusive=True) if locked else None
    try:
        return subprocess.run([sys.executable, *before, str(tmp_path / "c.yaml"), *after],
                              cwd=REPO, capture_output=True, text=True, timeout=60)
    finally:
        if holder is not None:
            holder.close()


def test_an_exit_on_start_up_is_alerted_before_the_process_ends(tmp_path, receiver):
    """`condorbot run` on a store another process holds exits 1; the alert still goes out."""
    recv = receiver()
    r = _run_child(tmp_path, recv, ["-m", "bot", "run", "--config"], [], locked=True)
    assert r.returncode == 1 and "in use by another condorbot process" in r.stderr
    got = recv.all()  # `run` sends what is queued before it returns (web.stop)
    assert len(got) == 1, f"{len(got)} alerts received; the process's stderr:\n{r.stderr[-3000:]}"
    (msg,) = got
    assert msg["title"] == "condorbot: store locked by another process: daemon exited"
    assert "only one daemon per store" in msg["message"]


# `condorbot run` with the alerter's sender held until the alerter is closed: the order a
# loaded machine can give (the main thread reaches the exit before the sender thread sends)
_SLOW_SENDER = """
import sys, threading
from bot import alerts, cli
go, handle, close = threading.Event(), alerts.Alerter._handle, alerts.Alerter.close
def held(self, *a):
    go.wait(30)
    return handle(self, *a)
def closing(self, timeout=None):
    go.set()
    return close(self, timeout)
alerts.Alerter._handle, alerts.Alerter.close = held, closing
if sys.argv[2] == "crash":
    async def boom(settings):
        raise RuntimeError("boom")
    cli._serve = boom
sys.exit(cli.main(["run", "--config", sys.argv[1]]))
"""


@pytest.mark.parametrize("how, title", [
    ("locked", "condorbot: store locked by another process: daemon exited"),
    ("crash", "condorbot: daemon crashed"),
])
def test_the_last_alert_goes_out_even_when_the_sender_is_slower_than_the_exit(
        tmp_path, receiver, how, title):
    """Alerts queued at the end of `run` are sent before the interpreter shuts down: at
    atexit, apprise's thread pool refuses work and the alert was lost (issue 17's flaky
    start-up test: 0 alerts on a loaded machine)."""
    recv = receiver()
    r = _run_child(tmp_path, recv, ["-c", _SLOW_SENDER], [how], locked=how == "locked")
    assert r.returncode == 1, r.stderr[-3000:]
    got = recv.all()  # the process has ended: what it sent has been received
    assert [m["title"] for m in got] == [title], r.stderr[-3000:]


def test_alert_test_command_sends_one_message(tmp_path, receiver, capsys):
    recv = receiver()
    cfgfile = tmp_path / "c.yaml"
    cfgfile.write_text(f"alerts:\n  urls: ['{recv.url}']\n")
    assert cli.main(["alert-test", "--config", str(cfgfile)]) == 0
    (msg,) = recv.all()
    assert msg["title"] == "condorbot: test alert" and "sent" in capsys.readouterr().out


def test_alert_test_without_urls_is_a_usage_error(tmp_path, capsys):
    cfgfile = tmp_path / "c.yaml"
    cfgfile.write_text("alerts:\n  urls: []\n")
    assert cli.main(["alert-test", "--config", str(cfgfile)]) == 2
    assert "alerts.urls is empty" in capsys.readouterr().err


def test_every_alert_is_driven_by_an_event_the_code_really_logs():
    """An event renamed elsewhere would silently end its alert: each mapped name must occur
    as a logged event name in bot/ or strategies/ (other than in bot/alerts.py itself)."""
    from bot.alerts import EVENTS

    sources = "".join(p.read_text() for d in ("bot", "strategies")
                      for p in (REPO / d).rglob("*.py") if p.name != "alerts.py")
    names = set(EVENTS) | {"risk.state", "daemon.stopped", "broker.disconnected",
                           "broker.reconnected"}
    missing = sorted(n for n in names if f'"{n}"' not in sources)
    assert missing == [], f"alerts mapped to events nobody logs: {missing}"


@pytest.mark.parametrize("ev, kind", [
    ({"event": "risk.state", "state": "HALTED"}, "risk.HALTED"),
    ({"event": "risk.state", "state": "ACTIVE"}, "risk.ACTIVE"),
    ({"event": "daemon.stopped", "exit_code": 3}, "daemon.crashed"),
    ({"event": "daemon.stopped", "exit_code": 0}, "daemon.stopped"),
    ({"event": "broker.connect_failed", "attempt": 2}, None),  # one try of several
    ({"event": "broker.connect_failed", "code": 502}, "daemon.crashed"),
    ({"event": "order.filled"}, None),
    ({"event": "store.write_failed", "what": "heartbeat"}, "store.write_failed"),
])
def test_classify(ev, kind):
    from bot.alerts import classify

    got = classify(ev)
    assert (got[0] if got else None) == kind
