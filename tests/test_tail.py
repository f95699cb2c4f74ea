"""`condorbot tail`: rendering, filters, and following a file through rotation (no sleeping)."""

from __future__ import annotations

import argparse
import io
import json
import os

from bot import tail

EVENTS = [
    {"event": "daemon.started", "level": "info", "market_time": "2026-01-05T14:30:00+00:00"},
    {"event": "order.submitted", "level": "info", "key": "C0001-20260105:open:0:0",
     "campaign": "C0001-20260105", "limit": -11.95, "market_time": "2026-01-05T14:45:00+00:00"},
    {"event": "order.walked", "level": "info", "key": "C0001-20260105:open:0:0", "step": 1,
     "market_time": "2026-01-05T14:45:10+00:00"},
    {"event": "campaign.entered", "level": "info", "campaign": "C0001-20260105",
     "strikes": [5480.0, 5530.0, 6350.0, 6400.0], "market_time": "2026-01-05T14:45:30+00:00"},
    {"event": "risk.rejected", "level": "warning", "key": "C0002-20260126:open:0:0",
     "campaign": "C0002-20260126", "code": "margin_cap",
     "market_time": "2026-01-26T15:00:00+00:00"},
    {"event": "tick.failed", "level": "error", "error": "boom",
     "exception": "Traceback (most recent call last):\nValueError: boom",
     "market_time": "2026-01-27T15:00:00+00:00"},
]


def _args(path, **kw):
    base = {"file": str(path), "config": "none.yaml", "event": [], "campaign": None,
            "lines": None, "follow": False}
    return argparse.Namespace(**{**base, **kw})


def _write(path, events, mode="w"):
    with open(path, mode) as f:
        for e in events:
            f.write(json.dumps(e) + "\n")


def _run(path, **kw):
    out = io.StringIO()
    assert tail.main(_args(path, **kw), out=out) == 0
    return out.getvalue().splitlines()


def test_renders_every_record_readably(tmp_path):
    p = tmp_path / "c.jsonl"
    _write(p, EVENTS)
    lines = _run(p)
    assert len(lines) == len(EVENTS) + 2  # the traceback's lines, indented under its record
    assert lines[1].startswith("2026-01-05 14:45:00Z INFO  order.submitted")
    assert "C0001-20260105 key=C0001-20260105:open:0:0 limit=-11.95" in lines[1]
    assert "strikes=[5480.0,5530.0,6350.0,6400.0]" in lines[3]
    assert "WARN " in lines[4] and "ERROR tick.failed" in lines[5]
    assert lines[6:] == ["    Traceback (most recent call last):", "    ValueError: boom"]


def test_event_patterns_and_families(tmp_path):
    p = tmp_path / "c.jsonl"
    _write(p, EVENTS)
    assert [ln.split()[3] for ln in _run(p, event=["order.*"])] == ["order.submitted",
                                                                    "order.walked"]
    assert [ln.split()[3] for ln in _run(p, event=["campaign"])] == ["campaign.entered"]
    assert len(_run(p, event=["risk.rejected,daemon.started"])) == 2
    assert _run(p, event=["nothing.like.this"]) == []


def test_campaign_filter_matches_field_and_key_prefix(tmp_path):
    p = tmp_path / "c.jsonl"
    _write(p, EVENTS)
    got = [ln.split()[3] for ln in _run(p, campaign="C0001-20260105")]
    assert got == ["order.submitted", "order.walked", "campaign.entered"]
    assert [ln.split()[3] for ln in _run(p, campaign="C0002-20260126")] == ["risk.rejected"]


def test_last_n_and_bad_lines(tmp_path):
    p = tmp_path / "c.jsonl"
    _write(p, EVENTS[:3])
    with open(p, "a") as f:
        f.write("not json at all\n")
    lines = _run(p, lines=2)
    assert len(lines) == 2 and "not json at all" in lines[1]


def test_missing_file_is_an_error(tmp_path, capsys):
    assert tail.main(_args(tmp_path / "none.jsonl"), out=io.StringIO()) == 1
    assert "no log file" in capsys.readouterr().err


def test_follow_reads_appends_and_survives_rotation(tmp_path):
    p = tmp_path / "c.jsonl"
    _write(p, EVENTS[:1])
    script = [
        lambda: _write(p, EVENTS[1:2], "a"),
        lambda: p.write_text(p.read_text() + '{"event": "half'),  # a line still being written
        lambda: p.write_text(p.read_text()
                             + '.done", "level": "info", "market_time": "2026-01-05T15:00Z"}\n'),
        lambda: (os.rename(p, tmp_path / "c.jsonl.1"), _write(p, EVENTS[3:4])),  # rotation
        lambda: _write(p, EVENTS[4:5], "a"),
        lambda: p.write_text(json.dumps(EVENTS[5]) + "\n"),  # truncated and rewritten
    ]
    calls = []

    def fake_sleep(_):
        calls.append(1)
        if script:
            script.pop(0)()

    out = io.StringIO()
    code = tail.main(_args(p, follow=True), out=out, sleep=fake_sleep,
                     stop=lambda: not script and len(calls) > 8)
    assert code == 0
    names = [ln.split()[3] for ln in out.getvalue().splitlines() if not ln.startswith("    ")]
    assert names == ["daemon.started", "order.submitted", "half.done", "campaign.entered",
                     "risk.rejected", "tick.failed"]
