"""#14 item 11: a normal stop logs no CancelledError and no failed tick.

A stop (SIGTERM, the control word `stop`) that arrives while the live schedule is inside a
broker request lets that step finish: cancelling it mid-request surfaced as a CancelledError
at error level from inside the broker's client.
"""

from __future__ import annotations

import logging
import os
import signal

from ib_helpers import SMALL, gateway, make_sim
from ib_helpers import settings as ib_settings
from tws_harness import ib_errors  # noqa: F401  (every ib_async ERROR fails the test)

from bot import control
from bot.broker.ib import IBBroker
from bot.daemon import Daemon
from bot.store import Store
from tests.conftest import read_events


class Records(logging.Handler):
    """Every stdlib record at ERROR or above, from any logger (ib_async, asyncio, ours)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _cancelled(events: list[dict], records: list[logging.LogRecord]) -> list[str]:
    bad = [str(e) for e in events if e.get("level") in ("error", "critical")
           and ("CancelledError" in str(e) or e["event"] == "tick.failed")]
    for r in records:
        text = r.getMessage() + (logging.Formatter().formatException(r.exc_info)
                                 if r.exc_info else "")
        if "CancelledError" in text or "tick.failed" in text:
            bad.append(f"{r.name}: {text}")
    return bad


async def _run_stopped_mid_request(s, stop) -> tuple[int, Daemon, list[str], list]:
    """Daemon.run on IBBroker over the emulator; `stop(daemon)` is called inside the first
    snapshot request, before its answer. Returns the exit code, the daemon, what the
    request did ("asked", then "answered" if it was let finish) and the error records."""
    rec = Records()
    logging.getLogger().addHandler(rec)
    try:
        async with gateway(make_sim()) as gw:
            ib = IBBroker(ib_settings(gw.port), strategy=s.strategy, reconnect_delays=(0.05,),
                          connect_attempts=1, plan=SMALL)
            d = Daemon(s, ib, ib.clock, Store(s.store_path))
            real = ib.snapshot
            request: list[str] = []

            async def snapshot_stopped_midway():
                first = not request
                request.append("asked")
                if first:
                    await stop(d)
                snap = await real()
                if first:
                    request.append("answered")
                return snap

            ib.snapshot = snapshot_stopped_midway
            steps: list = []
            d.step_hooks.append(lambda daemon, snap: steps.append(snap.time))
            try:
                code = await d.run()
            finally:
                d.store.close()
    finally:
        logging.getLogger().removeHandler(rec)
    return code, d, request + [f"steps={len(steps)}"], rec.records


async def test_sigterm_inside_a_broker_request_stops_cleanly(settings_factory, log_file):
    async def sigterm(d):
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the loop while the request waits

    code, d, request, records = await _run_stopped_mid_request(settings_factory(), sigterm)
    events = read_events(log_file)
    names = [e["event"] for e in events]
    assert code == 0 and "daemon.signal" in names and names[-1] == "daemon.stopped"
    # the step in flight was let finish (not cancelled inside the broker's client)...
    assert request[:2] == ["asked", "answered"] and request[-1] == "steps=1", request
    # ...and the stop logged nothing at error level about it
    assert not _cancelled(events, records)


async def test_control_stop_inside_a_broker_request_stops_cleanly(settings_factory,
                                                                   log_file):
    s = settings_factory()

    async def condorbot_stop(d):
        control.write(s.control_file, "stop")
        await d.poll_control()  # what the control-file job does when it next runs

    code, d, request, records = await _run_stopped_mid_request(s, condorbot_stop)
    events = read_events(log_file)
    names = [e["event"] for e in events]
    assert code == 0 and "control.stop" in names and names[-1] == "daemon.stopped"
    assert request[:2] == ["asked", "answered"] and request[-1] == "steps=1", request
    assert not _cancelled(events, records)
