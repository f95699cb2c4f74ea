"""The control file: one word that tells the daemon what to do.

Words: run, pause, reduce, stop, flatten. The CLI writes it atomically (temp file + rename) so
the daemon never reads half a word. Unknown or unreadable content is reported once per distinct
content and changes nothing.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import logs
from bot.risk import ACTIVE, REDUCING
from strategies.tvm import Status

log = logs.get("bot.control")
WORDS = ("run", "pause", "reduce", "stop", "flatten")
MODE_EVENTS = {"run": "control.resumed", "pause": "control.paused",
               "reduce": "control.reducing", "flatten": "control.flattening"}


def write(path: Path | str, word: str) -> None:
    if word not in WORDS:
        raise ValueError(f"unknown control word {word!r}; expected one of {', '.join(WORDS)}")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".control.", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(word + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Reading:
    word: str | None  # a valid word, or None when the file is missing
    error: str | None = None  # set when the content is not a valid word
    raw: str = ""


def read(path: Path | str) -> Reading:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return Reading(None)
    except OSError as e:
        return Reading(None, f"cannot read control file: {e.strerror}")
    try:
        text = data.decode("utf-8").strip().lower()
    except UnicodeDecodeError:
        return Reading(None, "control file is not UTF-8 text", repr(data[:40]))
    if text in WORDS:
        return Reading(text, raw=text)
    return Reading(None, f"unknown control word {text[:40]!r}", text[:40])


class Controller:
    """The daemon's side of the control file: poll it, apply each new word once.

    Holds the control word in force (`daemon.mode`) and reacts to each word with the daemon's
    executor, guard and strategy state. Unreadable or unknown content is `control.invalid`,
    logged once per distinct problem, and changes nothing.
    """

    def __init__(self, daemon: Any) -> None:
        self.d = daemon
        self._stamp: tuple[int, int] | None = None
        self._error: str | None = None

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
            await self.apply(reading.word)

    def _problem(self, error: str, raw: str) -> None:
        if error != self._error:
            self._error = error
            log.warning("control.invalid", error=error, content=raw, mode=self.d.mode)

    async def apply(self, word: str) -> None:
        d = self.d
        now = d.clock.now()
        if word == "run":
            if d.guard.state != ACTIVE:
                d._set_trading_state(ACTIVE, "operator_resume")
            if d.mode != "run":
                self.set_mode("run", "operator")
        elif word == "pause":
            if d.mode != "pause":
                self.set_mode("pause", "operator")
                await d.executor.cancel_all(now, "paused")
        elif word == "reduce":
            if d.guard.state == ACTIVE:
                d._set_trading_state(REDUCING, "operator_reduce")
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
