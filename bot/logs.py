"""structlog: one JSON object per line in logs/condorbot.jsonl (size-rotated), readable console.

Every record has `timestamp` (UTC, ISO 8601), `level` and `event` (a dotted noun such as
`campaign.entered`) plus the fields of that event. Get a logger with `get(__name__)`.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
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


class _SafeRotatingHandler(logging.handlers.RotatingFileHandler):
    """A log file that cannot be written (read-only, disk full) must not crash the daemon.

    The first failure is reported once on stderr as a `log.write_failed` line; later records
    still reach the console handler.
    """

    failed = False
    _memo: tuple[logging.LogRecord | None, str] = (None, "")

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

    def handleError(self, record: logging.LogRecord) -> None:  # stdlib name
        if not self.failed:
            self.failed = True
            err = sys.exc_info()[1]
            line = {"event": "log.write_failed", "level": "error", "error": str(err)}
            sys.stderr.write(json.dumps(line) + "\n")  # json: the error text may hold quotes


def setup(
    log_dir: Path | str = "logs",
    filename: str = "condorbot.jsonl",
    level: str = "INFO",
    max_bytes: int = 10_000_000,
    backups: int = 5,
    console: bool | None = None,
) -> Path | None:
    """Configure structlog + stdlib logging. Returns the JSON log path (None if unwritable)."""
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = _SafeRotatingHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        fh.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processor=structlog.processors.JSONRenderer(default=str),
                foreign_pre_chain=_SHARED,
            )
        )
        root.addHandler(fh)
    except OSError as e:
        sys.stderr.write(f'{{"event": "log.open_failed", "level": "error", "path": "{path}", '
                         f'"error": "{e.strerror}"}}\n')
        out = None
    tty = sys.stdout.isatty() if console is None else console
    ch = logging.StreamHandler(sys.stdout)
    ch.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=structlog.dev.ConsoleRenderer(colors=tty)
            if tty
            else structlog.processors.JSONRenderer(default=str),
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
    structlog.configure(
        processors=[
            *_SHARED,
            _tee,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return out


def get(name: str = "condorbot", **bind: Any) -> Any:
    """A lazy logger: safe to create at import time, before `setup` runs."""
    return structlog.get_logger(name, **bind)
