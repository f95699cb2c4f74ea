"""`condorbot run | status | pause | resume | reduce | stop | flatten` (and more as they land).

Exit codes: 0 done, 1 unexpected failure, 2 bad configuration or usage, 3 live account refused,
4 damaged store (restore it or `condorbot reset-store`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from bot import config as cfg
from bot import control, logs
from bot.store import StoreDamaged

if TYPE_CHECKING:  # the broker modules load lazily: only the IB path needs ib_async
    from bot.broker.base import Broker
    from bot.broker.ib_pacing import BrokerClock
    from bot.clock import SimClock

EXIT_CONFIG = 2
EXIT_LIVE_ACCOUNT = 3
EXIT_STORE_DAMAGED = 4


def _speed(text: str) -> float | str:
    if text == "max":
        return "max"
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"speed must be a number or 'max', got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"speed must be positive, got {text!r}")
    return v


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="condorbot", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="start the daemon")
    run.add_argument("--config", default="config.yaml", help="path to config.yaml")
    run.add_argument("--broker", choices=["sim", "ib"], help="override `broker`")
    run.add_argument("--scenario", help="sim scenario name")
    run.add_argument("--speed", type=_speed, help="simulated seconds per wall second, or max")
    run.add_argument("--days", type=int, help="stop after N simulated trading days")
    run.add_argument("--seed", type=int, help="sim seed")
    run.add_argument("--port", type=int, help="IB port (with --broker ib)")

    st = sub.add_parser("status", help="trading state, campaigns and last heartbeat")
    st.add_argument("--config", default="config.yaml")

    for word, helptext in (("pause", "place no orders, cancel working ones"),
                           ("resume", "back to normal trading (also leaves HALTED)"),
                           ("reduce", "closing orders only"),
                           ("stop", "cancel working orders, persist, exit"),
                           ("flatten", "close every position, then pause")):
        c = sub.add_parser(word, help=helptext)
        c.add_argument("--config", default="config.yaml")
    rs = sub.add_parser("reset-store", help="set a damaged store aside; the next run rebuilds "
                        "it from the broker and only reduces until resumed")
    rs.add_argument("--config", default="config.yaml")
    rs.add_argument("--force", action="store_true", help="set the store aside even if healthy")
    rs.set_defaults(handler=_reset_store)
    for module in _plugins():
        module.add_parser(sub)
    return p


def _reset_store(args: argparse.Namespace) -> int:
    """`condorbot reset-store`: move a damaged store aside and start a new one marked for
    recovery (bot.store.RESET_KEY); never while a daemon holds the store."""
    from bot import store as st

    settings = _load(args.config)
    ls = settings.log
    logs.setup(ls.dir, ls.file, ls.level, ls.max_bytes, ls.backups)
    log = logs.get("bot.cli")
    path = settings.store_path
    detail = st.check(path)
    if detail is None and not (args.force and path.exists()):
        log.info("store.reset_skipped", path=str(path), why="healthy or absent")
        print(f"condorbot: store {path} is healthy or absent: nothing to reset"
              + ("" if args.force else " (--force sets a healthy store aside)"))
        return 0
    try:
        aside = st.set_aside(path, st.utcnow(), detail or "set aside with --force")
    except st.StoreLocked as e:
        log.error("store.locked", path=str(path), error=str(e))
        print(f"condorbot: {e}", file=sys.stderr)
        return 1
    log.warning("store.reset", path=str(path), set_aside=str(aside), detail=detail,
                action="next run reconciles from the broker and only reduces until resume")
    print(f"condorbot: moved {path} to {aside}; the next `condorbot run` rebuilds the store "
          "from the broker and only reduces until `condorbot resume`")
    return 0


# Modules that add subcommands: each has add_parser(subparsers), which sets `handler` via
# set_defaults(handler=fn) where fn(args) -> exit code. Imported lazily and only if present.
PLUGINS = ("bot.history", "bot.sim.commands", "bot.sim.gateway_cli", "bot.backtest_cli", "bot.tail",
           "bot.alerts")


def _plugins() -> list[ModuleType]:
    import importlib

    out: list[ModuleType] = []
    for name in PLUGINS:
        try:
            out.append(importlib.import_module(name))
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
    return out


def _load(path: str) -> cfg.Settings:
    return cfg.load(path)


def _control_path(path: str) -> Path:
    """The control file named by the config; the default when there is no config file."""
    if not Path(path).exists():
        return cfg.Settings().control_file
    return _load(path).control_file


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if getattr(args, "handler", None) is not None:
            return int(args.handler(args))
        if args.cmd == "run":
            return _run(args)
        if args.cmd == "status":
            from bot.status import show

            return show(_load(args.config))
        word = {"resume": "run"}.get(args.cmd, args.cmd)
        path = _control_path(args.config)
        control.write(path, word)
        print(f"control: wrote {word!r} to {path}")
        return 0
    except cfg.ConfigError as e:
        print(f"condorbot: config error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreDamaged as e:  # run, status, history: never a traceback or a restart loop
        logs.get("bot.cli").error("store.damaged", path=str(e.path), detail=e.detail,
                                  action="refusing to start")
        print(f"condorbot: {e}", file=sys.stderr)
        return EXIT_STORE_DAMAGED


def _run(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    settings = cfg.with_overrides(settings, scenario=args.scenario, speed=args.speed,
                                  days=args.days, seed=args.seed)
    if args.broker or args.port:
        raw = settings.model_dump(mode="json")
        if args.broker:
            raw["broker"] = args.broker
        if args.port:
            raw["ib"]["port"] = args.port
        settings = cfg.parse(raw, "command line")
    ls = settings.log
    logs.setup(ls.dir, ls.file, ls.level, ls.max_bytes, ls.backups)
    from bot import web  # alerts, /metrics and the status page (issue 17), before any event

    web.start(settings)
    code = asyncio.run(_serve(settings))
    web.stop()  # before the exit: see web.stop (an uncaught exception: web.start's hook)
    return code


async def _serve(settings: cfg.Settings) -> int:
    from bot.daemon import Daemon
    from bot.store import Store, StoreLocked, sim_path

    log = logs.get("bot.cli")
    broker: Broker
    clock: SimClock | BrokerClock
    if settings.broker == "sim":
        from bot.broker.sim import make_sim_broker

        broker, clock = make_sim_broker(settings)
        store_path = sim_path(settings.store_path)
        # the embedded sim lives in this process: its positions do not survive a restart,
        # so neither may the strategy state that refers to them
        reset = True
    else:
        from bot.broker.ib import IBBroker  # only the IB path needs ib_async

        broker = IBBroker(settings.ib, strategy=settings.strategy)
        clock = broker.clock
        store_path = settings.store_path
        reset = False
    try:
        store = Store(store_path, exclusive=True, reset=reset)
    except StoreLocked as e:
        log.error("store.locked", path=str(store_path), error=str(e))
        print(f"condorbot: {e}", file=sys.stderr)
        return 1
    if reset:
        log.info("store.reset", path=str(store_path), why="embedded sim starts flat each run")
    from bot.broker.base import BrokerError, LiveAccountRefused

    try:
        daemon = Daemon(settings, broker, clock, store)
        from bot import web

        web.attach(daemon)  # metrics and marks after every step (bot.metrics)
        return await daemon.run()
    except LiveAccountRefused as e:
        log.error("broker.live_account_refused", accounts=e.accounts, error=e.message)
        print(f"condorbot: {e.message}", file=sys.stderr)
        return EXIT_LIVE_ACCOUNT
    except BrokerError as e:  # e.g. no IB Gateway listening after every connect attempt
        log.error("broker.connect_failed", code=e.code, error=e.message)
        print(f"condorbot: cannot reach the broker: {e.message}", file=sys.stderr)
        return 1
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
