"""Monte Carlo paths and parameter sweeps on Dask: every (grid point, seed) is one task.

  condorbot backtest --scenario chop --days 252 --paths 200 --out mc/          (LocalCluster)
  condorbot backtest --paths 200 --sweep strategy.max_steps=0,3 --scheduler tcp://h:8786 ...

A task (`run_path`) runs the ordinary single-path backtest (`bot.backtest.run_backtest`: the
method, optionally the plain condor, CNDR and buy-and-hold over one seeded market) in a
scratch directory on the worker and sends back plain data: the summary, the daily equity of
every column and per-campaign facts read from its trades (deepest roll step, stop reason,
loss-cap refusals). Logs stay on the worker and are deleted with the scratch directory.

The cluster is a `LocalCluster` of one single-threaded worker process per core, or an
existing one (`--scheduler tcp://HOST:PORT`, workers with the project installed). Tasks are
submitted with `retries=1`: a task that raises is run once more, and if it fails again it is
reported with its seed and point while the other tasks go on. A worker that dies mid-task
has its task re-run elsewhere by the scheduler. Every task prints one progress line (done,
failed, remaining) on stderr.

Determinism: a task's result, apart from its `timing`, depends only on (settings, point,
seed): the same seed gives byte-identical `summary`/`equity`/`campaigns` JSON locally and on
a cluster. A run inside a worker holds a process lock (`isolated_logs` re-points the
process-wide logging), so a worker started with several threads runs its tasks one by one.
"""

from __future__ import annotations

import csv
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from bot import config as cfg

TIMING = ("wall_seconds", "cpu_seconds", "steps_per_second")
STOPS = ("steps_exhausted", "unfunded_roll", "roll_open_failed")  # strategies.tvm.STOPS
LOSS_CAP_CODE = "campaign_max_loss"  # bot.risk's refusal of a roll past the campaign loss cap
_RUN_LOCK = threading.Lock()


# --- one task ----------------------------------------------------------------------------------
def campaign_facts(trades: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Per campaign, from a trades.csv: deepest roll step ordered, how it was stopped (the
    close order's trigger when it is one of the strategy's stops), loss-cap refusals."""
    out: dict[str, dict[str, Any]] = {}
    for t in trades:
        cid = t.get("campaign") or ""
        if not cid:
            continue
        c = out.setdefault(cid, {"max_step": 0, "stopped": None, "loss_cap_refusals": 0})
        if t.get("step", "") not in ("", None):
            c["max_step"] = max(c["max_step"], int(float(t["step"])))
        if t["kind"] == "order" and t.get("reason") in STOPS:
            c["stopped"] = t["reason"]
        if t["kind"] == "risk_reject" and t.get("reason") == LOSS_CAP_CODE:
            c["loss_cap_refusals"] += 1
    return out


def _read_equity(path: Path) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                cols.setdefault(k, []).append(v if k == "date" else (float(v) if v else None))
    return cols


def run_path(base: cfg.Settings, point: dict[str, Any], seed: int, kw: dict[str, Any],
             plain: bool) -> dict[str, Any]:
    """One (point, seed) backtest in a scratch directory; its results as plain data."""
    from bot.backtest import backtest_settings, read_trades, run_backtest

    with _RUN_LOCK, tempfile.TemporaryDirectory(prefix="condorbot-mc-") as tmp:
        out = Path(tmp)
        s = backtest_settings(base, out, seed=seed, overrides=point, **kw)
        summary = run_backtest(base, out, seed=seed, overrides=point or None, plain=plain,
                               parallel=False, report=False, **kw)
        equity = _read_equity(out / "equity.csv")
        camps = {"method": campaign_facts(read_trades(out / "trades.csv"))}
        if plain:
            camps["plain_condor"] = campaign_facts(read_trades(out / "trades_plain_condor.csv"))
    from bot.backtest import _clean

    summary = _clean(summary)
    timing = {k: summary["run"].pop(k, None) for k in TIMING}
    return {"point": point, "seed": seed, "summary": summary, "equity": equity,
            "campaigns": camps,
            "limits": {"max_steps": s.strategy.max_steps,
                       "max_campaign_loss_pct": s.risk.max_campaign_loss_pct,
                       "initial_cash": s.sim.initial_cash},
            "timing": {**timing, "host": socket.gethostname(), "pid": os.getpid()}}


# --- the plan ------------------------------------------------------------------------------------
def point_name(point: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items()) or "base"


def plan(base: cfg.Settings, specs: list[str], kw: dict[str, Any], paths: int,
         seed: int | None) -> list[tuple[dict[str, Any], int]]:
    """Every (point, seed) of the run, grid-major (`kw`: the backtest's keywords but the
    seed). Bad keys or values fail here, before any
    worker starts (ConfigError); so does a path count below 1 (ValueError)."""
    from bot.backtest import backtest_settings
    from bot.backtest_cli import grid

    if paths < 1:
        raise ValueError(f"--paths wants a count of 1 or more; got {paths}")
    points = grid(specs) if specs else [{}]
    first = base.sim.seed if seed is None else seed
    scratch = Path(tempfile.gettempdir()) / "condorbot-plan"
    for p in points:
        backtest_settings(base, scratch, seed=first, overrides=p, **kw)
    return [(p, first + i) for p in points for i in range(paths)]


# --- the cluster ---------------------------------------------------------------------------------
def local_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def connect(scheduler: str | None, workers: int | None = None,
            timeout: float = 30.0) -> tuple[Any, Any]:
    """(client, cluster): a client of `scheduler`, or of a new LocalCluster (cluster is then
    returned so the caller closes it) of `workers` single-threaded processes."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=timeout), None
        except (OSError, TimeoutError) as e:
            raise ValueError(f"no Dask scheduler at {scheduler}: {e}") from e
    # no dashboard; the scheduler's HTTP endpoint (health, metrics) on a free loopback port
    # rather than 8787, which another cluster on the machine may hold
    cluster = LocalCluster(n_workers=workers or local_workers(), processes=True,
                           threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                           scheduler_kwargs={"dashboard": False,
                                             "dashboard_address": "127.0.0.1:0"},
                           silence_logs=logging.WARNING)
    return Client(cluster), cluster


def run_tasks(client: Any, fn: Callable[..., dict[str, Any]],
              tasks: Iterable[tuple[dict[str, Any], int]], args: tuple,
              stream: TextIO | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Submit fn(base..., point, seed) per task (retries=1); return (results in plan order,
    failures). A progress line per finished task on `stream` (stderr; on a terminal the
    line is rewritten in place)."""
    from distributed import as_completed

    stream = stream or sys.stderr
    tty = bool(getattr(stream, "isatty", lambda: False)())
    tasks = list(tasks)
    base, kw, plain = args
    tag = uuid.uuid4().hex[:8]
    futs = {}
    for i, (point, seed) in enumerate(tasks):
        key = f"path-{tag}-{i}-seed{seed}"
        f = client.submit(fn, base, point, seed, kw, plain, key=key, retries=1, pure=False)
        futs[f] = i
    results: dict[int, dict[str, Any]] = {}
    failed: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for f in as_completed(list(futs)):
        i = futs.pop(f)
        point, seed = tasks[i]
        where = ""
        try:
            where = ",".join(client.who_has([f]).get(f.key, ()))
            results[i] = f.result()
            what = "ok"
        except Exception as e:  # the task's own error, after its retry: report, go on
            failed.append({"point": point, "seed": seed, "error": f"{type(e).__name__}: {e}"})
            what = f"FAILED after retry: {type(e).__name__}: {e}"
        del f
        done = len(results) + len(failed)
        line = (f"paths: {len(results)} done, {len(failed)} failed, {len(tasks) - done} "
                f"remaining ({point_name(point)} seed {seed} {what}"
                f"{' on ' + where if where else ''}, {time.perf_counter() - t0:.1f}s)")
        # a terminal gets one line rewritten in place (a failure keeps its own line);
        # a pipe or file gets a line per task
        end = "\n" if not tty or what != "ok" or done == len(tasks) else ""
        stream.write(("\r\033[K" if tty else "") + line + end)
        stream.flush()
    return [results[i] for i in sorted(results)], failed


def run(base: cfg.Settings, specs: list[str], kw: dict[str, Any], *, paths: int = 1,
        scheduler: str | None = None, plain: bool = True, workers: int | None = None,
        stream: TextIO | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Plan, connect, run every task; close what was started. (results, failures)."""
    task_kw = {k: v for k, v in kw.items() if k != "seed"}
    tasks = plan(base, specs, task_kw, paths, kw.get("seed"))
    client, cluster = connect(scheduler, workers)
    try:
        return run_tasks(client, run_path, tasks, (base, task_kw, plain), stream)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def main(base: cfg.Settings, out: Path, specs: list[str], kw: dict[str, Any], *, paths: int,
         scheduler: str | None, plain: bool) -> int:
    """`condorbot backtest --paths N [--sweep ...] [--scheduler ...]`: run, then write
    DIR/montecarlo.json + montecarlo.html (and DIR/sweep.csv for a sweep)."""
    from bot import montecarlo_report as mr

    t0 = time.perf_counter()
    plain = plain and not specs  # a sweep compares grid points, as before: no plain twin
    results, failed = run(base, specs, kw, paths=paths, scheduler=scheduler, plain=plain)
    wall = time.perf_counter() - t0
    meta = {"paths": paths, "grid": specs, "scheduler": scheduler or "LocalCluster",
            "tasks": len(results) + len(failed), "failed": len(failed),
            "wall_seconds": round(wall, 2), **{k: v for k, v in kw.items() if k != "seed"},
            "first_seed": kw.get("seed") if kw.get("seed") is not None else base.sim.seed}
    html = mr.write(out, meta, results, failed)
    if specs:
        mr.write_sweep_csv(out / "sweep.csv", results)
    print(mr.text(mr.load(out)))
    print(f"{len(results)} tasks in {wall:.1f}s wall; report: {html}")
    for fl in failed:
        print(f"FAILED: {point_name(fl['point'])} seed {fl['seed']}: {fl['error']}",
              file=sys.stderr)
    return 1 if failed else 0
