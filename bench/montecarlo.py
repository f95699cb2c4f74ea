"""Benchmark: Monte Carlo throughput on 1 vs 2 workers of a LocalCluster, and worker memory.

Runs the same `--paths` seeded paths of `--days` sessions (method + plain condor + CNDR +
buy-and-hold per path, `bot.montecarlo.run_path`, 5-minute ticks) on a LocalCluster of one
single-threaded worker process, then of two, and prints paths per wall second of each, their
ratio (target >= 1.7x on 2 cores) and each worker's peak RSS (target < 400 MB). Workers are
warmed up first (imports, exchange calendar: a 1-session path each), outside the timing.
On a machine shared with other work the ratio also measures the others' load: it is printed,
never asserted. Also prints the projected wall time of a 200-path x 252-session run.
Run: python bench/montecarlo.py [--paths 8] [--days 60] [--no-plain]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot import config as cfg
from bot import montecarlo as mc


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _warm(kw: dict) -> int:
    mc.run_path(cfg.Settings(), {}, 1, {**kw, "days": 1}, False)
    return 0


def measure(workers: int, paths: int, kw: dict, plain: bool) -> tuple[float, list[float]]:
    """(wall seconds of the timed run, peak RSS MB per worker)."""
    client, cluster = mc.connect(None, workers)
    try:
        addrs = list(client.scheduler_info()["workers"])
        client.gather([client.submit(_warm, kw, workers=[w], pure=False, allow_other_workers=False)
                       for w in addrs])
        tasks: list[tuple[dict[str, Any], int]] = [({}, 100 + i) for i in range(paths)]
        t0 = time.perf_counter()
        results, failed = mc.run_tasks(client, mc.run_path, tasks,
                                       (cfg.Settings(), kw, plain), open("/dev/null", "w"))
        wall = time.perf_counter() - t0
        if failed:
            raise SystemExit(f"failed tasks: {failed}")
        rss = sorted(client.run(_peak_rss_mb).values())
    finally:
        client.close()
        cluster.close()
    return wall, rss


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--paths", type=int, default=8)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--scenario", default="chop")
    ap.add_argument("--no-plain", action="store_true")
    a = ap.parse_args()
    kw = {"scenario": a.scenario, "days": a.days, "tick": 300.0}
    plain = not a.no_plain
    print(f"Monte Carlo bench: {a.paths} paths x {a.days} sessions of {a.scenario}, 5-min ticks"
          f"{', method + plain condor' if plain else ', method only'} (+ CNDR, buy-and-hold)")
    rows = {}
    for n in (1, 2):
        wall, rss = measure(n, a.paths, kw, plain)
        rows[n] = wall
        print(f"  {n} worker{'s' if n > 1 else ' '}: {wall:7.1f} s wall = "
              f"{a.paths / wall:.3f} paths/s; peak RSS per worker "
              + ", ".join(f"{r:.0f} MB" for r in rss))
    ratio = rows[1] / rows[2]
    print(f"ratio throughput 2 workers / 1 worker = {ratio:.2f}  (target >= 1.7 on 2 cores)")
    per_path = rows[2] / a.paths * 252 / a.days
    print(f"projected 200 paths x 252 sessions on this machine (2 workers): "
          f"~{200 * per_path / 60:.0f} min wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
