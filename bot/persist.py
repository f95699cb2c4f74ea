"""What the daemon writes to its store after a step (`StateWriter`): the risk guard's export,
the strategy state, the trading state, the control mode and the state stamp, in one
transaction, and the campaign's row. Nothing is written while none of it changed."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from bot import logs
from strategies import tvm

log = logs.get("bot.daemon")
# the store keys a write holds, in one transaction
KEYS = ("guard", "strategy_state", "trading_state", "control", "state_since_ns")


class StateWriter:
    """One daemon's writes, and the record of its last write that committed."""

    def __init__(self) -> None:
        self._sig: tuple | None = None  # the signature at the last write (or skip)
        self._saved: tuple | None = None  # what the last write held, but the last NL
        self._values: tuple = ()  # what the last write held, by KEYS

    def write(self, d: Any, now: datetime, force: bool = False) -> None:
        # the last net liquidation moves every tick: it is written with every other change,
        # at each heartbeat and at stop, not on its own. What else `guard.export()` writes is
        # a function of the guard's flags, day, start NL, reduced-on day and order times: when
        # none of those, the strategy state (same object, or equal), the mode and the state
        # stamp changed since the last write, nothing is exported (most steps; issue 16)
        g = d.guard
        since = d.control.since_ns
        sig = (d.state, d.mode, since, g._held, g._daily, g._day, g._start_nl,
               g._reduced_on, tuple(g._orders))
        if not force and sig == self._sig:
            return
        guard = g.export()
        saved = (d.state, {k: v for k, v in guard.items() if k != "last_nl"}, d.mode, since)
        if saved == self._saved and not force:
            self._sig = sig
            return
        # only what changed since the last write that committed (the guard's export holds the
        # last net liquidation: always); `force` writes everything
        last = {} if force or self._saved is None else dict(zip(KEYS, self._values))
        values = (guard, d.state, g.state, d.mode, since)
        try:
            with d.store.tx() as db:
                for key, value in zip(KEYS, values):
                    if key not in last or not (value is last[key] or value == last[key]):
                        d.store.put(key, value, db)
            camp = d.state.campaign
            if camp is not None and ("strategy_state" not in last
                                     or d.state is not last["strategy_state"]):
                ended = d.state.status in (tvm.Status.CLOSED, tvm.Status.COOLDOWN)
                d.store.upsert_campaign(camp.id, d.state.status.value, camp.step,
                                        camp.realized, camp, now, closed=ended)
        except sqlite3.Error as e:
            # the state stays in memory and is written again next time; no new risk meanwhile
            log.error("store.write_failed", what="state", error=str(e), action="REDUCING")
            d.executor.store_failed = str(e)
            return
        self._saved, self._values, self._sig = saved, values, sig
