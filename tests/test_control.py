"""The control file: atomic writes, tolerant reads, and the daemon's reaction to each word."""

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from bot import control
from bot.daemon import Daemon
from bot.risk import ACTIVE, HALTED, REDUCING
from bot.store import Store, set_aside
from strategies.tvm import Status
from tests.conftest import read_events
from tests.procs import Proc
from tests.simrun import build, working_entry


def test_write_is_atomic_and_readable(tmp_path):
    p = tmp_path / "sub" / "control"
    control.write(p, "pause")
    assert control.read(p).word == "pause"
    assert not [f for f in p.parent.iterdir() if f.name.startswith(".control.")]
    with pytest.raises(ValueError):
        control.write(p, "explode")
    assert control.read(p).word == "pause"


@pytest.mark.parametrize("content, error", [
    (b"paws\n", "unknown control word"),
    (b"pau", "unknown control word"),  # half-written
    (b"\xff\xfe\x00", "not UTF-8"),
    (b"", "unknown control word"),
])
def test_bad_content_is_an_error_not_a_word(tmp_path, content, error):
    p = tmp_path / "control"
    p.write_bytes(content)
    r = control.read(p)
    assert r.word is None and error in r.error


def test_missing_file_is_no_command(tmp_path):
    assert control.read(tmp_path / "none") == control.Reading(None)


def _events(log_file, name):
    return [e for e in read_events(log_file) if e["event"] == name]


async def test_pause_cancels_working_orders_and_places_nothing(settings_factory, log_file):
    s = settings_factory()
    d = await working_entry(s)
    control.write(s.control_file, "pause")
    await d.poll_control()
    assert d.mode == "pause" and len(_events(log_file, "control.paused")) == 1
    before = len(_events(log_file, "order.submitted"))
    for _ in range(30):
        d.clock.advance(60)
        await d.step()
    assert d.state.status is Status.IDLE  # the entry was cancelled before it filled
    assert len(_events(log_file, "order.submitted")) == before
    assert _events(log_file, "order.cancel_requested")
    d.store.close()


async def test_unknown_content_warns_once_and_changes_nothing(settings_factory, log_file):
    s = settings_factory()
    d = build(s)
    s.control_file.write_text("wat\n")
    for _ in range(3):
        await d.poll_control()
    os.utime(s.control_file, ns=(1, 1))  # touched again with the same content: still one
    await d.poll_control()
    assert len(_events(log_file, "control.invalid")) == 1
    assert d.mode == "run" and d.guard.state == ACTIVE
    d.store.close()


async def test_reduce_refuses_openings_and_resume_leaves_halted(settings_factory, log_file):
    s = settings_factory()
    d = build(s)
    await d.broker.connect()
    control.write(s.control_file, "reduce")
    await d.poll_control()
    assert d.guard.state == REDUCING
    d.clock.advance(20 * 60)
    for _ in range(5):
        await d.step()
        d.clock.advance(60)
    # nothing held: no campaign is invented each tick only to be refused (#14 item 11)
    assert not _events(log_file, "order.submitted") and not _events(log_file, "entry.decided")
    assert not _events(log_file, "risk.rejected") and d.state.seq == 0
    assert [e["reason"] for e in _events(log_file, "entry.skipped")].count("reducing") == 1
    d.guard.state = HALTED
    control.write(s.control_file, "run")
    await d.poll_control()
    assert d.guard.state == ACTIVE and d.mode == "run"
    assert _events(log_file, "risk.state")[-1]["state"] == ACTIVE
    d.store.close()


async def test_stop_exits_zero_and_cancels(settings_factory, log_file):
    s = settings_factory(sim={"speed": "max"})
    d = build(s)
    control.write(s.control_file, "stop")
    code = await d.run()
    assert code == 0
    assert _events(log_file, "control.stop") and _events(log_file, "daemon.stopped")
    d.store.close()


async def _daemon_with_open_condor(s):
    d = await working_entry(s)
    while d.state.status is not Status.OPEN:
        d.clock.advance(10)
        await d.step()
    return d


async def test_flatten_closes_the_condor_then_pauses(settings_factory, log_file):
    s = settings_factory()
    d = await _daemon_with_open_condor(s)
    control.write(s.control_file, "flatten")
    await d.poll_control()
    for _ in range(20):
        d.clock.advance(10)
        await d.step()
        if d.mode == "pause":
            break
    assert d.mode == "pause"
    assert d.state.status in (Status.CLOSED, Status.IDLE) and d.state.seq == 1  # nothing new
    closed = _events(log_file, "campaign.closed")
    assert closed and closed[0]["reason"] == "flatten"
    assert await d.broker.positions() == []
    d.store.close()


# --- sticky start-up states (#14 item 1) ------------------------------------------------------
async def _restart(settings):
    """A new daemon on the same store, started as `Daemon.run` starts one: connect,
    reconcile (and a reset store's REDUCING), then read the control file."""
    d = build(settings)
    await d.start()
    return d


async def test_leftover_run_does_not_lift_a_halt_found_at_start(settings_factory, log_file):
    s = settings_factory()
    d = await _daemon_with_open_condor(s)
    d.store.close()
    control.write(s.control_file, "run")  # an earlier `condorbot resume`, still on disk
    # the embedded broker restarts flat: the store's condor is not at the broker -> mismatch
    d = await _restart(s)
    assert _events(log_file, "reconcile.mismatch")
    assert d.guard.state == HALTED
    assert _events(log_file, "control.resume_stale")[-1]["state"] == HALTED
    d.clock.advance(20 * 60)
    before = len(_events(log_file, "order.submitted"))
    await d.step()
    assert len(_events(log_file, "order.submitted")) == before  # nothing opened on top
    control.write(s.control_file, "run")  # a resume issued after the halt lifts it
    await d.poll_control()
    assert d.guard.state == ACTIVE
    d.store.close()


async def test_daily_loss_reduce_survives_a_restart_with_run_on_disk(settings_factory,
                                                                    log_file):
    s = settings_factory()
    control.write(s.control_file, "run")
    d = await _restart(s)
    await d.step()  # the day's starting net liquidation (entries wait 15 minutes)
    d.broker.cash -= 0.04 * s.sim.initial_cash  # a 4% loss: past the 3% reduce limit
    d.clock.advance(60)
    await d.step()
    assert d.guard.state == REDUCING
    d.store.close()
    d = await _restart(s)  # SIGKILL and restart: same store, same control file
    assert d.guard.state == REDUCING
    d.store.close()


async def test_operator_reduce_on_a_daily_loss_outlasts_the_trading_day(settings_factory,
                                                                          log_file):
    # #14 item 6: the daily-loss REDUCING ends at the next trading day; an operator reduce
    # issued while it held lasts until a resume
    s = settings_factory()
    d = await _restart(s)
    await d.step()
    d.broker.cash -= 0.04 * s.sim.initial_cash  # past the 3% reduce limit
    d.clock.advance(60)
    await d.step()
    assert d.guard.state == REDUCING
    await d.apply_control("reduce")
    d.clock.advance(24 * 3600)
    await d.step()
    assert [e["why"] for e in _events(log_file, "risk.state")][-1:] != ["new_trading_day"]
    assert d.guard.state == REDUCING
    d.store.close()


async def test_a_reset_store_reduces_until_a_resume_issued_after_it(settings_factory,
                                                                     log_file):
    # #14 item 8: `condorbot reset-store` set the damaged file aside; the rebuilt store
    # knows nothing of the bot's past, so the daemon only reduces until resumed
    s = settings_factory()
    Store(s.store_path).close()
    control.write(s.control_file, "run")  # a resume from before the reset, still on disk
    aside = set_aside(s.store_path, datetime(2026, 1, 5, 15, 0), "test damage")
    d = await _restart(s)
    assert d.guard.state == REDUCING
    found = _events(log_file, "store.reset_found")
    assert found and found[0]["set_aside"] == str(aside)
    assert _events(log_file, "risk.state")[-1]["why"] == "store_reset"
    control.write(s.control_file, "run")  # a resume issued after it lifts it
    await d.poll_control()
    assert d.guard.state == ACTIVE
    d.store.close()
    d = await _restart(s)  # the reset was handled: a restart keeps the resumed state
    assert d.guard.state == ACTIVE and len(_events(log_file, "store.reset_found")) == 1
    d.store.close()


async def test_a_missing_store_beside_held_positions_reduces(settings_factory, log_file):
    s = settings_factory()
    d = await _daemon_with_open_condor(s)
    d.store.close()
    s.store_path.unlink()  # lost: the broker still holds the condor
    again = Daemon(s, d.broker, d.clock, Store(s.store_path))
    await again.start()
    # reconciliation finds the condor an orphan (REDUCING); the store's loss is named too
    assert again.guard.state == REDUCING and again.guard.flags["operator"] == REDUCING
    assert len(_events(log_file, "store.missing")[0]["positions"]) == 4
    again.store.close()


async def test_bad_trading_state_in_store_needs_a_new_resume(settings_factory, log_file):
    s = settings_factory()
    control.write(s.control_file, "run")
    d = build(s)
    d.store.put("trading_state", "SIDEWAYS")  # damaged
    d.store.close()
    d = await _restart(s)
    assert d.guard.state == HALTED
    d.store.close()


# --- the control file is read bounded and non-blocking (#14 item 7) ------------------------------
def test_a_large_file_is_refused_after_4_kib(tmp_path):
    p = tmp_path / "control"
    with open(p, "wb") as f:
        f.truncate(50_000_000)  # sparse: 50 MB of NULs that must not be read
    r = control.read(p)
    assert r.word is None and "larger than 4096 bytes" in r.error


def test_device_symlink_is_refused_without_reading(tmp_path):
    """In a child limited to 1 GiB of address space: reading /dev/zero to its end would
    fail there with MemoryError instead of taking the machine's memory."""
    link = tmp_path / "control"
    link.symlink_to("/dev/zero")
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30));"
            "from bot import control; r = control.read(sys.argv[1]);"
            "print(r.word, '|', r.error)")
    out = subprocess.run([sys.executable, "-c", code, str(link)], capture_output=True,
                         text=True, timeout=60, cwd=Path(__file__).parent.parent)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.startswith("None | control file is a character device"), out.stdout


def test_fifo_control_file_neither_blocks_heartbeats_nor_sigterm(tmp_path):
    os.mkfifo(tmp_path / "control")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(
        {"heartbeat_seconds": 1, "control_poll_seconds": 0.2, "sim": {"speed": 600}}))
    d = Proc(["run", "--config", "config.yaml"], tmp_path)
    try:
        bad = d.until(lambda e: e["event"] == "control.invalid", 60)
        assert "FIFO" in bad["error"]
        d.until(lambda e: e["event"] == "heartbeat", 10)
        d.until(lambda e: e["event"] == "heartbeat", 10)
        d.p.terminate()
        assert d.p.wait(timeout=10) == 0
        assert len([e for e in d.seen if e["event"] == "control.invalid"]) == 1
    finally:
        d.kill()
