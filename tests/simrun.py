"""Helpers to run the daemon in-process on the embedded simulator."""

from __future__ import annotations

from bot.broker.sim import make_sim_broker
from bot.daemon import Daemon
from bot.store import Store


def build(settings):
    broker, clock = make_sim_broker(settings)
    store = Store(settings.store_path)
    return Daemon(settings, broker, clock, store)


async def run(settings) -> tuple[int, Daemon]:
    d = build(settings)
    try:
        code = await d.run()
    finally:
        d.store.close()
    return code, d


async def working_entry(settings) -> Daemon:
    """A daemon on the sim clock, 20 minutes into the session, with its entry order working."""
    from strategies.tvm import Status

    d = build(settings)
    await d.broker.connect()
    d.clock.advance(20 * 60)  # past the first 15 minutes of the session
    await d.step()
    assert d.state.status is Status.ENTERING and d.executor.busy
    return d
