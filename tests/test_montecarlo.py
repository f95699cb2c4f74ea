"""Monte Carlo on Dask: a real `dask scheduler` + two `dask worker` processes on 127.0.0.1
give the same per-seed results as the local run, and survive losing a worker mid-run; a
failing task is retried once and reported with its seed; the distribution report's
percentiles are those of the paths."""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ["--scenario", "chop", "--days", "5", "--seed", "11", "--tick", "1800", "--no-plain",
       "--config", "none.yaml"]


class Lines:
    """A subprocess whose stderr is read line by line until a pattern shows, with a deadline.
    (Raw reads: a buffered readline() may hold the awaited line while select() waits.)"""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.p = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stderr, selectors.EVENT_READ)
        self.lines: list[str] = []
        self._buf = b""
        self._next = 0  # index of the first line not yet matched

    def _more(self, timeout: float) -> bool:
        if not self.sel.select(timeout):
            return False
        chunk = os.read(self.p.stderr.fileno(), 65536)
        if not chunk:
            return False
        *full, self._buf = (self._buf + chunk).split(b"\n")
        self.lines += [ln.decode(errors="replace") for ln in full]
        return True

    def until(self, pattern: str, timeout: float = 60.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            while self._next < len(self.lines):
                m = re.search(pattern, self.lines[self._next])
                self._next += 1
                if m:
                    return m
            left = deadline - time.monotonic()
            if left <= 0 or not self._more(left):
                raise AssertionError(f"{pattern!r} not seen in {timeout}s; "
                                     f"last: {self.lines[-8:]}")

    def rest(self) -> list[str]:
        """Every line, once the process has ended."""
        while self._more(10.0):
            pass
        return self.lines

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def dask(*args: str, cwd: Path) -> Lines:
    return Lines([sys.executable, "-m", "dask", *args], cwd)


def per_seed(out: Path) -> dict[int, str]:
    doc = json.loads((out / "montecarlo.json").read_text())
    return {t["seed"]: json.dumps([t["summary"], t["campaigns"]]) for t in doc["tasks"]}


def test_a_real_cluster_gives_the_local_results_and_survives_a_dead_worker(tmp_path):
    procs: list[Lines] = []
    try:
        sched = dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--dashboard-address", "127.0.0.1:0",
                     cwd=tmp_path)
        procs.append(sched)
        addr = sched.until(r"Scheduler at:\s+(tcp://\S+)").group(1)
        workers: dict[str, Lines] = {}
        for _ in range(2):
            w = dask("worker", addr, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads",
                     "1", "--no-nanny", "--no-dashboard", cwd=tmp_path)
            procs.append(w)
            workers[w.until(r"Start worker at:\s+(tcp://\S+)").group(1)] = w
            w.until(r"Registered to:")
        # the local run (a LocalCluster) while the cluster run goes: same seeds, same results
        local = Lines([sys.executable, "-m", "bot", "backtest", *RUN, "--paths", "4",
                       "--out", str(tmp_path / "local")], ROOT)
        procs.append(local)
        remote = Lines([sys.executable, "-m", "bot", "backtest", *RUN, "--paths", "4",
                        "--scheduler", addr, "--out", str(tmp_path / "remote")], ROOT)
        procs.append(remote)
        first = remote.until(r"paths: 1 done, 0 failed, 3 remaining .* on (tcp://\S+),")
        victim = workers[first.group(1)]
        victim.kill()  # it has taken the next task by now: the scheduler must re-run it
        assert remote.p.wait(120) == 0, remote.rest()[-10:]
        assert local.p.wait(120) == 0, local.rest()[-10:]
        assert victim.p.returncode != 0
    finally:
        for p in procs:
            p.kill()
    done = [ln for ln in remote.rest() if "paths:" in ln]
    assert any("4 done, 0 failed, 0 remaining" in ln for ln in done), done
    got, want = per_seed(tmp_path / "remote"), per_seed(tmp_path / "local")
    assert sorted(got) == [11, 12, 13, 14]
    assert got == want
    assert (tmp_path / "remote" / "montecarlo.html").exists()


ATTEMPTS: dict[int, int] = {}


def flaky(base, point, seed, kw, plain):  # a task that always fails for seed 2
    ATTEMPTS[seed] = ATTEMPTS.get(seed, 0) + 1
    if seed == 2:
        raise RuntimeError("boom on seed 2")
    return {"seed": seed, "point": point}


def test_a_failing_task_is_retried_once_and_reported_with_its_seed():
    import io

    from distributed import Client, LocalCluster

    from bot.montecarlo import run_tasks

    ATTEMPTS.clear()
    stream = io.StringIO()
    quiet = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}  # 8787 may be taken
    with LocalCluster(n_workers=1, processes=False, threads_per_worker=1,
                      dashboard_address=None, scheduler_kwargs=quiet) as cluster, \
            Client(cluster) as client:
        results, failed = run_tasks(client, flaky, [({}, 1), ({}, 2), ({}, 3)],
                                    (None, {}, False), stream)
    assert [r["seed"] for r in results] == [1, 3]
    assert [(f["seed"], f["error"]) for f in failed] == [(2, "RuntimeError: boom on seed 2")]
    assert ATTEMPTS == {1: 1, 2: 2, 3: 1}
    text = stream.getvalue()
    assert "seed 2 FAILED after retry" in text
    assert text.splitlines()[-1].startswith("paths: 2 done, 1 failed, 0 remaining")


def test_bad_path_count_is_a_clear_error(tmp_path, capsys):
    from bot.cli import main

    assert main(["backtest", *RUN, "--paths", "0", "--out", str(tmp_path)]) == 2
    assert "--paths wants a count of 1 or more" in capsys.readouterr().err


def _result(seed: int, pnl: float, point: dict, stopped: int, steps: list[int]) -> dict:
    camp = {"campaigns": len(steps), "campaigns_stopped": stopped,
            "worst_campaign": {"total": -pnl / 2}, "peak_margin": {"usd": 1000 + pnl},
            "campaign_pnl": {f"C{i}": -pnl / 2 for i in range(len(steps))}}
    comp = {k: {"pnl": pnl * f, "max_drawdown": -abs(pnl) / 1e5, "max_drawdown_usd": -abs(pnl),
                "capital_at_risk": 500.0} for k, f in (("method", 1), ("cndr", 2),
                                                       ("buy_and_hold", 3))}
    return {"point": point, "seed": seed,
            "summary": {"run": {}, "comparison": comp, "method": camp,
                        "cndr": {"worst_cycle": -pnl}},
            "campaigns": {"method": {f"C{i}": {"max_step": s, "stopped": None,
                                               "loss_cap_refusals": 0}
                                     for i, s in enumerate(steps)}},
            "limits": {"max_steps": 3, "max_campaign_loss_pct": 0.01, "initial_cash": 1e5},
            "equity": {"date": ["d1", "d2"], "method": [1e5, 1e5 + pnl],
                       "cndr": [1e5, 1e5], "buy_and_hold": [1e5, 1e5 - pnl]},
            "timing": {}}


def test_report_percentiles_probabilities_and_sweep_rows(tmp_path):
    from bot import montecarlo_report as mr

    pnls = [-3000.0, -100.0, 200.0, 900.0, 1500.0, 4000.0]
    results = [_result(i, p, {"strategy.max_steps": i % 2}, i % 3 == 0, [0, 3, 1][: 1 + i % 3])
               for i, p in enumerate(pnls)]
    html = mr.write(tmp_path, {"grid": ["strategy.max_steps=0,1"], "paths": 3, "tasks": 6,
                               "failed": 0, "first_seed": 0}, results, [])
    doc = mr.load(tmp_path)
    m = doc["columns"]["method"]
    for q in (5, 25, 50, 75, 95):
        assert m["pnl"][f"p{q}"] == pytest.approx(np.percentile(pnls, q))
        assert doc["columns"]["cndr"]["worst_campaign"][f"p{q}"] == pytest.approx(
            np.percentile([-p for p in pnls], q))
    assert doc["columns"]["buy_and_hold"]["worst_campaign"] == "n/a"
    assert doc["columns"]["buy_and_hold"]["probabilities"]["stopped"] == "n/a"
    camps = sum(len([0, 3, 1][: 1 + i % 3]) for i in range(6))
    deep = sum(1 for i in range(6) for s in [0, 3, 1][: 1 + i % 3] if s >= 3)
    assert m["probabilities"]["reached_max_steps"]["per_campaign"] == round(deep / camps, 4)
    assert m["probabilities"]["stopped"]["per_path"] == round(2 / 6, 4)
    # a loss of pnl/2 per campaign breaches a 1% x 100k cap when pnl > 2000
    assert m["probabilities"]["loss_cap_breached"]["per_path"] == round(1 / 6, 4)
    pts = {p["point"]: p for p in doc["points"]}
    assert set(pts) == {"strategy.max_steps=0", "strategy.max_steps=1"}
    even = [p for i, p in enumerate(pnls) if i % 2 == 0]
    assert pts["strategy.max_steps=0"]["columns"]["method"]["pnl"]["p50"] == pytest.approx(
        np.median(even))
    page = html.read_text()
    assert "class='sortable'" in page and "montecarlo_fan.png" in page
    assert (tmp_path / "montecarlo_fan.png").stat().st_size > 0
    for r in results:  # with max_steps 0 every campaign "reaches" it: not a probability
        r["limits"]["max_steps"] = 0
    assert mr.probabilities(results, "method")["reached_max_steps"] == "n/a"


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no headless Chromium at {CHROMIUM}")
def test_sweep_table_sorts_by_a_clicked_column_in_headless_chromium(tmp_path):
    pw = pytest.importorskip("playwright.sync_api", reason="playwright (python) not installed")
    from bot import montecarlo_report as mr

    pnls = [500.0, -2500.0, 100.0, 900.0, -300.0, 4000.0, 50.0, 10.0, -20.0]
    results = [_result(i, p, {"strategy.max_steps": i % 3}, 0, [1]) for i, p in enumerate(pnls)]
    mr.write(tmp_path, {"grid": ["strategy.max_steps=0,1,2"], "paths": 3, "tasks": 9,
                        "failed": 0, "first_seed": 0}, results, [])
    medians = {f"strategy.max_steps={k}": np.median(pnls[k::3]) for k in range(3)}
    with pw.sync_playwright() as play:
        browser = play.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page()
        page.goto((tmp_path / "montecarlo.html").as_uri())
        header = page.locator("table.sortable th", has_text="P&L p50")
        first_col = "table.sortable tbody tr td:first-child"
        header.click()
        up = page.locator(first_col).all_inner_texts()
        header.click()
        down = page.locator(first_col).all_inner_texts()
        browser.close()
    assert up == sorted(medians, key=medians.get)
    assert down == up[::-1]


def test_every_paths_daily_equity_is_written(tmp_path):
    import csv

    from bot import montecarlo_report as mr

    results = [_result(i, p, {}, 0, [1]) for i, p in enumerate([100.0, -50.0])]
    mr.write(tmp_path, {"grid": [], "paths": 2, "tasks": 2, "failed": 0, "first_seed": 0},
             results, [])
    with open(tmp_path / "equity_paths.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["seed"], r["date"], float(r["method"])) for r in rows] == [
        (str(r["seed"]), d, v) for r in results
        for d, v in zip(r["equity"]["date"], r["equity"]["method"])]
