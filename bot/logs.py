"""structlog: one JSON object per line in logs/condorbot.jsonl (size-rotated), readable console.

Every record has `timestamp` (UTC, ISO 8601), `level` and `event` (a dotted noun such as
`campaign.entered`) plus the fields of that event. Get a logger with `get(__name__)`.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import Any

import structlog

_clock: Any = None


def use_clock(clock: Any) -> None:
    """Stamp every record with `market_time` from this clock (the simulated time in the sim)."""
    global _clock
    _clock = clock


def _market_time(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    if _clock is not None and "market_time" not in event:
        event["market_time"] = _clock.now().isoformat()
    return event


_listeners: list[Any] = []


def add_listener(fn: Any) -> None:
    """Call fn(event_dict) for every log record (a copy), e.g. to collect a backtest's trades."""
    _listeners.append(fn)


def remove_listener(fn: Any) -> None:
    if fn in _listeners:
        _listeners.remove(fn)


def _tee(_: Any, __: str, event: Any) -> Any:
    for fn in list(_listeners):
        fn(dict(event))
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _market_time,
]


# the JSON line of a record: the file's formatter, a non-tty console's, and `_DirectSink`
# render with this one renderer, so the direct route writes the lines the stdlib route does
_JSON = structlog.processors.JSONRenderer(default=str)

_lost = 0  # records a handler (or the logging pipeline) failed to write, since start
_reported = False  # the first loss since `setup` went to stderr as `log.write_failed`


def write_failures() -> int:
    """How many records were lost to failed log writes (disk full, a raising handler)."""
    return _lost


def _lose(err: BaseException | None) -> None:
    """Count a lost record; report the first one on stderr. Never raises: a log write that
    fails must not reach the trading code that logged (a close on a full disk still goes
    out), and stderr may sit on the same full disk (`condorbot run >> logs/out 2>&1`)."""
    global _lost, _reported
    _lost += 1
    if _reported:
        return
    _reported = True
    try:
        line = {"event": "log.write_failed", "level": "error", "error": str(err),
                "then": "records that cannot be written are counted and dropped"}
        sys.stderr.write(json.dumps(line) + "\n")  # json: the error text may hold quotes
        sys.stderr.flush()
    except Exception:  # nowhere left to report it; the count keeps it
        pass


class _SafeHandler(logging.Handler):
    """A handler whose write failures are counted and dropped (`_lose`), never raised."""

    def handleError(self, record: logging.LogRecord) -> None:  # stdlib name
        _lose(sys.exc_info()[1])


class _SafeStreamHandler(_SafeHandler, logging.StreamHandler):  # type: ignore[type-arg]
    """The console: stdout on a full disk loses records quietly (stdlib prints a traceback
    per record)."""


class _SafeRotatingHandler(_SafeHandler, logging.handlers.RotatingFileHandler):
    """A log file that cannot be written (read-only, disk full) must not crash the daemon.

    The first failure is reported once on stderr as a `log.write_failed` line; later records
    still reach the console handler.
    """

    _memo: tuple[logging.LogRecord | None, str] = (None, "")
    _kind: tuple[Any, bool] = (None, True)  # (the stream, its path may roll over: a regular file)

    def format(self, record: logging.LogRecord) -> str:
        """The record's JSON line, rendered once: RotatingFileHandler formats every record
        twice (`shouldRollover` measures it, `emit` writes it), and rendering is most of a
        log call's cost (half of the logging time of a backtest, profiled)."""
        last, text = self._memo
        if last is record:
            return text
        text = super().format(record)
        self._memo = (record, text)
        return text

    def write_line(self, text: str) -> None:
        """Write one rendered line as `emit` writes a record's (the same rollover rule, the
        same flush, a failure counted), without a `LogRecord`: `_DirectSink`'s path."""
        msg = text + self.terminator
        self.acquire()
        try:
            if self.stream is None:
                self.stream = self._open()
            # (shouldRollover's rules: only a regular file rolls over, at maxBytes; what the
            # path is, is looked up once per stream opened, not twice a record)
            kind = self._kind
            if kind[0] is not self.stream:
                kind = self._kind = (self.stream, not (os.path.exists(self.baseFilename)
                                                       and not os.path.isfile(self.baseFilename)))
            if self.maxBytes > 0 and kind[1]:
                self.stream.seek(0, 2)
                if self.stream.tell() + len(msg) >= self.maxBytes:
                    self.doRollover()
                    if self.stream is None:
                        self.stream = self._open()
            self.stream.write(msg)
            self.stream.flush()
        except Exception as e:
            _lose(e)
        finally:
            self.release()


class _DirectSink:
    """The last processor of a log set-up whose only handler is the JSON file (a backtest's,
    `setup(direct=True)`): renders the event as that handler's formatter would (the same
    line, byte for byte) and writes it to the handler itself, then drops the event.
    A record through stdlib logging (a `LogRecord`, its copy in `ProcessorFormatter`, the
    formatter, the rollover check formatting it again) cost ~200 us; a backtest logs about
    a thousand records a year. Events below the logger's level are dropped here, after the
    listeners saw them, as the stdlib logger drops them after the chain. Records from stdlib
    loggers (`foreign_pre_chain`) still reach the handler the stdlib way."""

    def __init__(self, handler: _SafeRotatingHandler) -> None:
        self.handler = handler
        self.render = _JSON

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> Any:
        level = _LEVELS.get(method, logging.INFO)
        if logger.isEnabledFor(level):
            self.handler.write_line(str(self.render(logger, method, event)))
        raise structlog.DropEvent


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "msg": logging.INFO,
           "warn": logging.WARNING, "warning": logging.WARNING, "error": logging.ERROR,
           "exception": logging.ERROR, "critical": logging.CRITICAL, "fatal": logging.CRITICAL}


class _SafeBoundLogger(structlog.stdlib.BoundLogger):
    """Every log call returns, whatever the pipeline below does (a listener or a handler
    that raises): the failure is counted and reported once (`_lose`), never raised into
    the trading code that logged. BaseException (a cancel, an interrupt) still passes."""

    def _proxy_to_logger(self, method_name: str, event: str | None = None,
                         *event_args: str, **event_kw: Any) -> Any:
        try:
            return super()._proxy_to_logger(method_name, event, *event_args, **event_kw)
        except Exception as e:
            _lose(e)
            return None


def setup(
    log_dir: Path | str = "logs",
    filename: str = "condorbot.jsonl",
    level: str = "INFO",
    max_bytes: int = 10_000_000,
    backups: int = 5,
    console: bool | None = None,
    direct: bool = False,
) -> Path | None:
    """Configure structlog + stdlib logging. Returns the JSON log path (None if unwritable).
    `direct`: the JSON file only, no console (a backtest's logs), and structlog's events
    written to it straight from the chain (`_DirectSink`: the same lines, at ~60% of the
    cost); a handler added to the root logger later sees stdlib loggers' records only."""
    global _reported
    _reported = False  # a new configuration reports its first lost record again
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        try:
            h.close()
        except OSError:  # a broken log file (disk full) must not stop a re-configuration
            pass
    root.setLevel(level)
    path = Path(log_dir) / filename
    out: Path | None = path
    fh: _SafeRotatingHandler | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = _SafeRotatingHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        fh.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processor=_JSON,
                foreign_pre_chain=_SHARED,
            )
        )
        root.addHandler(fh)
    except OSError as e:
        sys.stderr.write(f'{{"event": "log.open_failed", "level": "error", "path": "{path}", '
                         f'"error": "{e.strerror}"}}\n')
        out = None
    if not direct:
        tty = sys.stdout.isatty() if console is None else console
        ch = _SafeStreamHandler(sys.stdout)
        ch.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processor=structlog.dev.ConsoleRenderer(colors=tty)
                if tty
                else _JSON,
                foreign_pre_chain=_SHARED,
            )
        )
        root.addHandler(ch)
    # apscheduler warns "job skipped: maximum number of running instances" when a tick runs
    # long; that is by design (max_instances=1, coalesce) and not a dotted event
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    # apprise says "Notifying 1 service(s)." at INFO for every alert; bot.alerts logs its own
    # alert.sent / alert.failed. Its warnings (why a service refused) are kept.
    logging.getLogger("apprise").setLevel(logging.WARNING)
    last: Any = (_DirectSink(fh) if direct and fh is not None
                 else structlog.stdlib.ProcessorFormatter.wrap_for_formatter)
    structlog.configure(
        processors=[*_SHARED, _tee, structlog.processors.format_exc_info, last],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=_SafeBoundLogger,
        cache_logger_on_first_use=False,
    )
    return out


def get(name: str = "condorbot", **bind: Any) -> Any:
    """A lazy logger: safe to create at import time, before `setup` runs."""
    return structlog.get_logger(name, **bind)
