"""Daemon memory after 60 simulated days vs after 5 (ratio printed), and the soak check.

Default: one daemon in-process on the sim (chop, seed 7, tick 300 s, speed max); a step hook
measures, after gc.collect, the Python heap (sys.getallocatedblocks: live pymalloc blocks) and
the RSS at the first step after 5 and after 60 complete simulated sessions, and prints
mem(60)/mem(5). `--trace` uses tracemalloc instead (about 3x slower) and also prints the five
allocation sites that grew most between the two marks.

  python bench/memory.py [--trace]       the 60-vs-5 ratio
  python bench/memory.py --soak          `condorbot run --scenario chop --speed max --days 250`
                                         as a subprocess (the daemon path, config tick), RSS
                                         sampled at every new simulated day (and every
                                         second); exits 1 unless
                                         exit code 0, no ERROR event, RSS growth < 10%
                                         (end vs day 5)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_kb(pid: int | str = "self") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def ratio(days_lo: int = 5, days_hi: int = 60, tick: float = 300, scenario: str = "chop",
          trace: bool = False) -> dict:
    from bot import config as cfg
    from bot.backtest import backtest_settings, isolated_logs
    from bot.broker.sim import make_sim_broker
    from bot.daemon import Daemon
    from bot.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    s = backtest_settings(cfg.Settings(), tmp, scenario=scenario, seed=7, days=days_hi + 1,
                          tick=tick)
    marks: dict[int, tuple[int, int, object]] = {}

    def hook(d, snap) -> None:  # the first step after n full sessions
        for n in (days_lo, days_hi):
            if d.sessions == n + 1 and n not in marks:
                gc.collect()
                if trace:
                    marks[n] = (tracemalloc.get_traced_memory()[0], rss_kb(),
                                tracemalloc.take_snapshot())
                else:
                    marks[n] = (sys.getallocatedblocks(), rss_kb(), None)

    async def go() -> None:
        broker, clock = make_sim_broker(s)
        store = Store(s.store_path, exclusive=True, reset=True)
        try:
            d = Daemon(s, broker, clock, store)
            d.step_hooks.append(hook)
            await d.run()
        finally:
            store.close()

    if trace:
        tracemalloc.start(1)
    t0 = time.perf_counter()
    with isolated_logs(s):
        asyncio.run(go())
    wall = time.perf_counter() - t0
    lo, hi = marks[days_lo], marks[days_hi]
    growth = []
    if trace:
        tracemalloc.stop()
        growth = hi[2].compare_to(lo[2], "lineno")[:5]  # type: ignore[attr-defined]
    return {"heap_lo": lo[0], "heap_hi": hi[0], "rss_lo": lo[1], "rss_hi": hi[1],
            "wall": wall, "top": [str(g) for g in growth], "lo": days_lo, "hi": days_hi}


def soak(days: int = 250, scenario: str = "chop", config: Path = ROOT / "config.yaml") -> int:
    """The daemon as `make soak` runs it, in a scratch directory, watched from outside."""
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    cmd = [str(ROOT / ".venv" / "bin" / "condorbot"), "run", "--config", str(config),
           "--scenario", scenario, "--speed", "max", "--days", str(days)]
    if not Path(cmd[0]).exists():
        cmd[:1] = [sys.executable, "-m", "bot"]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    rss: dict[str, int] = {}
    timed: list[int] = []  # RSS every second, whatever the log says
    done = threading.Event()

    def sample() -> None:
        while not done.wait(1.0):
            timed.append(rss_kb(p.pid))

    threading.Thread(target=sample, daemon=True).start()
    errors: list[dict] = []
    events = 0
    assert p.stdout is not None
    for line in p.stdout:
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue
        events += 1
        day = str(ev.get("market_time", ""))[:10]
        if day and day not in rss:
            rss[day] = rss_kb(p.pid)
        if ev.get("level") in ("error", "critical"):
            errors.append(ev)
    code = p.wait()
    done.set()
    wall = time.perf_counter() - t0
    days_seen = sorted(rss)
    base = rss[days_seen[min(5, len(days_seen) - 1)]] if days_seen else 0
    end = rss[days_seen[-1]] if days_seen else 0
    peak = max(rss.values(), default=0)
    growth = end / base - 1 if base else float("nan")
    print(f"soak: exit {code}, {len(days_seen)} simulated days with events, {events} events, "
          f"{len(errors)} ERROR events, wall {wall:.0f}s, log dir {work / 'logs'}")
    print(f"soak: RSS day 5 {base / 1024:.1f} MiB, end {end / 1024:.1f} MiB, peak "
          f"{peak / 1024:.1f} MiB; growth end/day5 = {growth * 100:+.1f}%")
    if len(timed) >= 10:
        live = [x for x in timed if x > 0]
        t10 = live[len(live) // 10]
        print(f"soak: RSS sampled each second: at 10% of the run {t10 / 1024:.1f} MiB, last "
              f"{live[-1] / 1024:.1f} MiB, max {max(live) / 1024:.1f} MiB "
              f"({(live[-1] / t10 - 1) * 100:+.1f}%)")
    for e in errors[:5]:
        print(f"  ERROR {e.get('event')} {e.get('market_time')} {str(e.get('error'))[:120]}")
    ok = code == 0 and not errors and growth < 0.10
    print("soak: " + ("PASS" if ok else "FAIL") + " (exit 0, no ERROR events, RSS growth < 10%)")
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--soak", action="store_true")
    ap.add_argument("--days", type=int)
    ap.add_argument("--scenario", default="chop")
    ap.add_argument("--trace", action="store_true",
                    help="tracemalloc (slower): traced heap and the top growth sites")
    a = ap.parse_args()
    if a.soak:
        return soak(a.days or 250, a.scenario)
    r = ratio(5, a.days or 60, scenario=a.scenario, trace=a.trace)
    unit = "traced Python heap, MB" if a.trace else "allocated Python blocks"
    scale = 1e6 if a.trace else 1
    print(f"daemon memory, {r['hi']} simulated days vs {r['lo']} (tick 300 s, {a.scenario}, "
          f"run {r['wall']:.1f}s)")
    fmt = ",.2f" if a.trace else ",.0f"
    print(f"  {unit}: {r['heap_lo'] / scale:{fmt}} -> {r['heap_hi'] / scale:{fmt}}")
    print(f"  RSS: {r['rss_lo'] / 1024:.1f} MiB -> {r['rss_hi'] / 1024:.1f} MiB")
    if r["top"]:
        print("  largest growth sites:")
        for line in r["top"]:
            print(f"    {line}")
    print(f"ratio heap(day {r['hi']}) / heap(day {r['lo']}) = {r['heap_hi'] / r['heap_lo']:.3f}")
    print(f"ratio RSS(day {r['hi']}) / RSS(day {r['lo']}) = {r['rss_hi'] / r['rss_lo']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
