"""The control file: one word that tells the daemon what to do, with the sequence number of
the command that wrote it.

Words: run, pause, reduce, stop, flatten. The CLI writes `WORD SEQ` atomically (temp file +
rename) so the daemon never reads half a word; SEQ is the writer's wall time in nanoseconds,
bumped past the previous command's, so the daemon can tell a `resume` issued after a halt
from one left on disk before it (a bare word, written by hand, counts from its mtime).
Only a regular file of at most `MAX_BYTES` is read, opened non-blocking: a FIFO, a device or
a symlink to one is refused before any read. Unknown or unreadable content is reported once
per distinct problem and changes nothing.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import logs
from bot.risk import ACTIVE, HALTED, REDUCING
from strategies.tvm import Status

log = logs.get("bot.control")
WORDS = ("run", "pause", "reduce", "stop", "flatten")
MODE_EVENTS = {"run": "control.resumed", "pause": "control.paused",
               "reduce": "control.reducing", "flatten": "control.flattening"}
MAX_BYTES = 4096
STRICTNESS = {ACTIVE: 0, REDUCING: 1, HALTED: 2}


def write(path: Path | str, word: str) -> int:
    """Write `word` with a new sequence number (returned), atomically."""
    if word not in WORDS:
        raise ValueError(f"unknown control word {word!r}; expected one of {', '.join(WORDS)}")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    seq = max(time.time_ns(), (read(p).seq or 0) + 1)
    fd, tmp = tempfile.mkstemp(prefix=".control.", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{word} {seq}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return seq


@dataclass(frozen=True)
class Reading:
    word: str | None  # a valid word, or None when the file is missing
    error: str | None = None  # set when the content is not a valid word
    raw: str = ""
    seq: int | None = None  # the command's sequence number (mtime_ns for a bare word)


def _kind(mode: int) -> str | None:
    """What the file is when it is not a regular file (None when it is)."""
    if stat.S_ISREG(mode):
        return None
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read(path: Path | str) -> Reading:
    """The word on disk; never blocks and never reads more than MAX_BYTES + 1 bytes."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    try:
        kind = _kind(os.stat(path).st_mode)  # refuse a FIFO/device before opening it at all
        if kind is not None:
            return Reading(None, f"control file is {kind}, not a regular file")
        fd = os.open(path, flags)
    except FileNotFoundError:
        return Reading(None)
    except OSError as e:
        return Reading(None, f"cannot read control file: {e.strerror}")
    try:
        st = os.fstat(fd)  # the file opened, not the one stat() saw a moment ago
        kind = _kind(st.st_mode)
        if kind is not None:
            return Reading(None, f"control file is {kind}, not a regular file")
        data = os.read(fd, MAX_BYTES + 1) if st.st_size <= MAX_BYTES else b"x" * (MAX_BYTES + 1)
    except OSError as e:
        return Reading(None, f"cannot read control file: {e.strerror}")
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        return Reading(None, f"control file is larger than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8").strip().lower()
    except UnicodeDecodeError:
        return Reading(None, "control file is not UTF-8 text", repr(data[:40]))
    parts = text.split()
    if len(parts) in (1, 2) and parts[0] in WORDS:
        if len(parts) == 1:
            return Reading(parts[0], raw=text, seq=st.st_mtime_ns)
        if parts[1].isdigit():
            return Reading(parts[0], raw=text, seq=int(parts[1]))
    return Reading(None, f"unknown control word {text[:40]!r}", text[:40])


class Controller:
    """The daemon's side of the control file: poll it, apply each new word once.

    Holds the control word in force (`daemon.mode`) and reacts to each word with the daemon's
    executor, guard and strategy state. Unreadable or unknown content is `control.invalid`,
    logged once per distinct problem, and changes nothing.

    Sticky states: `since_ns` is the wall time (ns) at which the trading state last became
    stricter (recovery, the daily-loss rule, an operator reduce). A `run` word lifts REDUCING
    or HALTED only when its sequence number is later: a resume left on disk from before the
    halt — re-read after a restart — never lifts it.
    """

    def __init__(self, daemon: Any, since_ns: int | None = None) -> None:
        self.d = daemon
        self.since_ns = since_ns
        self._stamp: tuple[int, int] | None = None
        self._error: str | None = None
        self._stale: int | None = None  # the stale resume already reported

    def note(self, before: str, after: str, force: bool = False) -> None:
        """The trading state moved from `before` to `after` (force: set again, e.g. by
        recovery at a start: a resume older than this start does not lift it)."""
        if after == ACTIVE:
            self.since_ns = None
        elif force or STRICTNESS[after] > STRICTNESS[before] or self.since_ns is None:
            self.since_ns = time.time_ns()

    async def poll(self) -> None:
        path = self.d.s.control_file
        try:
            st = os.stat(path)
            stamp = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            return
        except OSError as e:
            self._problem(f"cannot stat control file: {e.strerror}", "")
            return
        if stamp == self._stamp:
            return
        self._stamp = stamp
        reading = read(path)
        if reading.error:
            self._problem(reading.error, reading.raw)
            return
        self._error = None
        if reading.word is not None:
            await self.apply(reading.word, reading.seq)

    def _problem(self, error: str, raw: str) -> None:
        if error != self._error:
            self._error = error
            log.warning("control.invalid", error=error, content=raw, mode=self.d.mode)

    async def apply(self, word: str, seq: int | None = None) -> None:
        """Apply a control word; `seq` None = a command issued now."""
        d = self.d
        now = d.clock.now()
        if word == "run":
            if d.guard.state != ACTIVE:
                if seq is not None and self.since_ns is not None and seq <= self.since_ns:
                    if self._stale != seq:
                        self._stale = seq
                        log.warning("control.resume_stale", state=d.guard.state, seq=seq,
                                    state_since_ns=self.since_ns,
                                    action="still " + d.guard.state + "; run condorbot resume")
                else:
                    d._set_trading_state(ACTIVE, "operator_resume")
            if d.mode != "run":
                self.set_mode("run", "operator")
        elif word == "pause":
            if d.mode != "pause":
                self.set_mode("pause", "operator")
                await d.executor.cancel_all(now, "paused")
        elif word == "reduce":
            d._set_trading_state(REDUCING, "operator_reduce")  # sticky, whatever shows now
            self.set_mode("reduce", "operator")
        elif word == "flatten":
            if d.mode != "flatten":
                self.set_mode("flatten", "operator")
                if d.state.status is Status.ENTERING:
                    await d.executor.cancel_all(now, "flatten")
        elif word == "stop":
            log.info("control.stop", mode=d.mode)
            d.stop(0)
        d._persist(now)

    def set_mode(self, mode: str, why: str) -> None:
        previous, self.d.mode = self.d.mode, mode
        log.info(MODE_EVENTS[mode], previous=previous, why=why)
