"""IBBroker: the Broker protocol over ib_async, for an IB Gateway or TWS *paper* login.

The only module (with its bot/broker/ib_*.py helpers) that imports ib_async.

- Paper only: after every (re)connect TWS must report at least one managed account and each
  must be an IB paper id (``DU`` + digits, `is_paper`); otherwise (live ids, malformed ids
  such as ``DUX``, none at all) the connection is closed, nothing is placed and
  `LiveAccountRefused` is raised (the CLI turns it into exit 3). Every order path checks
  again. No setting turns this off.
- Pacing: every message to TWS goes through one asyncio-throttle pace (`ib_pacing.Pacer`,
  below `max_msgs_per_sec`), the connect-time burst included.
- Orders: combo (BAG) limit orders, BUY at a signed per-unit price, orderRef = the intent's
  idempotency key (one order per orderRef, ever); `order_id` set = modify in place by sending
  placeOrder again with the same orderId. `place` waits for TWS's acknowledgement: a refusal
  raises BrokerError (the order is kept as Inactive with the error text); no answer in
  `timeout` returns the order as PendingSubmit and reconciliation settles it.
- Disconnects (IB's nightly restart included): no orders while disconnected or while TWS has
  lost IB (1100); reconnect with backoff, then resubscribe market data and reconcile open
  orders, executions and positions before `place` works again.
- Time: `clock` follows TWS's server time (`ib_pacing.BrokerClock`), so an accelerated
  emulator drives market time.
- Once per session, an hour after the open, VIX from the SPX chain (Cboe method) is logged
  beside IB's VIX tick as `market.vix_check` (`ib_vix`, in the background).

This module holds the session: connect (the paper check), reconnect, TWS's errors and the
checks before anything is sent. The orders are the `Trading` mixin's (ib_trading), the reads
(server time, snapshots, positions) the `Snapshots` mixin's (ib_snapshots).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from ib_async import IB

from bot import logs
from bot.broker.base import BrokerError, ErrorKind, LiveAccountRefused
from bot.broker.ib_accounts import not_paper
from bot.broker.ib_contracts import Contracts
from bot.broker.ib_errors import INFO, LINE_REFUSED, error_kind, meaning, quiet_ib_async
from bot.broker.ib_market import MarketBook, Plan
from bot.broker.ib_orders import OrderBook
from bot.broker.ib_pacing import BrokerClock, Pacer
from bot.broker.ib_snapshots import Snapshots
from bot.broker.ib_trading import NOT_CONNECTED, Trading
from bot.broker.ib_vix import VixCheck
from bot.config import IBSettings
from strategies.params import StrategyParams

log = logs.get("bot.broker.ib")
IB_LINES = 100  # IB's default of simultaneous market data lines per login


def plan_for(strategy: StrategyParams | None, **kw: Any) -> Plan:
    p = strategy or StrategyParams()
    widths = tuple(dict.fromkeys((float(p.wing_width), float(p.wing_width * p.wing_mult))))
    mults = tuple(dict.fromkeys((p.wing_mult, 1 + (p.wing_mult - 1) / 2, 1.0)))  # roll steps
    return Plan((p.dte_min, p.dte_max), p.short_delta, widths, roll_wing_mults=mults, **kw)


class IBBroker(Trading, Snapshots):
    name = "ib"
    # A roll as one combo would be 8 legs over two expiries; IB's limit for SMART option
    # combos could not be confirmed here, so a roll goes as close-then-open (4 legs each).
    supports_combo_roll = False

    def __init__(self, settings: IBSettings, *, strategy: StrategyParams | None = None,
                 reconnect_delays: Sequence[float] = (1, 2, 5, 10, 30, 60),
                 connect_attempts: int = 5, plan: Plan | None = None) -> None:
        self.s = settings
        self.ib = IB()
        self.clock = BrokerClock()
        self.pacer = Pacer(settings.max_msgs_per_sec)
        self.cx = Contracts(self.ib)
        self.market = MarketBook(self.ib, self.cx, plan or plan_for(strategy), now=self.clock.now)
        self.market.pace_delay = lambda: self.pacer.backlog / self.pacer.limit * self.pacer.period
        self.book = OrderBook()
        self.vix_check = VixCheck(self.ib, rate=self.market.plan.rate, timeout=settings.timeout,
                                  max_lines=lambda: max(1, IB_LINES - len(self.market.lines)))
        self.account = ""
        self.refused: LiveAccountRefused | None = None
        self.reconnects = 0
        self._delays = tuple(reconnect_delays) or (1.0,)
        self._attempts = max(1, connect_attempts)
        self._ready = self._closing = self._connecting = False
        self._link_ok = True
        self._resync: str | None = None  # "orders" (1102) or "all" (1101) after an IB outage
        self._errors: dict[int, tuple[int, str]] = {}
        self._accounts_msg: str | None = None  # TWS's raw managed-accounts list, this attempt
        self._watch_accounts()
        self._reconnect_task: asyncio.Task | None = None
        self._flagged: dict[str, int] = {}
        self.handler_errors: list[str] = []
        quiet_ib_async()
        ev, safe = self.ib, self._safe
        ev.errorEvent += safe(self._on_error)
        ev.disconnectedEvent += safe(self._on_disconnected)
        ev.openOrderEvent += safe(self.book.on_trade)
        ev.orderStatusEvent += safe(self.book.on_trade)
        ev.execDetailsEvent += safe(lambda trade, fill: self.book.on_exec(fill))
        ev.commissionReportEvent += safe(
            lambda trade, fill, rep: self.book.on_commission(fill, rep))
        ev.pendingTickersEvent += safe(self.market.on_ticks)
        for event in (ev.orderStatusEvent, ev.execDetailsEvent, ev.commissionReportEvent):
            event += safe(self.book.notify)  # after the book's own handler: it has the event

    def _watch_accounts(self) -> None:
        """Keep TWS's managed-accounts message as sent: ib_async never completes a connect
        whose list is empty (it just times out), which must be a refusal, not a retry."""
        wrapper = self.ib.wrapper
        seen = wrapper.managedAccounts

        def managed_accounts(accounts_list: str) -> None:
            self._accounts_msg = accounts_list
            seen(accounts_list)

        wrapper.managedAccounts = managed_accounts  # type: ignore[method-assign]

    def _refuse(self, bad: list[str]) -> LiveAccountRefused:
        self._closing = True
        self.ib.disconnect()
        self.pacer.clear()
        self.refused = LiveAccountRefused(bad)
        return self.refused

    def _safe(self, fn: Any) -> Any:
        """eventkit hands a handler's exception to an error event nobody hears: log it."""
        def run(*args: Any) -> None:
            try:
                fn(*args)
            except Exception as e:
                self.handler_errors.append(repr(e))
                log.exception("broker.handler_failed", handler=getattr(fn, "__name__", "?"),
                              error=repr(e))
        return run

    def add_order_listener(self, fn: Callable[[], None]) -> None:
        """`fn()` after every order status, execution and commission report, once the order
        book has folded it in (a fill is complete with its last commission report)."""
        self.book.listeners.append(fn)

    # --- connection ------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._ready and self.ib.isConnected()

    async def connect(self) -> None:
        self._closing = False
        delays = itertools.chain(self._delays, itertools.repeat(self._delays[-1]))
        for attempt in range(1, self._attempts + 1):
            try:
                await self._connect_once()
                return
            except LiveAccountRefused:
                raise
            except BrokerError as e:
                log.warning("broker.connect_failed", attempt=attempt, code=e.code, kind=e.kind,
                            error=e.message)
                if attempt == self._attempts:
                    raise
            await asyncio.sleep(next(delays))

    async def _connect_once(self) -> None:
        s = self.s
        self._connecting = True
        try:
            self.pacer.install(self.ib.client)
            self._accounts_msg = None
            try:
                await self.ib.connectAsync(s.host, s.port, s.client_id, timeout=s.timeout)
            except (TimeoutError, OSError, ConnectionError) as e:
                if self._accounts_msg is not None and not self._accounts_msg.strip(", "):
                    raise self._refuse([]) from None  # TWS said: no managed account
                raise BrokerError(ErrorKind.DISCONNECTED,
                                  f"cannot connect to TWS/IB Gateway at {s.host}:{s.port} "
                                  f"as client {s.client_id}: {e!r}", code=502) from None
            accounts = self.ib.managedAccounts()
            bad = not_paper(accounts)
            if bad is not None:
                raise self._refuse(bad)
            self.refused = None
            self.account = accounts[0]
            self.book.client_id = s.client_id
            self.ib.reqMarketDataType(s.market_data_type)
            await self._sync_clock()
            await self.cx.setup()
            self.market.reset()
            await self.market.refresh(self.clock.now(), self._held())
            gone = self.book.reconcile(self.ib.openTrades(), self.ib.fills())
            await self._sync_clock()
            self._ready, self._link_ok, self._resync = True, True, None
            log.info("broker.connected", host=s.host, port=s.port, client_id=s.client_id,
                     accounts=accounts, server_time=self.clock.now().isoformat(),
                     clock_rate=round(self.clock.rate, 3), lines=len(self.market.lines),
                     open_orders=len(self.ib.openTrades()), positions=len(self.ib.positions()),
                     orders_over=gone)
        except (TimeoutError, ConnectionError) as e:
            raise BrokerError(ErrorKind.DISCONNECTED, f"connection lost while starting: {e!r}",
                              code=NOT_CONNECTED) from None
        finally:
            self._connecting = False

    def _on_disconnected(self) -> None:
        was_ready, self._ready = self._ready, False
        self.pacer.clear()
        self.market.reset()
        self.book.fail_all(ConnectionError("connection to TWS lost"))
        if self._closing or self._connecting or not was_ready:
            return
        log.warning("broker.disconnected", action="no orders; reconnecting with backoff")
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        delays = itertools.chain(self._delays, itertools.repeat(self._delays[-1]))
        for attempt in itertools.count(1):
            await asyncio.sleep(next(delays))
            if self._closing:
                return
            try:
                await self._connect_once()
            except LiveAccountRefused as e:
                log.error("broker.live_account_refused", accounts=e.accounts, error=e.message)
                return
            except BrokerError as e:
                log.warning("broker.reconnect_failed", attempt=attempt, code=e.code,
                            kind=e.kind, error=e.message)
                continue
            self.reconnects += 1
            log.info("broker.reconnected", attempt=attempt, reconnects=self.reconnects)
            return

    async def wait_ready(self) -> None:
        """Until connected and reconciled again (tests; the daemon just retries next tick)."""
        while not self.connected:
            if self._reconnect_task is None or self.refused is not None:
                raise BrokerError(ErrorKind.DISCONNECTED, "not connected and not reconnecting",
                                  code=NOT_CONNECTED)
            await asyncio.shield(self._reconnect_task)

    async def disconnect(self) -> None:
        self._closing = True
        if self.vix_check.task is not None:
            self.vix_check.task.cancel()
            await asyncio.gather(self.vix_check.task, return_exceptions=True)
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            await asyncio.gather(self._reconnect_task, return_exceptions=True)
        if self.ib.isConnected():
            self.ib.disconnect()
        self._ready = False
        await self.pacer.close()

    # --- errors --------------------------------------------------------------------------------
    def _on_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        m = meaning(code)
        handled = req_id > 0 and self.book.on_error(req_id, code, message)
        if code == 1100:
            self._link_ok = False
        elif code in (1101, 1102):
            self._link_ok = True
            self._resync = "all" if code == 1101 or self._resync == "all" else "orders"
        elif code in LINE_REFUSED and req_id > 0:
            key = self.market.refuse(req_id)
            if key:
                log.warning("market.line_refused", contract=key, code=code, meaning=m.name)
        if req_id > 0 and not handled:
            self._errors[req_id] = (code, message)
            while len(self._errors) > 500:
                self._errors.pop(next(iter(self._errors)))
        fields = dict(code=code, meaning=m.name, category=m.category,
                      kind=error_kind(code, message), req_id=req_id, message=message)
        if m.level == INFO:
            log.info("broker.info", **fields)
        elif m.level == "warning":
            log.warning("broker.error", **fields)
        else:
            log.error("broker.error", **fields)

    def _require(self) -> None:
        if self.refused is not None:
            raise self.refused
        if not self.connected:
            raise BrokerError(ErrorKind.DISCONNECTED, "not connected to TWS/IB Gateway: nothing "
                              "is sent until reconnected and reconciled", code=NOT_CONNECTED)
        if not self._link_ok:
            raise BrokerError(ErrorKind.DISCONNECTED, "TWS has lost its connection to IB: nothing "
                              "is sent until it is restored", code=1100)
        bad = not_paper(self.ib.managedAccounts())
        if bad is not None:
            raise LiveAccountRefused(bad)

    async def _resync_now(self) -> None:
        """After TWS regained IB (1101/1102): reconcile orders; 1101 also lost market data."""
        what, self._resync = self._resync, None
        if what is None:
            return
        trades = await asyncio.wait_for(self.ib.reqOpenOrdersAsync(), self.s.timeout)
        fills = await asyncio.wait_for(self.ib.reqExecutionsAsync(), self.s.timeout)
        self.book.reconcile(trades, fills)
        if what == "all":
            self.market.reset()
        log.info("broker.resynced", what=what)

    async def _guard(self, coro: Any) -> Any:
        try:
            return await coro
        except (TimeoutError, ConnectionError) as e:
            raise BrokerError(ErrorKind.DISCONNECTED, f"TWS did not answer: {e!r}",
                              code=NOT_CONNECTED) from None
