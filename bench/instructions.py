"""Benchmark: instructions per backtest path, this tree against a commit (issue 16's per-path
speed-up, in a measure that does not depend on the machine).

Counts the user-space instructions (valgrind's callgrind, PYTHONHASHSEED=0) of the method
variant of a one-year backtest at 5-minute ticks (chop seed 7, with the CNDR hook: what
`bench/backtest.py` times) in this tree and at COMMIT (a temporary git worktree), each minus
a run of the same warm-up alone (imports, the calendar, a one-session backtest), so what is
left is the year's steps. Steps per CPU second on a shared VM move by +-25% from run to run
and with the CPU the VM lands on; the same program on the same input executes the same
instructions on any x86-64 machine. The ratio of counts is the speed-up in work; the ratio
of times also carries each tree's cycles per instruction (`bench/backtest.py --against`).
Slow: valgrind runs Python ~40x slower (a year of this tree ~6 minutes, of 5f1ce42 ~15 on
the 2-core machine of 2026-12-02); the four runs go two at a time (14m43s in all, 4.06x,
on 2a43abe).
Run: python bench/instructions.py [--against 5f1ce42] [--days 252]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# one counted run (argv: tree, days): the warm-up, then `days` sessions (none: the warm-up
# alone). The API used (backtest_settings, run_variant, baselines.Cndr) is the same at 5f1ce42
_RUN = """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from bot import baselines, config as cfg
from bot.backtest import backtest_settings, run_variant
days, tmp = int(sys.argv[2]), Path(tempfile.mkdtemp(prefix="bench-ir-"))
for d, name in ((1, "warm"), (days, "run")):
    if d:
        s = backtest_settings(cfg.Settings(), tmp / name, scenario="chop", seed=7, days=d,
                              tick=300.0)
        r = run_variant(s, None, [baselines.Cndr(s.sim.initial_cash)])
print(r["steps"])
"""


def count(tree: Path, days: int) -> tuple[int, int]:
    """(instructions, steps of the last backtest) of one run of `tree` under callgrind."""
    with tempfile.TemporaryDirectory(prefix="bench-cg-") as tmp:
        out = Path(tmp) / "callgrind.out"
        p = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             "-c", _RUN, str(tree), str(days)],
            capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    if p.returncode != 0:
        raise RuntimeError(f"a counted run failed (exit {p.returncode}): {p.stderr[-400:]}")
    got = re.search(r"Collected : (\d+)", p.stderr)
    if got is None:
        raise RuntimeError("callgrind printed no instruction count")
    return int(got.group(1)), int(p.stdout.split()[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--against", metavar="COMMIT", default="5f1ce42")
    ap.add_argument("--days", type=int, default=252)
    a = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install -y valgrind): no instruction counts")
        return 2
    root = Path(__file__).resolve().parents[1]
    wt = Path(tempfile.mkdtemp(prefix="bench-base-")) / "tree"
    add = subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(wt),
                          a.against], capture_output=True, text=True)
    if add.returncode != 0:
        print(f"cannot check out {a.against} here (a git clone with its history is needed): "
              f"{add.stderr.strip()}")
        return 2
    try:
        jobs = [(name, tree, d) for name, tree in (("this tree", root), (a.against, wt))
                for d in (a.days, 0)]
        with ThreadPoolExecutor(max_workers=2) as pool:  # two valgrinds at a time
            got = dict(zip([(n, d) for n, _, d in jobs],
                           pool.map(lambda j: count(j[1], j[2]), jobs)))
    finally:
        subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(wt)],
                       capture_output=True)
    print(f"instructions (callgrind), {a.days} sessions of chop seed 7 at 5-min ticks, method "
          "variant with the CNDR hook, minus the warm-up alone:")
    net = {}
    for name in ("this tree", a.against):
        (run, steps), (warm, _) = got[(name, a.days)], got[(name, 0)]
        net[name] = run - warm
        print(f"  {name}: {run / 1e9:.3f} G - {warm / 1e9:.3f} G = {net[name] / 1e9:.3f} G for "
              f"{steps} steps = {net[name] / steps / 1e3:.0f} k instructions a step")
    print(f"ratio {a.against} / this tree (instructions per path) = "
          f"{net[a.against] / net['this tree']:.2f}  (issue 16 target >= 4 against 5f1ce42)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
