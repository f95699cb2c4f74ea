"""Message pacing and the broker clock for IBBroker.

`Pacer` puts every message the ib_async Client sends (requests, orders, cancels, including
the burst of requests inside connectAsync) through one asyncio-throttle `Throttler`. It paces
evenly, in bursts of at most a few messages, at `headroom` (80%) of `max_msgs_per_sec`: the
server counts messages when it reads them, and a server that reads late sees two bursts
closer together than they were sent; even pacing with headroom keeps its per-second count
below the cap through read delays of ~0.15 s. ib_async's own throttle is switched off, so
there is one pace. Messages still queued when the connection drops are discarded, never sent
on the next connection.

`BrokerClock` follows the broker's server time: now() = last server time + wall time since
then x the observed rate. The rate is 1 for a real gateway and the speed of an accelerated
emulator (measured from successive reqCurrentTime answers, re-anchored when the server time
jumps, e.g. over a weekend the emulator skipped).
"""

from __future__ import annotations

import asyncio
import math
import struct
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from asyncio_throttle import Throttler


class Pacer:
    def __init__(self, max_msgs_per_sec: float, headroom: float = 0.8) -> None:
        self.rate = max_msgs_per_sec * headroom  # messages per second, on average
        self.limit = max(1, min(4, math.floor(self.rate / 10)))  # burst size
        self.period = self.limit / self.rate  # seconds per burst
        self.throttler = Throttler(rate_limit=self.limit, period=self.period, retry_interval=0.002)
        self._queue: asyncio.Queue[str] | None = None
        self._task: asyncio.Task | None = None
        self._client: Any = None
        self.sent = 0

    def install(self, client: Any) -> None:
        """Route `client.sendMsg` through the throttle (idempotent)."""
        self._client = client
        client.MaxRequests = 0  # ib_async's own throttle off: this one paces
        client.sendMsg = self._enqueue
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def _enqueue(self, msg: str | None) -> None:
        if msg and self._queue is not None:
            self._queue.put_nowait(msg)

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            msg = await self._queue.get()
            async with self.throttler:
                conn = self._client.conn
                if conn.isConnected():
                    data = msg.encode()
                    conn.sendMsg(struct.pack(">I", len(data)) + data)
                    self.sent += 1

    @property
    def backlog(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def clear(self) -> None:
        """Forget queued messages (the connection they were meant for is gone)."""
        if self._queue is not None:
            while not self._queue.empty():
                self._queue.get_nowait()

    async def close(self) -> None:
        self.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


class BrokerClock:
    """Market time from the broker's server time (see module docstring)."""

    simulated = False

    def __init__(self, min_move: float = 120.0, min_wall: float = 20.0) -> None:
        self.rate = 1.0
        self.min_move, self.min_wall = min_move, min_wall  # enough for a 1 s resolution
        self._last: tuple[float, datetime] | None = None  # (monotonic, server time)
        self._anchor: tuple[float, datetime] | None = None
        self._measured = False
        self.jumped = False  # the last observation found the server clock jumped forward

    @property
    def speed(self) -> float:
        return self.rate

    @property
    def measured(self) -> bool:
        """The rate has been measured (until then `now()` between reads is a guess at 1x and
        a jump cannot be told from a fast clock)."""
        return self._measured

    @property
    def offset(self) -> timedelta:
        """Server time minus local wall time (RealClock's notion)."""
        return self.now() - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) if self._last is None else self._at(time.monotonic())

    def _at(self, mono: float) -> datetime:
        assert self._last is not None
        return self._last[1] + timedelta(seconds=(mono - self._last[0]) * self.rate)

    def observe(self, server: datetime, mono: float | None = None) -> None:
        """A server time (1 s resolution) read at monotonic time `mono`."""
        mono = time.monotonic() if mono is None else mono
        server = server.astimezone(UTC)
        self.jumped = False
        if self._last is not None and self._measured:
            predicted = self._at(mono)
            elapsed = (mono - self._last[0]) * self.rate
            ahead = (server - predicted).total_seconds()
            if abs(ahead) > 60.0 + 0.5 * elapsed:
                self._anchor = None  # the server clock jumped: measure from here
                self.jumped = ahead > 0
        if self._anchor is None:
            self._anchor = (mono, server)
        else:
            wall = mono - self._anchor[0]
            moved = (server - self._anchor[1]).total_seconds()
            if wall > 0 and (moved >= self.min_move or wall >= self.min_wall):
                rate = moved / wall
                self.rate = 1.0 if abs(rate - 1.0) < 0.1 else max(rate, 1e-6)
                self._measured = True
        # server time has a 1 s resolution: no small steps backwards, larger ones are real
        current = self._at(mono) if self._last is not None else server
        if current - timedelta(seconds=1) < server < current:
            server = current
        self._last = (mono, server)

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of market time."""
        await asyncio.sleep(max(0.0, seconds) / max(self.rate, 1e-6))
