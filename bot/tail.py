"""`condorbot tail`: the JSON log as readable lines.

  condorbot tail                         every record of logs/condorbot.jsonl (config's log dir)
  condorbot tail -n 20 --follow          the last 20, then new records as they are written
  condorbot tail --event 'order.*' --event risk.rejected --campaign C0002-20260126
  condorbot tail --file bt/logs/condorbot.jsonl

A line: market time (the sim's clock; else the wall timestamp), level, event, campaign, then
the other fields as key=value; a traceback follows indented. `--event` takes shell patterns
(`order.*`); a bare word also matches its dotted family (`hedge` = `hedge.*`). `--campaign`
matches the campaign field and keys that start with the id. `--follow` keeps reading
appended records and reopens the file when it is rotated (new inode) or truncated.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

SKIP = {"timestamp", "level", "event", "market_time", "campaign", "exception"}
LEVELS = {"debug": "DEBUG", "info": "INFO ", "warning": "WARN ", "error": "ERROR",
          "critical": "CRIT "}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("tail", help="the JSON log as readable lines (filter, follow)")
    p.add_argument("--config", default="config.yaml", help="config.yaml (for the log path)")
    p.add_argument("--file", help="log file (default: the config's log dir and file)")
    p.add_argument("--event", action="append", default=[], metavar="PATTERN",
                   help="event name pattern, e.g. 'order.*' (repeatable)")
    p.add_argument("--campaign", help="only records of this campaign id")
    p.add_argument("-n", "--lines", type=int, help="only the last N matching records")
    p.add_argument("-f", "--follow", action="store_true", help="keep reading appended records")
    p.set_defaults(handler=main)


def matcher(events: list[str], campaign: str | None) -> Callable[[dict[str, Any]], bool]:
    pats = [p for e in events for p in e.split(",") if p]

    def ok(rec: dict[str, Any]) -> bool:
        name = str(rec.get("event", ""))
        if pats and not any(fnmatch.fnmatchcase(name, p) or name.startswith(p + ".")
                            for p in pats):
            return False
        if campaign:
            cid = str(rec.get("campaign") or rec.get("campaign_id") or "")
            key = str(rec.get("key") or "")
            if cid != campaign and not key.startswith(campaign + ":"):
                return False
        return True

    return ok


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), default=str)
    s = str(v)
    return json.dumps(s) if (" " in s or not s) else s


def render(rec: dict[str, Any]) -> str:
    when = str(rec.get("market_time") or rec.get("timestamp") or "")
    when = when.replace("T", " ").replace("+00:00", "Z")[:20]
    level = LEVELS.get(str(rec.get("level", "")).lower(), str(rec.get("level", "?")).upper())
    parts = [f"{when:<20}", level, f"{rec.get('event', '?'):<22}"]
    if rec.get("campaign"):
        parts.append(str(rec["campaign"]))
    parts += [f"{k}={_value(v)}" for k, v in rec.items() if k not in SKIP and v is not None]
    line = " ".join(parts)
    if rec.get("exception"):
        line += "\n" + "\n".join("    " + x for x in str(rec["exception"]).rstrip().splitlines())
    return line


def parse(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line:
        return None
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return {"event": "(not json)", "level": "?", "text": line}
    return rec if isinstance(rec, dict) else {"event": "(not json)", "level": "?", "text": line}


def follow(path: Path, start: int, sleep: Callable[[float], Any] = time.sleep,
           poll: float = 0.5, stop: Callable[[], bool] = lambda: False) -> Iterator[str]:
    """Lines appended to `path` from byte `start`; survives rotation and truncation."""
    f: BinaryIO | None = None
    ino = None
    pos = start
    buf = b""

    def lines(chunk: bytes) -> list[str]:
        nonlocal buf
        buf += chunk
        *done, buf = buf.split(b"\n")
        return [x.decode("utf-8", "replace") for x in done]

    while not stop():
        if f is None:
            try:
                f = open(path, "rb")
                ino = os.fstat(f.fileno()).st_ino
                f.seek(pos)
            except FileNotFoundError:
                f = None
        if f is not None:
            chunk = f.read()
            if chunk:
                yield from lines(chunk)
                continue
            try:
                st = os.stat(path)
            except FileNotFoundError:
                st = None
            if st is not None and (st.st_ino != ino or st.st_size < f.tell()):
                # rotated (a new file at the path) or truncated: start over on the new one
                f.close()
                f, pos, buf = None, 0, b""
                continue
        sleep(poll)
    if f is not None:
        f.close()


def main(args: argparse.Namespace, out: TextIO | None = None,
         sleep: Callable[[float], Any] = time.sleep, stop: Callable[[], bool] = lambda: False
         ) -> int:
    out = out or sys.stdout
    if args.file:
        path = Path(args.file)
    else:
        from bot import config as cfg

        try:
            s = cfg.load(args.config) if Path(args.config).exists() else cfg.Settings()
        except cfg.ConfigError as e:
            print(f"condorbot: config error: {e}", file=sys.stderr)
            return 2
        path = Path(s.log.dir) / s.log.file
    ok = matcher(args.event, args.campaign)
    if not path.exists() and not args.follow:
        print(f"condorbot: no log file at {path}", file=sys.stderr)
        return 1
    shown: deque[str] | list[str] = deque(maxlen=args.lines) if args.lines else []
    end = 0
    if path.exists():
        with open(path, "rb") as f:
            data = f.read()
        end = data.rfind(b"\n") + 1  # a half-written last line is read again when following
        for raw in data[:end].split(b"\n"):
            rec = parse(raw.decode("utf-8", "replace"))
            if rec is not None and ok(rec):
                shown.append(render(rec))
    try:
        for text in shown:
            print(text, file=out)
        out.flush()
        if args.follow:
            for line in follow(path, end, sleep=sleep, stop=stop):
                rec = parse(line)
                if rec is not None and ok(rec):
                    print(render(rec), file=out)
                    out.flush()
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0
    return 0
