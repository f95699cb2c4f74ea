"""SimBroker: the embedded broker. Synthetic market (bot.sim.market), its listed chains and
quotes (bot.sim.chains), fills against bid/ask, Reg-T margin (bot.sim.margin), cash settlement.

Orders: a combo (BAG) limit order is BUY of the combo at a signed per-unit price (debit > 0,
credit < 0); legs may mix SPX options, VIX options and VIX futures, any expiries (calendars,
diagonals). Leg prices are weighted by multiplier / the first leg's multiplier. Orders
fill while SPX options trade, by the one fill model (`bot.sim.fills.FillModel`, `fills`):
a limit at or through the combo's natural price (asks of bought legs minus bids of sold
legs) fills at natural; one between mid and natural may fill at its limit, one draw per
market minute; none fills at mid. The model sets commissions and partial fills too.
`order_id` set modifies that working order in place. Rejections carry an `ErrorKind` and,
as `code`, the IB code TWS would send (the emulator forwards it): NO_SECURITY_DEFINITION 200,
REJECTED 201 (order size, legs), REJECTED_MARGIN 201, INVALID_PRICE 201, CANNOT_MODIFY 104,
NOT_FOUND 135. Marks, the account, margin and settlement are `bot.broker.sim_account`'s
(SPX options settle at the SPX opening print of expiry day, VIX ones at the VIX open).
"""

from __future__ import annotations

import itertools
import math
from datetime import date, datetime
from datetime import time as dtime
from typing import TYPE_CHECKING, Any

from bot import logs
from bot.broker.base import BrokerError, ErrorKind, OrderRequest, OrderState, OrderStatus, WhatIf
from bot.broker.sim_account import NEVER, Accounting
from bot.clock import SimClock
from bot.sim import margin as mg
from bot.sim import scenarios as scn
from bot.sim.chains import ChainBook
from bot.sim.fills import FillModel
from bot.sim.market import Market
from strategies import expiry as xp
from strategies import instruments as ins
from strategies.types import Contract, Fill, Position, Snapshot

if TYPE_CHECKING:
    from bot.config import Settings

log = logs.get("bot.sim")


def _no_def(c: Contract) -> BrokerError:
    return BrokerError(ErrorKind.NO_SECURITY_DEFINITION,
                       f"No security definition has been found for the request: {c.key}", code=200)


class SimBroker(Accounting):
    name = "sim"
    supports_combo_roll = True

    def __init__(
        self,
        clock: SimClock,
        scenario: str | scn.Scenario = "calm",
        seed: int = 7,
        initial_cash: float = 1_000_000.0,
        commission_per_contract: float = 0.65,
        fill_ratio: float = 1.0,
        account_id: str = "DU0000001",
        *,
        commission_per_future: float = 2.25,
        fills: FillModel | None = None,
        max_order_qty: int = 500,
        spx_expiries: int = 4,
        vix_expiries: int = 6,
        history_days: int = 260,
        stride: int = 1,
    ) -> None:
        self.clock = clock
        self.market = Market(scenario, seed, clock.now(), history_days)
        self.cash, self.account_id = initial_cash, account_id
        self.fills = fills or FillModel(seed, commission_per_contract, commission_per_future,
                                        fill_ratio=fill_ratio)  # the one fill model
        self.max_order_qty = max_order_qty
        # `stride`: the minutes apart its reads come (a backtest's tick; any minute may be read)
        self.book = ChainBook(self.market, spx_expiries, vix_expiries, stride)
        self.settlements: list[tuple[datetime, str, int, float]] = []  # time, key, qty, price
        self._positions: dict[str, Position] = {}
        # (the positions dict, its size, its values): `_held_now`
        self._held: tuple[Any, int, tuple[Position, ...]] = (None, 0, ())
        self._sess: tuple[datetime, datetime] | None = None  # `_session`
        self._settle_due: tuple[Any, int, datetime] = (None, 0, NEVER)  # `_settle_expired`
        self._orders: dict[int, OrderState] = {}
        self._live: dict[int, OrderState] = {}  # may still work (a done one goes at the match)
        self._requests: dict[int, OrderRequest] = {}
        self._ids = itertools.count(1)
        self._exec_ids = itertools.count(1)
        self._chain_time: datetime | None = None
        self._synced: datetime | None = None
        self._day_start_value: float | None = None
        self._day: date | None = None
        self._connected = False
        # (the positions tuple of `_held_now`, their requirement)
        self._req_memo: tuple[tuple[Position, ...], mg.Margin] | None = None

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False

    async def server_time(self) -> datetime:
        return self.clock.now()

    def _session(self, now: datetime) -> tuple[datetime, datetime] | None:
        """`xp.spx_option_session` of `now`'s exchange date: the one of the last ask while
        `now` is inside it (a step asks two or three times, every step of a session)."""
        s = xp.session_at(now, self._sess)
        if s is not None:
            self._sess = s
        return s

    def _open_now(self) -> bool:
        now = self.clock.now()
        s = self._session(now)
        return s is not None and s[0] <= now < s[1]  # (xp.is_spx_open)

    # --- market ----------------------------------------------------------------------------
    def _sync(self) -> None:
        now = self.clock.now()
        if self._synced == now:
            return
        self._synced = now
        self.market.advance_to(now)
        if self._chain_time != self.market.time:
            self._chain_time = self.market.time
            self.book.build(self.market.time)
        self._settle_expired(now)
        if self._open_now():
            self._match_working()

    def _quote(self, c: Contract) -> tuple[float, float]:
        try:
            return self.book.quote(c)
        except KeyError:
            raise _no_def(c) from None

    def _combo_prices(self, req: OrderRequest) -> tuple[float, float, list[float]]:
        """(natural, mid, natural leg prices) per combo unit, signed (debit > 0)."""
        natural = mid = 0.0
        m0 = req.legs[0].contract.multiplier
        legs = []
        for leg in req.legs:
            bid, ask = self._quote(leg.contract)
            w = leg.contract.multiplier / m0
            px = ask if leg.ratio > 0 else bid
            legs.append(px)
            natural += leg.ratio * w * px
            mid += leg.ratio * w * (bid + ask) / 2
        return natural, mid, legs

    async def snapshot(self) -> Snapshot:
        self._sync()
        now = self.clock.now()
        session = self._session(now)
        is_open = session is not None and session[0] <= now < session[1]
        since = (now - session[0]).total_seconds() / 60 if session and is_open else 0.0
        return Snapshot(time=now, spx=self.market.spx, vix=self.market.vix,
                        chains=self.book.chains, account=self._account(),
                        positions=self._held_now(),
                        vix_futures=self.book.futures, vix_chains=self.book.vix_chains,
                        bars=self.market.bars, minutes_since_open=since, market_open=is_open)

    def _held_now(self) -> tuple[Position, ...]:
        """The positions, as one tuple while nothing is bought, sold or settled: a fill
        replaces the dict (`_after`), a settlement deletes from it; nothing sets an entry in
        place. Snapshots of steps that change nothing share it (the recorder's count too)."""
        h, pos = self._held, self._positions
        if h[0] is not pos or h[1] != len(pos):
            h = self._held = (pos, len(pos), tuple(pos.values()))
        return h[2]

    async def positions(self) -> list[Position]:
        self._sync()
        return list(self._positions.values())

    # --- orders ----------------------------------------------------------------------------
    def _check(self, req: OrderRequest) -> None:
        if req.qty <= 0 or req.qty > self.max_order_qty:
            raise BrokerError(ErrorKind.REJECTED,
                              f"Order rejected - reason:The order size {req.qty} is not "
                              f"allowed (1 to {self.max_order_qty} contracts)", code=201)
        if not req.legs or any(leg.ratio == 0 for leg in req.legs):
            raise BrokerError(ErrorKind.REJECTED, "Order rejected - reason:Invalid combo legs",
                              code=201)
        if not math.isfinite(req.limit):
            raise BrokerError(ErrorKind.INVALID_PRICE,
                              f"Order rejected - reason:Invalid limit price {req.limit}", code=201)
        for leg in req.legs:
            self._quote(leg.contract)

    def _check_tick(self, req: OrderRequest) -> None:
        """A limit off the instrument's tick grid (`strategies.instruments.combo_tick`) is
        refused, as the exchange does. Orders only: `what_if` prices at any limit (the risk
        guard asks at the unrounded mid)."""
        tick = ins.combo_tick(req.legs, req.limit)
        if not ins.on_grid(req.limit, tick):
            raise BrokerError(ErrorKind.INVALID_PRICE,
                              f"Order rejected - reason:The price {req.limit} does not conform to "
                              f"the minimum price variation {tick} for this contract", code=110)

    def _commission(self, req: OrderRequest, qty: int) -> float:
        fut = sum(abs(leg.ratio) for leg in req.legs if leg.contract.sec_type == "FUT")
        opt = sum(abs(leg.ratio) for leg in req.legs) - fut
        return self.fills.commission(opt * qty, fut * qty)

    def _after(self, req: OrderRequest, qty: int,
               leg_prices: list[float] | None = None) -> dict[str, Position]:
        after = dict(self._positions)
        for i, leg in enumerate(req.legs):
            k = leg.contract.key
            old = after.get(k)
            q0, c0 = (old.qty, old.avg_cost) if old else (0, 0.0)
            dq = leg.ratio * qty
            q = q0 + dq
            px = leg_prices[i] if leg_prices else c0
            if q == 0:
                after.pop(k, None)
                continue
            if q0 == 0 or (q0 > 0) != (q > 0):
                cost = px  # new position, or flipped through zero
            elif (q0 > 0) == (dq > 0):
                cost = (c0 * q0 + px * dq) / q  # adding
            else:
                cost = c0  # reducing
            after[k] = Position(leg.contract, q, cost)
        return after

    async def what_if(self, req: OrderRequest) -> WhatIf:
        self._sync()
        self._check(req)
        before = self._margin(self._positions)
        after = self._margin(self._after(req, req.qty))
        return WhatIf(after.init - before.init, after.maint - before.maint, after.init,
                      after.maint, self._commission(req, req.qty))

    def _check_margin(self, req: OrderRequest, qty: int) -> None:
        before = self._margin(self._positions)
        after = self._margin(self._after(req, qty))
        if after.init <= before.init + 1e-6:
            return  # reduces (or keeps) the requirement: always accepted
        natural, mid, _ = self._combo_prices(req)
        m0 = req.legs[0].contract.multiplier
        # equity after the trade: the half-spread paid to cross and the commission are lost
        equity = self._value() - (natural - mid) * m0 * qty - self._commission(req, qty)
        if after.init > equity:
            raise BrokerError(ErrorKind.REJECTED_MARGIN,
                              "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER "
                              "TO OBTAIN THE DESIRED POSITION YOUR EQUITY WITH LOAN VALUE "
                              f"[{equity:.2f} USD] MUST EXCEED THE INITIAL MARGIN "
                              f"[{after.init:.2f} USD]", code=201)

    async def place(self, req: OrderRequest) -> OrderState:
        self._sync()
        self._check(req)
        self._check_tick(req)
        if req.order_id is not None:  # modify in place, as IB does for a re-sent live id
            st = self._orders.get(req.order_id)
            if st is None or not st.working:
                raise BrokerError(ErrorKind.CANNOT_MODIFY,
                                  f"Cannot modify a filled order. orderId={req.order_id}",
                                  code=104)
            old = self._requests[st.order_id]
            if old.legs != req.legs:
                raise BrokerError(ErrorKind.REJECTED,
                                  "Order rejected - reason:Cannot change the legs of a combo",
                                  code=201)
            self._check_margin(req, max(0, req.qty - st.filled))
            st.limit = req.limit
            st.qty = max(req.qty, st.filled)
            self._requests[st.order_id] = req
        else:
            self._check_margin(req, req.qty)
            oid = next(self._ids)
            st = OrderState(oid, req.order_ref, OrderStatus.WORKING, req.qty, limit=req.limit)
            self._orders[oid] = st
            self._live[oid] = st
            self._requests[oid] = req
        if self._open_now():
            self._try_fill(st)
        return st

    async def cancel(self, order_id: int) -> None:
        st = self._orders.get(order_id)
        if st is None:
            raise BrokerError(ErrorKind.NOT_FOUND, f"Can't find order with id = {order_id}",
                              code=135)
        if st.working:
            st.status = OrderStatus.CANCELLED
            st.error = "Order Canceled - reason:"

    async def orders(self) -> list[OrderState]:
        self._sync()
        return list(self._orders.values())

    def _match_working(self) -> None:
        live = self._live
        for oid, st in list(live.items()):
            if st.working:
                self._try_fill(st)
            if not st.working:
                del live[oid]

    def _try_fill(self, st: OrderState) -> None:
        req = self._requests[st.order_id]
        try:
            natural, mid, legs = self._combo_prices(req)
        except BrokerError as e:
            st.status, st.error = OrderStatus.CANCELLED, e.message
            return
        key = f"{req.order_ref}#{st.order_id}@{self.market.time:%Y%m%dT%H%M}"
        price = self.fills.fill(st.limit, mid, natural, len(req.legs), key)
        if price is None:
            return
        qty = self.fills.quantity(st.remaining)
        m0 = req.legs[0].contract.multiplier
        weights = [abs(leg.ratio) * leg.contract.multiplier / m0 for leg in req.legs]
        adj = (price - natural) / sum(weights)
        leg_prices = [px + (adj if leg.ratio > 0 else -adj) for px, leg in zip(legs, req.legs)]
        commission = self._commission(req, qty)
        self.cash -= price * m0 * qty + commission
        self._positions = self._after(req, qty, leg_prices)
        fill = Fill(req.order_ref, qty, price, commission, self.clock.now(),
                    f"sim.{next(self._exec_ids):06d}")
        st.avg_price = (st.avg_price * st.filled + price * qty) / (st.filled + qty)
        st.filled += qty
        st.fills.append(fill)
        if st.remaining == 0:
            st.status = OrderStatus.FILLED


def make_sim_broker(settings: Settings) -> tuple[SimBroker, SimClock]:
    """The simulated broker and its clock, from a `bot.config.Settings`: the one factory the
    CLI, backtests, benches and tests use. The clock starts at 09:30 New York on `sim.start`
    (or the next SPX option session when that day has none) and runs at `sim.speed`; a
    replay (`replay:FILE.csv`) starts on its file's first anchored date instead: it runs on
    the file's own dates and that era's exchange calendar."""
    s = settings.sim
    scenario = scn.get(s.scenario)
    first = scenario.dates[0] if scenario.dates else s.start
    start = datetime.combine(first, dtime(9, 30), tzinfo=xp.NY)
    if xp.spx_option_session(first) is None:
        start = xp.next_spx_open(start)
    if scenario.dates:
        log.info("sim.replay_dates", scenario=scenario.name, first=str(scenario.dates[0]),
                 last=str(scenario.dates[-1]), sessions=len(scenario.dates),
                 configured_start=str(s.start))
    clock = SimClock(start, None if s.speed == "max" else float(s.speed))
    tick = settings.tick_seconds  # the daemon steps at open + j x tick
    broker = SimBroker(clock, scenario, s.seed, s.initial_cash,
                       fills=FillModel.from_settings(s),
                       stride=int(tick // 60) if tick % 60 == 0 else 1)
    return broker, clock
