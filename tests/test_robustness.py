"""Bad surroundings get a clear error event and no trade: a locked store, an unwritable or
full log directory, a clock that jumps."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from bot import logs
from bot.clock import JumpDetector
from bot.store import Store, StoreLocked


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
    assert d.check(t0 + timedelta(hours=2) - timedelta(seconds=60), mono=320.0) == pytest.approx(-120)
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
