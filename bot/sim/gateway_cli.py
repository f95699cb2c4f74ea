"""`condorbot sim-gateway`: the TWS API emulator (bot.sim.gateway) as a process.

    condorbot sim-gateway --port 4002 --scenario calm --speed 60 --account DU1234567 \
        --journal gateway.jsonl --seed 7

then, in another terminal, `condorbot run --broker ib --port 4002`. It prints one JSON line
`gateway.listening` (with the port: `--port 0` picks a free one) and runs until SIGINT or
SIGTERM. Fault injection: --delay, --reject-orders, --drop-after-orders, --drop-every,
--error CODE@SECONDS, --market-data-error, and a live (non-DU) --account.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from datetime import date, datetime, time
from typing import Any

EXIT_USAGE = 2


def _error_at(text: str) -> tuple[int, float]:
    code, _, at = text.partition("@")
    try:
        return int(code), float(at or 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CODE@SECONDS, got {text!r}") from None


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return v


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sim-gateway", help="TWS API emulator serving the simulated market",
                       description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4002, help="0 = any free port (printed)")
    p.add_argument("--scenario", default="calm")
    p.add_argument("--speed", type=_positive, default=60.0, help="simulated seconds per second")
    p.add_argument("--account", default="DU1234567", help="managed account id (DU... = paper)")
    p.add_argument("--journal", help="append one JSON line per placeOrder received")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 5),
                   help="first simulated trading day")
    p.add_argument("--cash", type=_positive, default=1_000_000.0)
    p.add_argument("--no-skip-closed", action="store_true",
                   help="let closed hours pass at --speed instead of jumping to the next open")
    p.add_argument("--handshake-timeout", type=_positive, default=5.0,
                   help="close a connection that has not completed the API handshake in S s")
    f = p.add_argument_group("fault injection")
    f.add_argument("--delay", type=float, default=0.0, help="seconds before each reply")
    f.add_argument("--reject-orders", type=int, default=0, help="reject the first N orders (201)")
    f.add_argument("--drop-after-orders", type=int, default=0,
                   help="drop the connection after the Nth order")
    f.add_argument("--drop-every", type=_positive, help="drop all connections every N seconds")
    f.add_argument("--error", type=_error_at, action="append", default=[],
                   help="send error CODE to every client SECONDS after start (repeatable)")
    f.add_argument("--market-data-error", type=int, default=0,
                   help="answer option market data requests with this error code (e.g. 354)")
    p.set_defaults(handler=run)


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}, default=str), flush=True)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        print(f"condorbot: --port {args.port} out of range", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 0


async def _serve(args: argparse.Namespace) -> int:
    from bot.broker.sim import SimBroker
    from bot.clock import SimClock
    from bot.sim import scenarios as scn
    from bot.sim.gateway import Faults, Gateway
    from strategies import expiry as xp

    try:
        scenario = scn.get(args.scenario)
        # a replay runs on its file's own dates, as in backtests (bot.broker.sim.make_sim_broker)
        first = scenario.dates[0] if scenario.dates else args.start
        start = xp.next_spx_open(datetime.combine(first, time(0, 0), tzinfo=xp.NY))
        sim = SimBroker(SimClock(start), scenario, args.seed, initial_cash=args.cash,
                        account_id=args.account)
    except (KeyError, ValueError) as e:
        print(f"condorbot: sim-gateway: {e}", file=sys.stderr)
        return EXIT_USAGE
    faults = Faults(delay=args.delay, drop_after_orders=args.drop_after_orders,
                    market_data_error=args.market_data_error)
    gw = Gateway(sim, speed=args.speed, accounts=[args.account], journal=args.journal,
                 skip_closed=not args.no_skip_closed, faults=faults,
                 handshake_timeout=args.handshake_timeout)
    gw.reject_orders(args.reject_orders)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        port = await gw.start(args.host, args.port)
    except OSError as e:
        print(f"condorbot: sim-gateway: cannot listen on {args.host}:{args.port}: {e.strerror}",
              file=sys.stderr)
        return 1
    _emit("gateway.listening", host=args.host, port=port, account=args.account,
          scenario=args.scenario, speed=args.speed, sim_time=sim.clock.now().isoformat(),
          journal=args.journal)
    for code, at in args.error:
        loop.call_later(at, gw.send_error, code, f"emulator fault injection: error {code}")
    if args.drop_every:
        async def dropper() -> None:
            while True:
                await asyncio.sleep(args.drop_every)
                gw.drop()
                _emit("gateway.dropped", sim_time=sim.clock.now().isoformat())
        gw.spawn(dropper())
    await stop.wait()
    await gw.close()
    _emit("gateway.stopped", sim_time=sim.clock.now().isoformat(), orders=len(gw.journal),
          max_msgs_per_sec=gw.max_rate)
    return 0
