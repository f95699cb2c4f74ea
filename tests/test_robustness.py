"""Bad surroundings get a clear error event and no trade: a locked store, an unwritable or
full log directory, a clock that jumps."""

import json
import math
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from bot import logs
from bot.clock import JumpDetector
from bot.risk import REDUCING
from bot.store import Store, StoreLocked
from strategies.tvm import Status
from tests.conftest import read_events
from tests.simrun import build


def test_second_daemon_on_the_same_store_is_refused(tmp_path):
    first = Store(tmp_path / "s.db", exclusive=True)
    try:
        with pytest.raises(StoreLocked, match="in use by another"):
            Store(tmp_path / "s.db", exclusive=True)
        with pytest.raises(StoreLocked):  # a reset under another daemon is refused too
            Store(tmp_path / "s.db", exclusive=True, reset=True)
        assert (tmp_path / "s.db").exists()
        reader = Store(tmp_path / "s.db")  # status/history may still read
        reader.close()
    finally:
        first.close()
    Store(tmp_path / "s.db", exclusive=True).close()  # free again once the first is gone


def test_cli_refuses_a_locked_store(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"sim": {"speed": "max", "days": 1}}))
    holder = Store(tmp_path / "state" / "condorbot-sim.db", exclusive=True)
    try:
        r = subprocess.run([sys.executable, "-m", "bot", "run", "--config", "config.yaml"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    finally:
        holder.close()
    assert r.returncode == 1
    events = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert [e for e in events if e["event"] == "store.locked"]
    assert not [e for e in events if e["event"] in ("order.submitted", "daemon.started")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_log_dir_is_reported(tmp_path, capsys):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        assert logs.setup(d, "x.jsonl", console=False) is None
    finally:
        d.chmod(0o700)
    assert "log.open_failed" in capsys.readouterr().err


def test_log_path_that_is_not_a_directory_is_reported(tmp_path, capsys):
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the log directory should be")
    assert logs.setup(blocker, "x.jsonl", console=False) is None
    assert "log.open_failed" in capsys.readouterr().err
    logs.get("t").info("still.logging")  # the daemon goes on without its file


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_disk_is_reported_once_and_logging_goes_on(tmp_path, capsys):
    path = logs.setup(tmp_path, "x.jsonl", console=False)
    handler = next(h for h in logs.logging.getLogger().handlers
                   if isinstance(h, logs._SafeRotatingHandler))
    handler.stream.close()
    handler.stream = open("/dev/full", "w")  # every write now fails with ENOSPC
    for _ in range(3):
        logs.get("t").info("disk.test")
    err = capsys.readouterr().err
    assert err.count("log.write_failed") == 1 and "No space" in err
    assert path is not None


def test_clock_jump_detector():
    t0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    d = JumpDetector(30.0)
    assert d.check(t0, mono=100.0) is None
    assert d.check(t0 + timedelta(seconds=60), mono=160.0) is None  # normal
    assert d.check(t0 + timedelta(seconds=100), mono=200.0) is None  # 40 s later: on time
    jump = d.check(t0 + timedelta(hours=2), mono=260.0)  # 2 h in 60 s of wall time
    assert jump == pytest.approx(7200 - 100 - 60)
    back = t0 + timedelta(hours=2) - timedelta(seconds=60)
    assert d.check(back, mono=320.0) == pytest.approx(-120)
    fast = JumpDetector(30.0, rate=600.0)  # an accelerated broker clock is not a jump
    assert fast.check(t0, mono=0.0) is None
    assert fast.check(t0 + timedelta(seconds=600), mono=1.0) is None


async def test_daemon_skips_trading_on_a_clock_jump(settings_factory, log_file):
    import time as _time

    from tests.conftest import read_events
    from tests.simrun import build

    d = build(settings_factory())
    await d.broker.connect()
    d.clock.advance(30 * 60)  # 30 minutes into the session: entry would be allowed
    d._jumps.check(d.clock.now(), mono=_time.monotonic())
    d.clock.advance(3 * 3600)  # three hours pass on the market clock in no wall time at all
    await d._live_tick()
    names = [e["event"] for e in read_events(log_file)]
    assert "clock.jump" in names and "reconcile.done" in names
    assert "order.submitted" not in names and "entry.decided" not in names
    await d._live_tick()  # the next tick, on time again, trades normally
    assert "entry.decided" in [e["event"] for e in read_events(log_file)]
    d.store.close()


def test_unreadable_trading_state_starts_halted(settings_factory, log_file):
    from bot.risk import HALTED
    from tests.conftest import read_events
    from tests.simrun import build

    s = settings_factory()
    st = Store(s.store_path)
    st.put("guard", {"state": "SOMETHING_ELSE"})
    st.close()
    d = build(s)
    try:
        assert d.guard.state == HALTED
        assert [e for e in read_events(log_file) if e["event"] == "store.bad_trading_state"]
    finally:
        d.store.close()


# --- a full disk between placeOrder and the "working" update (#14 item 3) ------------------------
def _fill_disk_after_place(d):
    """Every store write raises "database or disk is full" from the first placeOrder on,
    until `full["on"]` is cleared (space returns)."""
    full = {"on": False}

    def failing(fn):
        def call(*a, **kw):
            if full["on"]:
                raise sqlite3.OperationalError("database or disk is full")
            return fn(*a, **kw)
        return call

    for name in ("update_intent", "add_fill", "add_intent", "put", "tx", "upsert_campaign"):
        setattr(d.store, name, failing(getattr(d.store, name)))
    place = d.broker.place

    async def placed(req):
        st = await place(req)
        full["on"] = True
        return st

    d.broker.place = placed
    return full


async def test_disk_full_after_placeorder_keeps_the_order_tracked(settings_factory, log_file):
    d = build(settings_factory())
    await d.broker.connect()
    d.clock.advance(20 * 60)
    full = _fill_disk_after_place(d)
    await d.step()
    ev = read_events(log_file)
    names = [e["event"] for e in ev]
    assert "order.submitted" in names and "tick.failed" not in names
    assert d.executor.busy  # still tracked: the order is at the broker
    assert "store.write_failed" in names and d.guard.state == REDUCING
    key = next(e["key"] for e in ev if e["event"] == "order.submitted")
    for _ in range(6):  # REDUCING: the opening order is cancelled, not walked
        d.clock.advance(10)
        await d.step(decide=False)
    assert not [o for o in await d.broker.orders() if o.working]
    full["on"] = False  # space returns: the order's final row is written, then folded
    d.clock.advance(10)
    await d.step(decide=False)
    row = d.store.intent(key)
    assert row["status"] == "cancelled" and row["order_id"] is not None
    assert not d.executor.busy and d.state.status is Status.IDLE
    d.store.close()


class _BadChain:
    def __init__(self, chain, quote, as_of=None):
        self._chain, self._q, self.as_of = chain, quote, as_of

    def __getattr__(self, name):
        return getattr(self._chain, name)

    def quote(self, strike, right):
        return self._q


@pytest.mark.parametrize("quote, age, code", [
    ((math.nan, math.nan), 0, "quote_not_finite"),
    ((2.0, 1.0), 0, "quote_crossed"),
    ((1.0, 1.2), 3600, "quote_stale"),
])
async def test_a_walk_on_bad_quotes_cancels_instead_of_modifying(settings_factory, log_file,
                                                                 quote, age, code):
    d = build(settings_factory())
    await d.broker.connect()
    d.clock.advance(20 * 60)
    await d.step()
    assert d.executor.busy
    real = d.broker.snapshot

    async def bad():
        snap = await real()
        as_of = snap.time - timedelta(seconds=age)
        return replace(snap, chains={e: _BadChain(c, quote, as_of) for e, c in snap.chains.items()})

    d.broker.snapshot = bad
    d.clock.advance(10)
    await d.step(decide=False)
    ev = read_events(log_file)
    assert not [e for e in ev if e["event"] == "order.walked"]
    assert [e for e in ev if e["event"] == "order.walk_bad_quotes"][0]["code"] == code
    assert [e for e in ev if e["event"] == "order.cancel_requested"][0]["why"] == code
    d.store.close()


async def test_a_close_goes_out_while_the_store_is_full(settings_factory, log_file):
    from bot import control

    s = settings_factory()
    d = build(s)
    await d.broker.connect()
    d.clock.advance(20 * 60)
    while d.state.status is not Status.OPEN:
        await d.step()
        d.clock.advance(10)
    full = _fill_disk_after_place(d)
    full["on"] = True  # the disk is full before the close is decided
    control.write(s.control_file, "flatten")
    await d.poll_control()
    for _ in range(8):
        d.clock.advance(10)
        await d.step()
    ev = read_events(log_file)
    closes = [e for e in ev if e["event"] == "order.submitted" and e["action"] == "close"]
    assert closes and "tick.failed" not in [e["event"] for e in ev]
    key = closes[0]["key"]
    assert [o for o in await d.broker.orders() if o.order_ref == key]  # sent, none written
    assert d.store.intent(key) is None
    full["on"] = False  # space returns: the close's row is written, with its order id
    d.clock.advance(10)
    await d.step()
    row = d.store.intent(key)
    assert row is not None and row["order_id"] is not None and row["action"] == "close"
    d.store.close()
