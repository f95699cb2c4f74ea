"""Daemon._persist writes only the keys that changed since its last committed write: after
every step the store must still hold exactly what the daemon holds (a skipped key that had
changed would leave the store behind, and a restart would come back to old state)."""

from __future__ import annotations

from bot.store import Store
from strategies.tvm import Status
from tests.simrun import build

KEYS = ("strategy_state", "trading_state", "control", "state_since_ns")


def _stored(store: Store) -> dict[str, object]:
    return {k: store.get(k) for k in KEYS}


def _held(d) -> dict[str, object]:
    return {"strategy_state": d.state, "trading_state": d.guard.state, "control": d.mode,
            "state_since_ns": d.control.since_ns}


async def test_the_store_follows_every_change_while_unchanged_keys_are_not_rewritten(
        settings_factory) -> None:
    d = build(settings_factory(sim={"speed": "max"}))
    puts: list[str] = []
    put = d.store.put
    d.store.put = lambda key, value, db=None: (puts.append(key), put(key, value, db))[1]
    try:
        await d.broker.connect()
        states = set()
        for _ in range(120):  # a session's first 2 hours at 1-minute steps: entry, fills
            d.clock.advance(60)
            await d.step()
            d._persist(d.clock.now(), force=False)
            assert _stored(d.store) == _held(d)
            states.add(d.state.status)
        assert Status.OPEN in states or Status.ENTERING in states  # the state did change
        # the guard (last net liquidation) goes with every write; the mode never changed, so
        # it was written once (the first write), not once per write
        assert puts.count("guard") >= 2 and puts.count("control") == 1
        d._persist(d.clock.now(), force=True)  # force: every key again
        assert puts.count("control") == 2
    finally:
        d.store.close()
