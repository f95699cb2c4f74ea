"""A TWS-API server (IB Gateway emulator) backed by a SimBroker, over loopback TCP.

It speaks the subset of the socket protocol that ib_async 2.1 and `IBBroker` use, at server
version 178 (see ../shared/TWS-PROTOCOL.md and the `bot.tws` package): handshake, the connect-time
requests, contract details, option parameters, streaming and snapshot market data with model
greeks, daily bars, what-if and real combo orders (modify in place, cancel), the openOrder /
orderStatus / execDetails / commissionReport stream, positions and account updates, errors.

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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.sim.gateway_book import INDEXES, Registry, daily_bars, option_params
from bot.sim.gateway_feed import Feed, Sub
from bot.sim.gateway_orders import OrderDesk
from bot.tws import requests as dec
from bot.tws.encode_account import (
    account_download_end,
    account_update_multi,
    account_update_multi_end,
    position,
    position_end,
    update_account_time,
    update_account_value,
    update_portfolio,
)
from bot.tws.encode_market import (
    contract_details,
    contract_details_end,
    historical_data,
    market_data_type,
    security_definition_option_parameter,
    security_definition_option_parameter_end,
    tick_snapshot_end,
)
from bot.tws.encode_orders import completed_orders_end, exec_details_end, open_order_end
from bot.tws.encode_session import current_time, error_msg, managed_accounts, next_valid_id
from bot.tws.framing import (
    ProtocolError,
    handshake_reply,
    make_msg,
    negotiate_version,
    read_hello,
    read_message,
)
from bot.tws.wire import InMsg, ParsedOrder
from strategies import expiry as xp
from strategies.types import Contract, Snapshot

log = logging.getLogger("bot.sim.gateway")
FARM_OK = ((2104, "Market data farm connection is OK:usopt"),
           (2106, "HMDS data farm connection is OK:ushmds"),
           (2158, "Sec-def data farm connection is OK:secdefnj"))


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
        self.positions_sub = False
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


class Gateway(Feed):
    def __init__(self, sim: Any, *, speed: float | None = 60.0, accounts: list[str] | None = None,
                 journal: str | Path | None = None, skip_closed: bool = True,
                 faults: Faults | None = None, step: float = 0.05) -> None:
        self.sim, self.clock = sim, sim.clock
        self.speed, self.skip_closed, self.step = speed, skip_closed, step
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
        self._account: tuple | None = None
        self._pushed = 0.0
        self._server: asyncio.base_events.Server | None = None
        self._anchor: tuple[float, datetime] | None = None  # (loop time, sim time) when driven
        self._tasks: set[asyncio.Task] = set()
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

    def spawn(self, coro: Any) -> asyncio.Task:
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
        ahead = s0 + timedelta(seconds=(asyncio.get_running_loop().time() - t0) * float(self.speed or 0))
        return max(ahead, self.clock.now())

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        self._anchor = (loop.time(), self.clock.now())
        while True:
            await asyncio.sleep(self.step)
            target = self.now()
            if self.skip_closed and not xp.is_spx_open(target):
                target = xp.next_spx_open(target)
                self._anchor = (loop.time(), target)
            if target > self.clock.now():
                self.clock.set(target)
            try:
                await self.pump()
            except Exception as e:  # the emulator keeps serving
                log.exception("gateway.pump_failed")
                self.failures.append(f"pump: {e!r}")

    async def advance(self, seconds: float) -> None:
        """Manual clock (speed None): move simulated time, then report what changed."""
        self.clock.advance(seconds)
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
        try:
            s.version = negotiate_version(await read_hello(reader))
            s.write(handshake_reply(s.version, self.now()))
            while s.open and (fields := await read_message(reader)) is not None:
                s.count(loop.time())
                if self.faults.delay:
                    await asyncio.sleep(self.faults.delay)
                req = dec.decode_request(fields, s.version)
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
            s.close()

    def _next_order_id(self, client_id: int) -> int:
        return self._next_id.get(client_id, 1)

    def _saw_id(self, client_id: int, order_id: int) -> None:
        self._next_id[client_id] = max(self._next_order_id(client_id), order_id + 1)

    async def _answer(self, s: Session, r: Any) -> list[bytes]:
        snap = self.snap
        assert snap is not None
        acct = self.accounts[0]
        match r:
            case dec.StartApi(clientId=cid):
                if any(o.client_id == cid and o is not s for o in self.live):
                    s.write(error_msg(-1, 326, f"Unable to connect as the client id {cid} "
                                                   "is already in use. Retry with a unique id."))
                    s.close()
                    return []
                s.client_id = cid
                return [next_valid_id(self._next_order_id(cid)),
                        managed_accounts(self.accounts),
                        *(error_msg(-1, code, text) for code, text in FARM_OK)]
            case dec.ReqIds():
                return [next_valid_id(self._next_order_id(s.client_id))]
            case dec.NoArgRequest(msgId=InMsg.REQ_CURRENT_TIME):
                return [current_time(self.now())]
            case dec.NoArgRequest(msgId=InMsg.REQ_POSITIONS):
                s.positions_sub = True
                return [*(position(acct, self.reg.wire(p.contract), p.qty,
                                       p.avg_cost * p.contract.multiplier) for p in snap.positions),
                        position_end()]
            case dec.NoArgRequest(msgId=InMsg.CANCEL_POSITIONS):
                s.positions_sub = False
            case dec.NoArgRequest(msgId=InMsg.REQ_OPEN_ORDERS | InMsg.REQ_ALL_OPEN_ORDERS as m):
                states = {st.order_id: st for st in await self.sim.orders()}
                cid = s.client_id if m == InMsg.REQ_OPEN_ORDERS else None
                return [*self.desk.open_orders(cid, states), open_order_end()]
            case dec.NoArgRequest(msgId=InMsg.REQ_MANAGED_ACCTS):
                return [managed_accounts(self.accounts)]
            case dec.NoArgRequest(msgId=InMsg.REQ_GLOBAL_CANCEL):
                out = []
                for cid, oid in [k for k in self.desk.orders if k[0] == s.client_id]:
                    out += await self.desk.cancel(cid, oid)
                return out
            case dec.ReqCompletedOrders():
                return [completed_orders_end()]
            case dec.ReqAccountUpdates(subscribe=sub):
                s.account_sub = sub
                if not sub:
                    return []
                vals = [update_account_value(k, v, c, acct)
                        for k, v, c in self._account_values(snap)]
                port = []
                for p in snap.positions:
                    c, m = p.contract, p.contract.multiplier
                    mark = self._mark(c)
                    port.append(update_portfolio(self.reg.wire(c), p.qty, mark, p.qty * mark * m,
                                                     p.avg_cost * m, p.qty * (mark - p.avg_cost) * m,
                                                     0.0, acct))
                return [*vals, *port, update_account_time(snap.time),
                        account_download_end(acct)]
            case dec.ReqAccountUpdatesMulti(reqId=rid):
                s.multi_subs.add(rid)
                return [*(account_update_multi(rid, acct, "", k, v, c)
                          for k, v, c in self._account_values(snap)),
                        account_update_multi_end(rid)]
            case dec.CancelById(msgId=InMsg.CANCEL_ACCOUNT_UPDATES_MULTI, reqId=rid):
                s.multi_subs.discard(rid)
            case dec.ReqExecutions(reqId=rid, clientId=cid):
                return [*self.desk.executions(cid, rid), exec_details_end(rid)]
            case dec.ReqContractDetails(reqId=rid, contract=c):
                found = self.reg.resolve(c, snap)
                if not found:
                    return [error_msg(rid, 200, "No security definition has been found "
                                                    "for the request")]
                return [*(contract_details(rid, self.reg.details(w)) for w in found),
                        contract_details_end(rid)]
            case dec.ReqSecDefOptParams(reqId=rid, underlyingSymbol=sym):
                und = INDEXES.get(sym, (0, ""))[0]
                return [*(security_definition_option_parameter(rid, ex, und, tc, "100", e, k)
                          for ex, tc, e, k in option_params(sym, snap)),
                        security_definition_option_parameter_end(rid)]
            case dec.ReqMarketDataType(marketDataType=t):
                s.md_type = t
            case dec.ReqMktData() as m:
                return self._mkt_data(s, m, snap)
            case dec.CancelById(msgId=InMsg.CANCEL_MKT_DATA, reqId=rid):
                s.subs.pop(rid, None)
            case dec.ReqHistoricalData(reqId=rid, contract=c, durationStr=dur):
                hit = self.reg.by_wire(c) if c.conId else (c.symbol if c.secType == "IND" else None)
                sym = hit if isinstance(hit, str) else ""  # daily bars for the indexes only
                bars = daily_bars(sym, self.sim.market.bars, dur)
                if not bars:
                    return [error_msg(rid, 162, "Historical Market Data Service error "
                                                    f"message:HMDS query returned no data: {sym}")]
                return [historical_data(rid, bars)]
            case ParsedOrder(whatIf=True) as p:
                self.desk.record(p, s.client_id, self.clock.now())
                self._saw_id(s.client_id, p.orderId)
                return await self.desk.what_if(p, s.client_id, snap)
            case ParsedOrder() as p:
                self.desk.record(p, s.client_id, self.clock.now())
                self._saw_id(s.client_id, p.orderId)
                out = await self.desk.place(p, s.client_id, snap)
                if self.faults.drop_after_orders > 0:
                    self.faults.drop_after_orders -= 1
                    if self.faults.drop_after_orders == 0:
                        s.write(b"".join(out))
                        s.close()
                        return []
                return out
            case dec.CancelOrder(orderId=oid):
                return await self.desk.cancel(s.client_id, oid)
            case dec.UnknownRequest(msgId=62, fields=f) if len(f) >= 3:  # reqAccountSummary
                rid = int(f[2])
                return [*(make_msg(63, 1, rid, acct, k, v, c) for k, v, c in self._account_values(snap)),
                        make_msg(64, 1, rid)]
        return []

    def _mkt_data(self, s: Session, m: dec.ReqMktData, snap: Snapshot) -> list[bytes]:
        target = self.reg.by_wire(m.contract) if m.contract.conId else None
        if target is None:
            found = self.reg.resolve(m.contract, snap)
            target = self.reg.by_wire(found[0]) if len(found) == 1 else None
        if target is None:
            return [error_msg(m.reqId, 200, "No security definition has been found for "
                                                "the request")]
        if not isinstance(target, str) and target.sec_type == "OPT" and self.faults.market_data_error:
            code = self.faults.market_data_error
            return [error_msg(m.reqId, code, "Requested market data is not subscribed.")]
        sub = Sub(target)
        out = [market_data_type(m.reqId, s.md_type), self._ticks(s, m.reqId, sub, False)]
        if m.snapshot:
            out.append(tick_snapshot_end(m.reqId))
        else:
            s.subs[m.reqId] = sub
        return out
