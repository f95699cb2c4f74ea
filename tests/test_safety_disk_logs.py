"""#14 item 3, second half: a full log disk never blocks a close.

The daemon's JSON log file, its console stream and stderr (`condorbot run >> logs/... 2>&1`)
all sit on the disk that filled: every write raises ENOSPC. The close must still be decided,
placed and filled on the same steps as with a working disk, and no tick may fail.
"""

from __future__ import annotations

import errno
import io
import logging
import sys

from bot import logs
from strategies.tvm import Status
from tests.simrun import build


class FullDisk(io.TextIOBase):
    """A stream on a full disk: every write (and flush) fails with ENOSPC."""

    def __init__(self) -> None:
        self.attempts = 0

    def write(self, s: str) -> int:
        self.attempts += 1
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def tell(self) -> int:
        return 0


def _ours() -> list[logging.Handler]:
    """The handlers `logs.setup` installed (the JSON file, the console), not pytest's."""
    return [h for h in logging.getLogger().handlers
            if not type(h).__module__.startswith("_pytest")]


async def _open_condor(settings):
    d = build(settings)
    await d.broker.connect()
    d.clock.advance(20 * 60)  # past the first 15 minutes of the session
    await d.step()
    while d.state.status is not Status.OPEN:
        d.clock.advance(10)
        await d.step()
    return d


def _fill_the_disk(monkeypatch) -> FullDisk:
    full = FullDisk()
    for h in _ours():  # the JSON file and the console
        monkeypatch.setattr(h, "stream", full)
    monkeypatch.setattr(sys, "stderr", full)
    return full


async def test_flatten_closes_on_a_full_log_disk(settings_factory, log_file, monkeypatch):
    s = settings_factory()
    d = await _open_condor(s)
    assert await d.broker.positions()
    await d.apply_control("flatten")
    seen: list[dict] = []  # the events as the daemon logs them, before any handler writes
    logs.add_listener(seen.append)
    before = logs.write_failures()
    try:
        full = _fill_the_disk(monkeypatch)
        d.clock.advance(10)
        await d.step()  # the first step on the full disk decides and places the close
        closes = [e for e in seen if e["event"] == "order.submitted" and e["action"] == "close"]
        assert closes, [e["event"] for e in seen]
        assert [o for o in await d.broker.orders() if o.order_ref == closes[0]["key"]]
        for _ in range(20):
            if d.mode == "pause":
                break
            d.clock.advance(10)
            await d.step()
    finally:
        logs.remove_listener(seen.append)
        monkeypatch.undo()
    names = [e["event"] for e in seen]
    assert "tick.failed" not in names and "daemon.shutdown_error" not in names
    assert d.mode == "pause" and await d.broker.positions() == []
    assert [e["reason"] for e in seen if e["event"] == "campaign.closed"] == ["flatten"]
    assert "order.filled" in names
    assert full.attempts > 0 and logs.write_failures() > before  # every lost record counted
    d.store.close()


async def test_a_raising_handler_never_reaches_trading_code(settings_factory, log_file,
                                                            capsys):
    # a handler that lets its write error out (a third-party handler without a safe
    # handleError, writing to the full disk): the close goes out all the same
    s = settings_factory()
    d = await _open_condor(s)
    await d.apply_control("flatten")

    class Raising(logging.Handler):
        def handle(self, record):
            raise OSError(errno.ENOSPC, "No space left on device")

    root = logging.getLogger()
    root.addHandler(raising := Raising())
    try:
        for _ in range(20):
            d.clock.advance(10)
            await d.step()
            if d.mode == "pause":
                break
    finally:
        root.removeHandler(raising)
    assert d.mode == "pause" and await d.broker.positions() == []
    err = capsys.readouterr().err
    assert err.count("log.write_failed") == 1 and "No space" in err  # reported once
    d.store.close()


def test_lost_records_are_counted_and_reported_once(tmp_path, capsys):
    logs.setup(tmp_path, "x.jsonl", console=False)
    full = FullDisk()
    for h in _ours():
        h.stream = full
    before = logs.write_failures()
    for _ in range(5):
        logs.get("t").info("disk.test")
    # two handlers (file and console) lose five records each
    assert logs.write_failures() - before == 10
    assert capsys.readouterr().err.count("log.write_failed") == 1
