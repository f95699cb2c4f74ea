"""The daemon as an operator meets it: a real process, controlled through the CLI."""

import json
import subprocess
import sys

import yaml

from tests.procs import Proc


def _config(tmp_path, **sim):
    cfg = {"heartbeat_seconds": 1, "sim": {"speed": 600, **sim}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    return ["--config", "config.yaml"]


def _cli(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "bot", *args, "--config", "config.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_pause_then_stop(tmp_path):
    d = Proc(["run", *_config(tmp_path)], tmp_path)
    try:
        d.until(lambda e: e["event"] == "daemon.started", 60)
        assert _cli(tmp_path, "pause").returncode == 0
        paused = d.until(lambda e: e["event"] == "control.paused", 5)
        assert paused["previous"] == "run"
        d.until(lambda e: e["event"] == "heartbeat" and e["mode"] == "pause", 5)
        d.until(lambda e: e["event"] == "heartbeat", 5)
        after = d.seen[d.seen.index(paused):]
        assert not [e for e in after if e["event"] == "order.submitted"]
        assert _cli(tmp_path, "stop").returncode == 0
        assert d.p.wait(timeout=10) == 0
        assert (tmp_path / "logs" / "condorbot.jsonl").exists()
        status = _cli(tmp_path, "status")
        assert status.returncode == 0
        lines = status.stdout.splitlines()
        assert lines[1].split()[2] == "control"  # "trading state  control  strategy ..."
        assert lines[3].split()[1] == "pause", status.stdout
    finally:
        d.kill()


def test_sigterm_behaves_like_stop(tmp_path):
    d = Proc(["run", *_config(tmp_path)], tmp_path)
    try:
        d.until(lambda e: e["event"] == "daemon.started", 60)
        d.p.terminate()
        assert d.p.wait(timeout=10) == 0
        rest = [json.loads(x) for x in d.p.stdout.read().splitlines() if x.startswith("{")]
        assert "daemon.stopped" in [e["event"] for e in d.seen + rest]
    finally:
        d.kill()


def test_run_enters_a_condor(tmp_path):
    d = Proc(["run", *_config(tmp_path, speed=60)], tmp_path)
    try:
        ev = d.until(lambda e: e["event"] == "campaign.entered", 60)
        assert len(ev["strikes"]) == 4 and ev["qty"] >= 1 and ev["credit"] > 0 and ev["expiry"]
    finally:
        d.kill()
