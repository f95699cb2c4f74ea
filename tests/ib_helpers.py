"""Shared helpers for the IB tests: the emulator (bot.sim.gateway) on a free loopback port,
IBBroker connected to it, an ERROR guard on ib_async's loggers, and subprocess readers.

Import the `ib_errors` fixture (from tests/tws_harness.py) into a test module to make every test
there fail on an unexpected ERROR record from an ib_async logger (`expect` = must appear once,
`allow` = may appear any number of times).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import yaml
from ib_async import IB, Bag, ComboLeg, Option, Ticker
from tws_harness import ib_errors  # noqa: F401 (re-exported for the IB tests)

from bot.broker.base import OrderRequest
from bot.broker.ib import IBBroker
from bot.broker.ib_market import Plan, next_emit
from bot.broker.sim import SimBroker
from bot.clock import SimClock
from bot.config import IBSettings
from bot.sim.gateway import Faults, Gateway
from strategies import expiry as xp
from strategies.condor import Condor, build_condor
from strategies.types import Snapshot

ACCT = "DU1234567"
START = datetime.combine(date(2026, 1, 5), time(10, 0), tzinfo=xp.NY)  # 30 min after the open
SMALL = Plan(per_side=3, widths=(50.0,), vix_expiries=1, quote_wait=2.0)
REPO = Path(__file__).resolve().parents[1]


def make_sim(account: str = ACCT, start: datetime = START, scenario: str = "calm",
             seed: int = 7) -> SimBroker:
    return SimBroker(SimClock(start), scenario, seed, account_id=account)


@asynccontextmanager
async def gateway(sim: SimBroker | None = None, **kw: Any) -> AsyncIterator[Gateway]:
    kw.setdefault("speed", None)
    kw.setdefault("faults", Faults())
    gw = Gateway(sim or make_sim(), **kw)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.close()
    assert gw.failures == [], f"the emulator failed: {gw.failures}"


async def connect(gw: Gateway, client_id: int) -> IB:
    """ib_async's own client, connected to the emulator."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", gw.port, clientId=client_id, timeout=5)
    return ib


SHORT_CONDOR = ("BUY", "SELL", "SELL", "BUY")  # as a BUY at a negative limit (a credit)


async def condor_options(ib: IB, gw: Gateway) -> tuple[list[Option], list[Ticker]]:
    """A 50-wide SPX condor ~300 points out on the Feb 2026 monthly (wing put, put, call,
    wing call), qualified, with live tickers whose first quotes have arrived."""
    k = round(gw.snap.spx / 5) * 5
    spec = [(k - 450, "P"), (k - 400, "P"), (k + 300, "C"), (k + 350, "C")]
    opts = [Option("SPX", "20260220", s, r, "SMART", tradingClass="SPX") for s, r in spec]
    assert all(await ib.qualifyContractsAsync(*opts))
    tickers = [ib.reqMktData(o) for o in opts]
    await ib.reqCurrentTimeAsync()  # barrier: the ticks answering reqMktData came first
    return opts, tickers


def combo(opts: list[Option], actions: tuple[str, ...] = SHORT_CONDOR) -> Bag:
    legs = [ComboLeg(conId=o.conId, ratio=1, action=a, exchange="SMART")
            for o, a in zip(opts, actions)]
    return Bag(symbol="SPX", exchange="SMART", currency="USD", comboLegs=legs)


def natural_of(tickers: list[Ticker]) -> float:
    """The short condor's natural price as a BUY of SHORT_CONDOR (negative: a credit)."""
    t = tickers
    return round(t[0].ask - t[1].bid - t[2].bid + t[3].ask, 2)


def settings(port: int, **kw: Any) -> IBSettings:
    base = dict(port=port, client_id=7, timeout=5.0, max_msgs_per_sec=50)
    return IBSettings(**{**base, **kw})


@asynccontextmanager
async def broker(gw: Gateway, plan: Plan | None = SMALL, connect: bool = True,
                 **kw: Any) -> AsyncIterator[IBBroker]:
    b = IBBroker(settings(gw.port, **kw), reconnect_delays=(0.05, 0.1, 0.2), connect_attempts=1,
                 plan=plan)
    try:
        if connect:
            await b.connect()
        yield b
    finally:
        await b.disconnect()
    assert b.handler_errors == [], f"IBBroker event handlers failed: {b.handler_errors}"


async def barrier(b: IBBroker) -> None:
    """One request/answer round trip: every message TWS sent before it has been handled."""
    await b.server_time()


async def next_error(b: IBBroker, code: int) -> None:
    while (await next_emit(b.ib.errorEvent))[1] != code:
        pass


def entry_condor(snap: Snapshot, width: float = 50.0) -> Condor:
    exp = next(e for e in sorted(snap.chains) if 45 <= xp.dte(e, snap.time) <= 60)
    condor, why = build_condor(snap.chains[exp], 0.16, 0.15, 0.20, width)
    assert condor is not None, why
    return condor


def condor_order(c: Condor, ref: str, price: str = "natural", **kw: Any) -> OrderRequest:
    limit = c.natural if price == "natural" else c.mid
    return OrderRequest(ref, c.legs, kw.pop("qty", 1), round(limit, 2), **kw)


def placed(gw: Gateway, ref: str) -> list[dict]:
    """Journal entries of real (not what-if) orders with this orderRef."""
    return [j for j in gw.journal if j["orderRef"] == ref and not j["whatIf"]]


def write_config(tmp: Path, **over: Any) -> Path:
    # intervals are broker-clock seconds (issue 13 item 3): against the emulator at 600x a
    # decision every 5 market minutes is 0.5 s of wall time, walk steps (10 s) 1/60 s
    raw = {"broker": "ib", "tick_seconds": 300, "heartbeat_seconds": 60,
           "clock_jump_seconds": 1.0e9,  # see docs/IB.md: the daemon's jump check and 600x
           "control_file": str(tmp / "control"), "store_path": str(tmp / "state" / "bot.db"),
           "log": {"dir": str(tmp / "logs")}, "ib": {"client_id": 9, "timeout": 10}}
    raw.update(over)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


async def bot_process(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)


async def events_until(proc: asyncio.subprocess.Process, pred: Any, timeout: float) -> list[dict]:
    """JSON stdout events up to the first matching `pred` (or EOF); asserts it matched."""
    seen: list[dict] = []

    async def read() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            seen.append(ev)
            if pred(ev):
                return

    await asyncio.wait_for(read(), timeout)
    assert seen and pred(seen[-1]), f"not seen; last events: {seen[-5:]}"
    return seen
