"""`condorbot backtest`: the daemon's decision path over the simulator, with a report.

  condorbot backtest --scenario chop --days 252 --seed 7 --out bt/ [--tick 300]
  condorbot backtest --csv closes.csv --out bt/            (replay of daily SPX/VIX closes)
  condorbot backtest --scenario calm --days 120 --out bt/ --sweep strategy.max_steps=0,1,3

A single run writes DIR/trades.csv, equity.csv, summary.json, report.html and its PNGs, and
DIR/logs/*.jsonl. `--sweep key=v1,v2` (repeatable: the grid is the product) runs each point
as its own backtest (method + CNDR + buy-and-hold; no plain-condor twin, no charts) under
DIR/sweep/<point>/, at most 2 at a time in worker processes, and prints one comparison table,
also written to DIR/sweep.csv.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import time
from pathlib import Path
from typing import Any

from bot import config as cfg

SWEEP_WORKERS = 2
SWEEP_COLUMNS = ("point", "total_return", "cagr", "max_drawdown", "sharpe", "sortino", "pnl",
                 "campaigns", "roll_steps", "hedge_pnl", "worst_campaign", "peak_margin",
                 "errors", "wall_seconds")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("backtest", help="run the daemon's decisions over the simulator, fast, "
                                        "with a report against baselines")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--scenario", help="sim scenario (default: the config's)")
    src.add_argument("--csv", help="replay a CSV of daily SPX/VIX closes (columns date, spx, vix)")
    p.add_argument("--days", type=int, help="trading days (default 252; a CSV: its rows)")
    p.add_argument("--seed", type=int, help="sim seed (default: the config's)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--config", default="config.yaml",
                   help="config.yaml (built-in defaults when the file does not exist)")
    p.add_argument("--tick", type=float, default=300.0,
                   help="decision tick, simulated seconds (default 300)")
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2",
                   help="parameter grid, e.g. strategy.max_steps=0,1,3 (repeatable)")
    p.add_argument("--no-plain", action="store_true", help="skip the plain-condor twin run")
    p.add_argument("--paths", type=int, default=1, metavar="N",
                   help="Monte Carlo: N paths, seeds --seed..--seed+N-1, on Dask (bot.montecarlo)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the paths/sweep on this Dask cluster (default: a LocalCluster)")
    p.set_defaults(handler=main)


class Progress:
    """A one-line bar on stderr when it is a terminal; else a line every 10% of the run."""

    def __init__(self, total: int, label: str = "backtest", stream: Any = None) -> None:
        self.total = max(1, total)
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self._last_decile = -1

    def __call__(self, done: int) -> None:
        done = min(done, self.total)
        frac = done / self.total
        el = time.perf_counter() - self.t0
        eta = el / frac - el if frac > 0 else 0.0
        if self.tty:
            bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
            self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total} days "
                              f"{el:5.1f}s eta {eta:4.0f}s")
            self.stream.flush()
        elif int(frac * 10) > self._last_decile:
            self._last_decile = int(frac * 10)
            self.stream.write(f"{self.label}: {done}/{self.total} days, {el:.1f}s\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _base(path: str) -> cfg.Settings:
    return cfg.load(path) if Path(path).exists() else cfg.Settings()


def _csv_days(path: str) -> int:
    from bot.sim import scenarios

    return len(scenarios.load_csv(path).anchors)


def _pct(v: Any) -> str:
    return "-" if v is None else f"{v * 100:.2f}%"


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}"


def print_summary(s: dict[str, Any], out: Path) -> None:
    from bot.report import NAMES

    r = s["run"]
    print(f"backtest {r['scenario']} seed {r['seed']}: {r['sessions']} sessions "
          f"{r['start']}..{r['end']}, tick {r['tick_seconds']:g}s, {r['steps']} steps in "
          f"{r['wall_seconds']}s wall, {r['cpu_seconds']}s CPU ({r['steps_per_second']} steps/s)")
    print(f"{'':26}{'return':>9}{'CAGR':>9}{'max DD':>9}{'Sharpe':>8}{'Sortino':>8}{'P&L':>12}"
          f"{'int+div':>10}{'peak margin':>12}{'on margin':>10}")
    for k, m in s["comparison"].items():
        print(f"{NAMES.get(k, k):26}{_pct(m.get('total_return')):>9}{_pct(m.get('cagr')):>9}"
              f"{_pct(m.get('max_drawdown')):>9}{_num(m.get('sharpe')):>8}"
              f"{_num(m.get('sortino')):>8}{m.get('pnl', 0):>12,.2f}"
              f"{m.get('interest', 0) + m.get('dividends', 0):>10,.0f}"
              f"{m.get('peak_margin') or 0:>12,.0f}{_pct(m.get('return_on_peak_margin')):>10}")
    print(f"money: {s['money_rules']['text']}; 'on margin' is P&L before interest / peak margin")
    m = s["method"]
    print(f"method: {m['campaigns']} campaigns, {m['roll_steps']} roll steps, hedge P&L "
          f"{m['hedge_pnl_total']:,.2f}, worst campaign {m['worst_campaign']}, "
          f"{m['errors']} ERROR events")
    print(f"report: {out / 'report.html'}")


# --- sweep -------------------------------------------------------------------------------------
def grid(specs: list[str]) -> list[dict[str, Any]]:
    from bot.backtest import parse_override

    axes = [parse_override(s) for s in specs]
    return [dict(zip([k for k, _ in axes], combo))
            for combo in itertools.product(*[vs for _, vs in axes])]


def point_name(point: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items())


def _sweep_job(args: tuple) -> dict[str, Any]:
    base, out, kw, point = args
    from bot.backtest import run_backtest

    return run_backtest(base, out, overrides=point, plain=False, parallel=False, report=False,
                        **kw)


def sweep_row(name: str, s: dict[str, Any]) -> dict[str, Any]:
    m, c = s["method"], s["comparison"]["method"]
    w = m["worst_campaign"]
    return {"point": name, "total_return": c.get("total_return"), "cagr": c.get("cagr"),
            "max_drawdown": c.get("max_drawdown"), "sharpe": c.get("sharpe"),
            "sortino": c.get("sortino"), "pnl": c.get("pnl"), "campaigns": m["campaigns"],
            "roll_steps": m["roll_steps"], "hedge_pnl": m["hedge_pnl_total"],
            "worst_campaign": w["total"] if w else None,
            "peak_margin": m["peak_margin"]["usd"], "errors": m["errors"],
            "wall_seconds": s["run"]["wall_seconds"]}


def run_sweep(base: cfg.Settings, out: Path, specs: list[str], kw: dict[str, Any],
              workers: int = SWEEP_WORKERS, start_method: str | None = None
              ) -> list[dict[str, Any]]:
    import concurrent.futures as cf
    import multiprocessing as mp

    points = grid(specs)
    from bot.backtest import backtest_settings

    for p in points:  # bad keys or values fail here, before any process starts
        backtest_settings(base, out, overrides=p,
                          **{k: kw[k] for k in ("scenario", "seed", "days", "tick")})
    jobs = [(base, out / "sweep" / point_name(p).replace("/", "_"), kw, p) for p in points]
    ctx = mp.get_context(start_method or ("fork" if "fork" in mp.get_all_start_methods()
                                          else "spawn"))
    rows: dict[int, dict[str, Any]] = {}
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
        futs = {pool.submit(_sweep_job, j): i for i, j in enumerate(jobs)}
        for n, done in enumerate(cf.as_completed(futs), start=1):
            i = futs[done]
            rows[i] = sweep_row(point_name(points[i]), done.result())
            print(f"sweep: {n}/{len(jobs)} done ({rows[i]['point']})", file=sys.stderr)
    table = [rows[i] for i in range(len(jobs))]
    with open(out / "sweep.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=SWEEP_COLUMNS)
        w.writeheader()
        w.writerows(table)
    return table


def print_sweep(table: list[dict[str, Any]]) -> None:
    width = max(12, *(len(r["point"]) for r in table)) + 2
    print(f"{'point':{width}}{'return':>9}{'max DD':>9}{'Sharpe':>8}{'P&L':>12}{'camps':>6}"
          f"{'rolls':>6}{'hedges':>10}{'worst':>10}{'margin':>10}")
    for r in table:
        print(f"{r['point']:{width}}{_pct(r['total_return']):>9}{_pct(r['max_drawdown']):>9}"
              f"{_num(r['sharpe']):>8}{r['pnl'] or 0:>12,.2f}{r['campaigns']:>6}"
              f"{r['roll_steps']:>6}{r['hedge_pnl']:>10,.2f}"
              f"{r['worst_campaign'] if r['worst_campaign'] is not None else '-':>10}"
              f"{r['peak_margin']:>10,.0f}")


def main(args: argparse.Namespace) -> int:
    from bot.backtest import run_backtest

    try:
        base = _base(args.config)
        scenario = f"replay:{args.csv}" if args.csv else args.scenario
        days = args.days
        if days is None and args.csv:
            days = _csv_days(args.csv)
    except (cfg.ConfigError, ValueError) as e:
        print(f"condorbot: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    kw = {"scenario": scenario, "seed": args.seed, "days": days, "tick": args.tick}
    out.mkdir(parents=True, exist_ok=True)
    try:
        if args.sweep or args.paths != 1 or args.scheduler:  # Dask: every (point, seed) a task
            from bot import montecarlo

            return montecarlo.main(base, out, args.sweep, kw, paths=args.paths,
                                   scheduler=args.scheduler, plain=not args.no_plain)
        if args.sweep:
            table = run_sweep(base, out, args.sweep, kw)
            print_sweep(table)
            print(f"sweep table: {out / 'sweep.csv'}")
            return 0
        total = days or base.sim.days or 252
        bar = Progress(total)
        try:
            summary = run_backtest(base, out, progress=bar, plain=not args.no_plain, **kw)
        finally:
            bar.close()
    except (cfg.ConfigError, ValueError) as e:
        print(f"condorbot: {e}", file=sys.stderr)
        return 2
    print_summary(summary, out)
    return 0
