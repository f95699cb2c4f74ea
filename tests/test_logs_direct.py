"""A backtest's log set-up (`logs.setup(direct=True)`): structlog events written straight to
the JSON file must be the lines the stdlib route writes, roll over at the same size, and
count a failed write instead of raising."""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import date

import pytest

from bot import logs


def _lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _log_sample(seen: list[dict]) -> None:
    logs.add_listener(seen.append)
    try:
        log = logs.get("t")
        log.info("order.filled", key="c1:open", qty=3, price=-12.35, day=date(2026, 3, 20),
                 legs=[{"strike": 5600.0, "right": "P"}], note='quote "here"', none=None)
        log.debug("below.level", x=1)  # the listeners see it; the file does not
        log.warning("risk.refused", why="margin")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("tick.failed", error="boom")
    finally:
        logs.remove_listener(seen.append)


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_direct_lines_are_the_stdlib_lines(tmp_path, level):
    got = {}
    for direct in (False, True):
        path = logs.setup(tmp_path / str(direct), "x.jsonl", level, console=False, direct=direct)
        assert path is not None
        seen: list[dict] = []
        _log_sample(seen)
        lines = _lines(path)
        for x in lines:
            assert x.pop("timestamp")  # the wall clock: differs between the two runs
        got[direct] = (lines, [e["event"] for e in seen])
    assert got[True] == got[False]
    lines, seen = got[True]
    events = [x["event"] for x in lines]
    assert seen == ["order.filled", "below.level", "risk.refused", "tick.failed"]
    assert events == (seen if level == "DEBUG" else
                      ["order.filled", "risk.refused", "tick.failed"])
    assert lines[0]["day"] == "2026-03-20" and lines[0]["note"] == 'quote "here"'
    assert "ValueError: boom" in lines[-1]["exception"]
    # and byte for byte, but for the time stamp
    raw = [[re.sub(r'"timestamp": "[^"]*"', '"timestamp": ""', x)
            for x in (tmp_path / str(d) / "x.jsonl").read_text().splitlines()]
           for d in (False, True)]
    assert raw[0] == raw[1]


def test_direct_sink_rolls_over_as_the_handler_does(tmp_path):
    sizes = {}
    for direct in (False, True):
        d = tmp_path / str(direct)
        logs.setup(d, "x.jsonl", console=False, direct=direct, max_bytes=600, backups=2)
        for i in range(12):
            logs.get("t").info("roll.test", i=i, pad="x" * 60)
        sizes[direct] = sorted((p.name, len(_lines(p))) for p in d.iterdir())
    assert sizes[True] == sizes[False]
    assert [n for n, _ in sizes[True]] == ["x.jsonl", "x.jsonl.1", "x.jsonl.2"]


def test_a_stdlib_logger_still_reaches_the_direct_file(tmp_path):
    path = logs.setup(tmp_path, "x.jsonl", console=False, direct=True)
    logs.get("t").info("first.event")
    logging.getLogger("some.library").warning("plain %s", "text")
    logs.get("t").info("last.event")
    assert path is not None
    assert [x["event"] for x in _lines(path)] == ["first.event", "plain text", "last.event"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_direct_sink_counts_a_failed_write_and_goes_on(tmp_path, capsys):
    logs.setup(tmp_path, "x.jsonl", console=False, direct=True)
    handler = next(h for h in logging.getLogger().handlers
                   if isinstance(h, logs._SafeRotatingHandler))
    handler.stream.close()
    handler.stream = open("/dev/full", "w")
    before = logs.write_failures()
    for _ in range(3):
        assert logs.get("t").info("disk.test") is None  # never raises into the caller
    assert logs.write_failures() == before + 3
    assert capsys.readouterr().err.count("log.write_failed") == 1
