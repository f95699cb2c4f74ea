"""Benchmark: one decision tick on a full SPX monthly chain, against two baselines.

A SimBroker snapshot (calm, seed 7, 10:30 New York: 4 SPX monthlies x ~540 strikes 75%-120%
of spot, 6 VIX expiries) is decided on by `strategies.tvm.decide` with every hedge layer on:
  - IDLE: the entry path (expiry window, strikes by delta on the whole chain, credit check);
  - OPEN: managing a condor (take-profit / time exit, roll triggers and MACD timing, the
    three hedge layers' triggers and sizing).
Baselines measured in the same run:
  - snapshot: the broker building the next snapshot (clock + 60 s: every SPX and VIX option
    re-priced, greeks, quotes) - what a tick costs before any decision;
  - naive: the entry strike search written as a per-option Python loop (Black-Scholes delta by
    math.erf for every put and call of the entry expiry, nearest 0.16 kept).
Prints median times and the ratios decide/snapshot and naive/decide (the vectorized decision's
speed-up). Run: python bench/tick.py
"""

from __future__ import annotations

import asyncio
import math
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot import config as cfg
from bot.broker.sim import SimBroker
from bot.clock import SimClock
from strategies import events, tvm
from strategies import expiry as xp
from strategies.condor import pick_expiry


def median_time(fn, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def naive_entry(chain, spx: float, r: float, target: float = 0.16) -> tuple[float, float]:
    """Strike search the slow way: one option at a time, delta from scratch."""
    best_p = best_c = (9.0, math.nan)
    t = chain.t
    for i, k in enumerate(chain.strikes):
        sig = float(chain.call_iv[i])
        if not (sig > 0 and t > 0):
            continue
        d1 = (math.log(spx / k) + (r + 0.5 * sig * sig) * t) / (sig * math.sqrt(t))
        nd1 = 0.5 * (1.0 + math.erf(d1 / math.sqrt(2.0)))
        dc, dp = nd1, nd1 - 1.0
        if k < spx and abs(abs(dp) - target) < best_p[0]:
            best_p = (abs(abs(dp) - target), float(k))
        if k > spx and abs(dc - target) < best_c[0]:
            best_c = (abs(dc - target), float(k))
    return best_p[1], best_c[1]


def main() -> int:
    s = cfg.Settings()
    start = datetime(2026, 1, 6, 10, 30, tzinfo=xp.NY)
    clock = SimClock(start)
    broker = SimBroker(clock, "calm", 7)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(broker.connect())
    snap = loop.run_until_complete(broker.snapshot())
    ctx = tvm.Context(hedge=s.hedge, calendar=events.default_calendar(), combo_roll=True)
    p = s.strategy
    idle = tvm.State()
    d = tvm.decide(idle, snap, p, ctx)
    intent = d.intents[0]
    opened = tvm.on_order_done(d.state, intent, intent.qty, intent.mid, 2.6, snap.time,
                               p.cooldown_days).state
    assert opened.status is tvm.Status.OPEN, opened.status
    n_opts = sum(c.strikes.size * 2 for c in snap.chains.values())
    n_vix = sum(c.strikes.size * 2 for c in snap.vix_chains.values())
    exp = pick_expiry(snap.chains, snap.time, p.dte_min, p.dte_max)
    assert exp is not None, "no expiry in the DTE window"
    chain = snap.chains[exp]

    def build() -> None:  # the next market minute: every option re-priced
        clock.advance(60)
        loop.run_until_complete(broker.snapshot())

    reps = 200
    t_idle = median_time(lambda: tvm.decide(idle, snap, p, ctx), reps)
    t_open = median_time(lambda: tvm.decide(opened, snap, p, ctx), reps)
    t_snap = median_time(build, reps)
    t_naive = median_time(lambda: naive_entry(chain, snap.spx, broker.market.r), reps)
    print(f"one decision tick on a full chain: {len(snap.chains)} SPX monthlies, {n_opts} SPX "
          f"options, {n_vix} VIX options (median of {reps})")
    print(f"  snapshot build (baseline)   {t_snap * 1e3:8.3f} ms")
    print(f"  decide, IDLE (entry)        {t_idle * 1e3:8.3f} ms")
    print(f"  decide, OPEN (+3 layers)    {t_open * 1e3:8.3f} ms")
    print(f"  naive per-option entry loop {t_naive * 1e3:8.3f} ms ({chain.strikes.size} strikes)")
    print(f"ratio decide(IDLE) / snapshot build = {t_idle / t_snap:.3f}")
    print(f"ratio decide(OPEN) / snapshot build = {t_open / t_snap:.3f}")
    print(f"ratio naive loop / decide(IDLE) = {t_naive / t_idle:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
