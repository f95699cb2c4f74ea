"""Backtests: the daemon's own decision path (Daemon + strategy + risk guard + executor +
SimBroker) on a simulated clock at speed max, observed through step hooks and log listeners.
The store is the daemon's own SQLite code on an in-memory database.

`run_variant` runs one daemon in-process and returns plain data (picklable, so a variant can
run in a worker process): the tick series (time, net liquidation, margin, SPX, VIX, condor
strikes, roll fund, trading state), every order event as a trades row, the method's events
and the final ledger report. `backtest` runs the method and the plain condor (same market:
same scenario and seed) side by side, adds the CNDR and buy-and-hold baselines
(bot.baselines) and writes trades.csv, equity.csv, summary.json and report.html.

Logging: a run writes its JSON log to DIR/logs/<variant>.jsonl (the method's is
condorbot.jsonl, so `condorbot tail --file DIR/logs/condorbot.jsonl` reads it). The caller's
logging set-up (root handlers, level, structlog configuration, log clock, listeners) is
restored afterwards, so an in-process backtest leaves logging as it found it.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
import yaml

from bot import config as cfg
from bot import logs
from bot.backtest_recorder import TRADE_COLUMNS, Recorder
from strategies import ledger as lg

NO_HEDGES = {"event_layer": False, "fomc_layer": False, "tail_layer": False}
VARIANT_LOG = {"method": "condorbot.jsonl"}


# --- settings ------------------------------------------------------------------------------
def parse_override(text: str) -> tuple[str, list[Any]]:
    """`section.key=v1,v2` -> ("section.key", [v1, v2]) with YAML-typed values."""
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise cfg.ConfigError(f"--sweep wants key=v1,v2,...; got {text!r}")
    return key.strip(), [yaml.safe_load(v.strip()) for v in values.split(",")]


def apply(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    *path, last = key.split(".")
    for part in path:
        if not isinstance(node.get(part), dict):
            raise cfg.ConfigError(f"unknown setting {key!r}")
        node = node[part]
    if last not in node:
        raise cfg.ConfigError(f"unknown setting {key!r}")
    node[last] = value


def backtest_settings(base: cfg.Settings, out: Path, *, scenario: str | None = None,
                      seed: int | None = None, days: int | None = None,
                      tick: float | None = None, variant: str = "method",
                      overrides: dict[str, Any] | None = None) -> cfg.Settings:
    """The settings of one backtest run: speed max, logs and store under `out`, the operator's
    control file out of reach (a backtest obeys no `stop` meant for a live daemon)."""
    raw = base.model_dump(mode="json")
    raw["broker"] = "sim"
    sim = raw["sim"]
    sim["speed"] = "max"
    for k, v in (("scenario", scenario), ("seed", seed), ("days", days)):
        if v is not None:
            sim[k] = v
    if sim["days"] is None:
        sim["days"] = 252
    if tick is not None:
        raw["tick_seconds"] = tick
    raw["control_file"] = str(out / "control")
    raw["heartbeat_seconds"] = 3600
    # the daemon's own store code on an in-memory SQLite: a backtest needs no crash-safe
    # fsync per transaction (that was ~10% of a run), and leaves no store to mistake for live
    raw["store_path"] = ":memory:"
    raw["log"]["dir"] = str(out / "logs")
    raw["log"]["file"] = VARIANT_LOG.get(variant, f"{variant}.jsonl")
    for k, v in (overrides or {}).items():
        apply(raw, k, v)
    if variant == "plain_condor":  # + baselines.plain_decide: held through tests, stopped
        raw["strategy"]["max_steps"] = 0  # at plain_stop_mult x credit
        raw["hedge"].update(NO_HEDGES)
    return cfg.parse(raw, f"backtest {variant}")


# --- logging isolation -----------------------------------------------------------------------
@contextmanager
def isolated_logs(settings: cfg.Settings) -> Iterator[None]:
    """Point logging at the run's own file (no console) and restore the caller's set-up."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, structlog.get_config(), logs._clock,
             list(logs._listeners))
    for h in saved[0]:
        root.removeHandler(h)  # detached, not closed: they come back afterwards
    ls = settings.log
    # a backtest's events go to its file only (no console), written straight from structlog
    logs.setup(ls.dir, ls.file, ls.level, ls.max_bytes, ls.backups, console=False, direct=True)
    try:
        yield
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
            try:
                h.close()
            except OSError:
                pass
        handlers, level, sconf, clock, listeners = saved
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)
        structlog.configure(**sconf)
        logs.use_clock(clock)
        logs._listeners[:] = listeners


# --- one run -------------------------------------------------------------------------------------
async def _drive(settings: cfg.Settings, rec: Recorder,
                 decide: Callable[..., Any] | None = None) -> tuple[int, Any]:
    from bot.broker.sim import make_sim_broker  # the daemon's own sim wiring
    from bot.daemon import Daemon
    from bot.store import Store

    broker, clock = make_sim_broker(settings)
    store = Store(settings.store_path, exclusive=True, reset=True)
    try:
        d = Daemon(settings, broker, clock, store, decide=decide)
        rec.daemon = d
        d.step_hooks.append(rec.hook)
        code = await d.run()
    finally:
        store.close()
    return code, d


def run_variant(settings: cfg.Settings, progress: Callable[[int], None] | None = None,
                extra_hooks: list[Any] | None = None,
                decide: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Run one daemon to the end of `settings.sim.days`; return what it did as plain data.
    `decide`: the daemon's decision function in place of `tvm.decide` (the plain condor's),
    passed to the Daemon: nothing global is swapped."""
    rec = Recorder(progress=progress, extra_hooks=list(extra_hooks or []))
    t0, c0 = time.perf_counter(), time.process_time()
    with isolated_logs(settings), _gc_frozen():
        logs.add_listener(rec.listen)
        code, d = asyncio.run(_drive(settings, rec, decide))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    st = d.state
    return {
        "exit_code": code, "wall_seconds": wall, "cpu_seconds": cpu,
        "steps": len(rec.ticks["time"]),
        "sessions": d.sessions, "ticks": rec.ticks, "trades": rec.trades, "events": rec.events,
        "errors": rec.errors, "ledger": lg.report(st.ledger), "status": st.status.value,
        "costs": rec.costs,
        "initial_cash": settings.sim.initial_cash, "log": str(settings.log.dir / settings.log.file),
    }


GC_YOUNG = 10_000  # allocations between two young-generation passes of the cyclic GC, in a run


@contextmanager
def _gc_frozen() -> Iterator[None]:
    """The cyclic garbage collector, tuned for a run: objects alive before it (modules, the
    loaded calendar, pandas' and numpy's own, and any garbage: it is collected after) are
    left out of its passes, and the young generation is collected every GC_YOUNG
    allocations instead of 700. A step allocates thousands of short-lived containers that
    reference counting frees, and the simulator breaks its own cycles, so the passes found
    little: GC time a simulated year 0.24 -> 0.01 CPU s (330 passes -> 2)."""
    saved = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, *saved[1:])
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()


def _variant_job(settings: cfg.Settings, plain: bool = False) -> dict[str, Any]:
    """Worker-process entry (module level, so it pickles)."""
    return run_variant(settings, decide=_plain(settings) if plain else None)


def _plain(settings: cfg.Settings) -> Callable[..., Any]:
    from bot import baselines

    return baselines.plain_decide(settings.backtest.plain_stop_mult)


# --- writing -------------------------------------------------------------------------------------
def write_trades(path: Path, trades: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=TRADE_COLUMNS)
        w.writeheader()
        w.writerows(trades)


def read_trades(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python, recursively."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# --- the whole backtest ------------------------------------------------------------------------
def run_backtest(base: cfg.Settings, out: Path | str, *, scenario: str | None = None,
                 seed: int | None = None, days: int | None = None, tick: float | None = 300,
                 overrides: dict[str, Any] | None = None,
                 progress: Callable[[int], None] | None = None, plain: bool = True,
                 parallel: bool = True, report: bool = True) -> dict[str, Any]:
    """Method + plain condor (in a worker process when `parallel`) + CNDR + buy-and-hold,
    over one market; writes trades.csv, equity.csv, summary.json (+ report.html, PNGs)."""
    import json

    from bot import baselines, money
    from bot import report as rp
    from bot import report_tables as tb
    from bot.report_charts import charts

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def variant_settings(variant: str) -> cfg.Settings:
        return backtest_settings(base, out, variant=variant, scenario=scenario, seed=seed,
                                 days=days, tick=tick, overrides=overrides)

    s_method = variant_settings("method")
    s_plain = variant_settings("plain_condor") if plain else None
    rules = money.rules_of(s_method.sim.scenario)
    pool = future = None
    if s_plain is not None and parallel:
        import concurrent.futures as cf
        import multiprocessing as mp

        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        pool = cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx)
        future = pool.submit(_variant_job, s_plain, True)
    try:
        # CNDR fills through the method's broker's own FillModel (taken in the hook), walked
        # like the executor walks; the plain twin's broker is built from the same settings
        cndr = baselines.Cndr(s_method.sim.initial_cash, s_method.strategy.base_qty,
                              s_method.sim.commission_per_contract, rate=rules.short_rate,
                              walk_steps=s_method.orders.walk_steps,
                              max_slippage=s_method.orders.max_slippage)
        runs = {"method": run_variant(s_method, progress, [cndr])}
        if future is not None:
            runs["plain_condor"] = future.result()
        elif s_plain is not None:
            runs["plain_condor"] = run_variant(s_plain, decide=_plain(s_plain))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    initial = s_method.sim.initial_cash
    mt = runs["method"]["ticks"]
    daily = rp.daily_frame(mt)
    frame, earned = money.frame(rules, daily, runs, cndr, initial)
    frame.to_csv(out / "equity.csv", float_format="%.4f")
    sm = s_method.sim
    summary: dict[str, Any] = {
        "run": {"scenario": sm.scenario, "seed": sm.seed, "days": sm.days,
                "sessions": runs["method"]["sessions"], "tick_seconds": s_method.tick_seconds,
                "start": str(frame.index[0]) if len(frame) else None,
                "end": str(frame.index[-1]) if len(frame) else None,
                "initial_cash": initial, "overrides": overrides or {},
                "wall_seconds": round(runs["method"]["wall_seconds"], 2),
                "cpu_seconds": round(runs["method"]["cpu_seconds"], 2),
                "steps": runs["method"]["steps"],
                "steps_per_second": round(runs["method"]["steps"]
                                          / max(runs["method"]["wall_seconds"], 1e-9), 1)},
        "money_rules": rules.summary(),
    }
    for name, r in runs.items():
        summary[name] = rp.details(r)
    summary["cndr"] = cndr.summary()
    summary["run"]["fill_model"] = summary["cndr"]["fill_model"]
    # the same P&L on very different risk: each column's peak margin, and returns on it
    capital = {"method": summary["method"]["peak_margin"]["usd"],
               "plain_condor": summary.get("plain_condor", {}).get("peak_margin", {}).get("usd"),
               "cndr": cndr.peak_collateral, "buy_and_hold": initial}
    summary["comparison"] = money.comparison(frame, earned, capital, initial, rules)
    summary["verdict"] = tb.verdict(summary)
    summary["monthly_returns"] = tb.monthly_returns(frame, initial, money.COLUMNS)
    summary["costs"] = {k: summary[k]["costs"] for k in runs}
    cs = summary["cndr"]
    summary["costs"]["cndr"] = {"fills": cs["fills"], "commissions": cs["commissions"],
                                "vs_mid": cs["vs_mid"],
                                "total": round(cs["commissions"] + cs["vs_mid"], 2)}
    write_trades(out / "trades.csv", runs["method"]["trades"])
    if "plain_condor" in runs:
        write_trades(out / "trades_plain_condor.csv", runs["plain_condor"]["trades"])
    (out / "summary.json").write_text(json.dumps(_clean(summary), indent=2) + "\n")
    if report:
        pngs = charts(out, frame, runs, initial)
        rp.write_html(out, _clean(summary), pngs, runs["method"]["trades"])
    return summary
