"""A TWS-API server (IB Gateway emulator) backed by a SimBroker, over loopback TCP.

It speaks the socket protocol as ib_async 2.1 (or any TWS API client) uses it, at server
version 178 (see ../shared/TWS-PROTOCOL.md and the `bot.tws` package): the handshake (closed
after `handshake_timeout` seconds if incomplete), the connect-time requests, contract details,
option parameters, streaming and snapshot market data with model greeks, daily bars, what-if
and real combo orders in either price convention (modify in place, cancel, DAY orders expire at
the close), the openOrder / orderStatus / execDetails / commissionReport stream, completed
orders and executions of the current day, positions, account updates and account summaries.
The requests answered are listed in bot/sim/gateway_requests.py; any other gets IB's 503.

Time: the SimBroker's SimClock. With `speed` set, a driver task moves it `speed` simulated
seconds per wall second (jumping over closed hours with `skip_closed`); with speed None the
clock only moves through `advance()` (tests). reqCurrentTime answers the simulated time.

Measurements and faults for tests: every client message is counted per session
(`max_rate`: most messages within any one second), every placeOrder is journaled
(`journal`, and one JSON line each in the journal file), and `faults` can delay replies,
reject orders, drop connections, fail market data requests or override quotes;
`send_error` pushes any error code, `drop` closes connections, `accounts` may be live ids.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.clock import SimClock
from bot.sim.gateway_book import Registry
from bot.sim.gateway_feed import Feed, Sub
from bot.sim.gateway_orders import OrderDesk
from bot.sim.gateway_requests import Answers
from bot.tws import requests as dec
from bot.tws.encode_session import error_msg
from bot.tws.framing import (
    ProtocolError,
    handshake_reply,
    negotiate_version,
    read_hello,
    read_message,
)
from bot.tws.wire import ParsedOrder
from strategies import expiry as xp
from strategies.types import Contract, Snapshot

log = logging.getLogger("bot.sim.gateway")
HANDSHAKE_TIMEOUT = 5.0  # seconds a connection may take to send API\0, its versions and startApi


@dataclass
class Faults:
    delay: float = 0.0  # seconds before handling each client message
    drop_after_orders: int = 0  # close the session after acknowledging this many more orders
    market_data_error: int = 0  # answer option market data requests with this error code
    quotes: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (bid, ask)


class Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.client_id = -1
        self.version = 0
        self.md_type = 1
        self.subs: dict[int, Sub] = {}
        self.account_sub = False
        self.multi_subs: set[int] = set()
        self.summary_subs: dict[int, str] = {}  # reqAccountSummary id -> its tags
        self.positions_sub = False
        self.started = False  # startApi received: the handshake is complete
        self.times: deque[float] = deque()
        self.messages = 0
        self.max_rate = 0
        self.open = True

    def count(self, now: float) -> None:
        self.messages += 1
        self.times.append(now)
        while self.times and self.times[0] <= now - 1.0:
            self.times.popleft()
        self.max_rate = max(self.max_rate, len(self.times))

    def write(self, data: bytes) -> None:
        if self.open and data and not self.writer.is_closing():
            self.writer.write(data)

    def close(self) -> None:
        self.open = False
        if not self.writer.is_closing():
            self.writer.close()


class Gateway(Feed, Answers):
    def __init__(self, sim: Any, *, speed: float | None = 60.0, accounts: list[str] | None = None,
                 journal: str | Path | None = None, skip_closed: bool = True,
                 faults: Faults | None = None, step: float = 0.05,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT) -> None:
        self.sim = sim
        self.clock: SimClock = sim.clock
        self.speed, self.skip_closed, self.step = speed, skip_closed, step
        self.handshake_timeout = handshake_timeout
        self.accounts = accounts or [sim.account_id]
        self.faults = faults or Faults()
        self.reg = Registry()
        self.desk = OrderDesk(sim, self.reg, self.accounts[0], self._send_client, journal)
        self.sessions: list[Session] = []  # every session ever opened (for the statistics)
        self.failures: list[str] = []  # requests the emulator failed to answer (its own bugs)
        self.snap: Snapshot | None = None
        self._next_id: dict[int, int] = {}
        self._positions: dict[str, tuple[int, float]] = {}
        self._held: dict[str, Contract] = {}
        self._account: tuple[tuple[str, str, str], ...] | None = None
        self._pushed = 0.0
        self._server: asyncio.base_events.Server | None = None
        self._anchor: tuple[float, datetime] | None = None  # (loop time, sim time) when driven
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        await self.pump()
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.speed:
            self.spawn(self._drive())
        return self.port

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def journal(self) -> list[dict[str, Any]]:
        return self.desk.journal

    @property
    def max_rate(self) -> int:
        return max((s.max_rate for s in self.sessions), default=0)

    @property
    def live(self) -> list[Session]:
        return [s for s in self.sessions if s.open]

    def drop(self, client_id: int | None = None) -> None:
        """Fault: close the connection(s), as a gateway restart would."""
        for s in self.live:
            if client_id is None or s.client_id == client_id:
                s.close()

    def send_error(self, code: int, message: str, req_id: int = -1) -> None:
        for s in self.live:
            s.write(error_msg(req_id, code, message))

    def reject_orders(self, n: int) -> None:
        self.desk.reject_next = n

    # --- time ----------------------------------------------------------------------------------
    def now(self) -> datetime:
        """Server time: continuous while driven (the SimClock itself moves in steps)."""
        if self._anchor is None:
            return self.clock.now()
        t0, s0 = self._anchor
        elapsed = (asyncio.get_running_loop().time() - t0) * float(self.speed or 0)
        return max(s0 + timedelta(seconds=elapsed), self.clock.now())

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        self._anchor = (loop.time(), self.clock.now())
        while True:
            await asyncio.sleep(self.step)
            target = self.now()
            if self.skip_closed and not xp.is_spx_open(target):
                target = xp.next_spx_open(target)
                self._anchor = (loop.time(), target)
            try:
                await self._move_to(target)
            except Exception as e:  # the emulator keeps serving
                log.exception("gateway.pump_failed")
                self.failures.append(f"pump: {e!r}")

    async def advance(self, seconds: float) -> None:
        """Manual clock (speed None): move simulated time, then report what changed."""
        await self._move_to(self.clock.now() + timedelta(seconds=seconds))

    async def _move_to(self, target: datetime) -> None:
        """Move the clock to `target`, stopping at every close a DAY order expires at on the
        way (fills up to the close are reported, then the order is cancelled), then report."""
        while (close := self.desk.next_expiry()) is not None and close <= target:
            if close > self.clock.now():
                self.clock.set(close)
                await self.pump()
            await self.desk.expire(max(close, self.clock.now()))
        if target > self.clock.now():
            self.clock.set(target)
        await self.pump()

    async def pump(self) -> None:
        snap = await self.sim.snapshot()
        states = {st.order_id: st for st in await self.sim.orders()}
        self.snap = snap
        filled = self.desk.pump(states, snap)
        now = asyncio.get_running_loop().time()
        for s in self.live:
            for req_id, sub in s.subs.items():
                s.write(self._ticks(s, req_id, sub, changed_only=True))
        moved = self._push_positions(snap)
        if filled or moved or now - self._pushed >= 0.5:
            self._push_account(snap)
            self._pushed = now

    def _send_client(self, client_id: int, data: bytes) -> None:
        for s in self.live:
            if s.client_id == client_id:
                s.write(data)

    # --- the connection ------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        s = Session(reader, writer)
        self.sessions.append(s)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.handshake_timeout, self._handshake_expired, s)
        try:
            s.version = negotiate_version(await read_hello(reader))
            s.write(handshake_reply(s.version, self.now()))
            while s.open and (fields := await read_message(reader)) is not None:
                s.count(loop.time())
                req = dec.decode_request(fields, s.version)
                s.started = s.started or isinstance(req, dec.StartApi)  # the client's part done
                if self.faults.delay:
                    await asyncio.sleep(self.faults.delay)
                try:
                    s.write(b"".join(await self._answer(s, req)))
                except Exception as e:  # a bug here must not drop the client
                    log.exception("gateway.request_failed: %r", req)
                    self.failures.append(f"{type(req).__name__}: {e!r}")
                    s.write(error_msg(getattr(req, "reqId", getattr(req, "orderId", -1)),
                                          321, f"Error validating request: {e!r}"))
                    continue
                if isinstance(req, ParsedOrder | dec.CancelOrder):
                    await self.pump()  # positions and account values follow a fill at once
        except ProtocolError as e:
            log.warning("gateway.protocol_error client_id=%s: %s", s.client_id, e)
            self.failures.append(f"protocol: {e}")
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            log.info("gateway.session_ended client_id=%s: %r", s.client_id, e)
        except asyncio.CancelledError:
            pass
        finally:
            timer.cancel()
            s.close()

    def _handshake_expired(self, s: Session) -> None:
        """A connection that has not sent API\\0, its version range and startApi in time is
        closed (a port scanner or a stuck client must not hold a session forever)."""
        if not s.started and s.open:
            log.warning("gateway.handshake_timeout after %.1fs (version %s)",
                        self.handshake_timeout, s.version or "not sent")
            s.close()

    def _next_order_id(self, client_id: int) -> int:
        return self._next_id.get(client_id, 1)

    def _saw_id(self, client_id: int, order_id: int) -> None:
        self._next_id[client_id] = max(self._next_order_id(client_id), order_id + 1)
