"""SimBroker: the embedded broker. Synthetic market, fills against bid/ask, Reg-T spread margin.

Fills: a combo limit order (BUY the combo, signed price) fills when its limit is at or through
the combo's natural price (sum of asks for bought legs minus bids for sold legs); it fills at
the natural plus `slippage`, never worse than the limit. `fill_ratio` < 1 fills that share
of the remaining quantity per evaluation (partial fills). Working orders are re-evaluated
whenever simulated time moves.

Margin (Reg-T for defined-risk option spreads, as IB applies it to SPX): per expiry, the
requirement is the worst payoff at expiry of the positions of that expiry, evaluated at every
strike and the extremes, i.e. for an iron condor max(put width, call width) x multiplier x qty.
Premium received is cash and is not netted. Initial = maintenance for these spreads.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import numpy as np

from bot.broker.base import BrokerError, OrderRequest, OrderState, WhatIf
from bot.clock import SimClock
from bot.sim.market import Market
from strategies import expiry as xp
from strategies.pricing import bs_price, greeks
from strategies.types import Account, Chain, Contract, Fill, Position, Snapshot

STRIKE_STEP = 5.0


def tick_round(price: np.ndarray | float) -> np.ndarray:
    """SPX option ticks: 0.05 below 3.00, 0.10 at or above."""
    p = np.asarray(price, dtype=float)
    tick = np.where(p < 3.0, 0.05, 0.10)
    return np.round(np.round(p / tick) * tick, 2)


class SimBroker:
    name = "sim"
    supports_combo_roll = True

    def __init__(
        self,
        clock: SimClock,
        scenario: str = "calm",
        seed: int = 7,
        initial_cash: float = 1_000_000.0,
        commission_per_contract: float = 0.65,
        slippage: float = 0.0,
        fill_ratio: float = 1.0,
        account_id: str = "DU0000001",
    ) -> None:
        self.clock = clock
        self.market = Market(scenario, seed, clock.now())
        self.cash = initial_cash
        self.commission = commission_per_contract
        self.slippage = slippage
        self.fill_ratio = fill_ratio
        self.account_id = account_id
        self._positions: dict[str, Position] = {}
        self._orders: dict[int, OrderState] = {}
        self._requests: dict[int, OrderRequest] = {}
        self._ids = itertools.count(1)
        self._exec_ids = itertools.count(1)
        self._chains: dict = {}
        self._chain_time: datetime | None = None
        self._day_start_value: float | None = None
        self._day = None
        self._connected = False

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

    # --- market ----------------------------------------------------------------------------
    def _sync(self) -> None:
        now = self.clock.now()
        if self._chain_time == now:
            return
        self.market.advance_to(now)
        self._chains = self._build_chains(now)
        self._chain_time = now
        self._settle_expired(now)
        self._match_working()

    def _build_chains(self, now: datetime) -> dict:
        """Every listed strike of the next four SPX monthlies, priced in one vectorized call."""
        S, r = self.market.spx, self.market.r
        lo = np.floor(S * 0.75 / STRIKE_STEP) * STRIKE_STEP
        hi = np.ceil(S * 1.20 / STRIKE_STEP) * STRIKE_STEP
        strikes = np.arange(lo, hi + STRIKE_STEP, STRIKE_STEP)
        n = len(strikes)
        today = xp.exchange_date(now)
        expiries = [(e, xp.year_fraction(e, now)) for e in xp.spx_monthlies(today, 4)]
        expiries = [(e, t) for e, t in expiries if t > 0]
        if not expiries:
            return {}
        m = len(expiries)
        t = np.repeat([t for _, t in expiries], n)
        K = np.tile(strikes, m)
        iv = np.concatenate([self.market.iv(strikes, te) for _, te in expiries])
        # calls then puts, all expiries at once: one pricing call per tick
        flag = np.repeat(np.array(["c", "p"]), n * m)
        K2, t2, iv2 = np.tile(K, 2), np.tile(t, 2), np.tile(iv, 2)
        mid = bs_price(flag, S, K2, t2, r, iv2)
        g = greeks(flag, S, K2, t2, r, iv2)
        half = np.maximum(0.05, (0.01 + 0.05 * self.market.vix / 100) * mid)
        bid = np.maximum(0.0, tick_round(mid - half))
        ask = tick_round(np.maximum(mid + half, 0.05))
        chains = {}
        for j, (exp, te) in enumerate(expiries):
            c = slice(j * n, (j + 1) * n)
            p = slice((m + j) * n, (m + j + 1) * n)
            chains[exp] = Chain(
                symbol="SPX", trading_class="SPX", expiry=exp, t=te, strikes=strikes,
                call_bid=bid[c], call_ask=ask[c], put_bid=bid[p], put_ask=ask[p],
                call_delta=g["delta"][c], put_delta=g["delta"][p], call_iv=iv2[c], put_iv=iv2[p],
                call_vega=g["vega"][c], put_vega=g["vega"][p],
            )
        return chains

    def _quote(self, c: Contract) -> tuple[float, float]:
        chain = self._chains.get(c.expiry)
        if chain is None or c.symbol != "SPX" or c.trading_class != "SPX":
            raise BrokerError(200, f"No security definition has been found for the request: {c.key}")
        try:
            return chain.quote(c.strike, c.right)
        except KeyError:
            raise BrokerError(200, f"No security definition has been found for the request: {c.key}") from None

    def _combo_prices(self, req: OrderRequest) -> tuple[float, float]:
        """(natural, mid) per combo unit, signed (debit > 0)."""
        natural = mid = 0.0
        for leg in req.legs:
            bid, ask = self._quote(leg.contract)
            natural += leg.ratio * (ask if leg.ratio > 0 else bid)
            mid += leg.ratio * (bid + ask) / 2
        return natural, mid

    def _mark(self, c: Contract) -> float:
        try:
            bid, ask = self._quote(c)
        except BrokerError:
            return 0.0
        return (bid + ask) / 2

    # --- account ---------------------------------------------------------------------------
    def _margin(self, positions: dict[str, Position]) -> float:
        by_expiry: dict = {}
        for p in positions.values():
            by_expiry.setdefault(p.contract.expiry, []).append(p)
        total = 0.0
        for group in by_expiry.values():
            strikes = sorted({p.contract.strike for p in group})
            pts = np.array([0.0, *strikes, strikes[-1] * 10 if strikes else 0.0])
            payoff = np.zeros_like(pts)
            for p in group:
                c = p.contract
                intrinsic = np.maximum(pts - c.strike, 0) if c.right == "C" else np.maximum(c.strike - pts, 0)
                payoff += p.qty * c.multiplier * intrinsic
            total += max(0.0, -float(payoff.min()))
        return total

    def _account(self) -> Account:
        value = self.cash + sum(
            p.qty * p.contract.multiplier * self._mark(p.contract) for p in self._positions.values()
        )
        today = xp.exchange_date(self.clock.now())
        if self._day != today:
            self._day, self._day_start_value = today, value
        margin = self._margin(self._positions)
        excess = value - margin
        return Account(
            net_liquidation=value,
            init_margin=margin,
            maint_margin=margin,
            excess_liquidity=excess,
            cushion=excess / value if value > 0 else 0.0,
            realized_pnl_today=value - (self._day_start_value or value),
        )

    async def snapshot(self) -> Snapshot:
        self._sync()
        now = self.clock.now()
        session = xp.spx_option_session(xp.exchange_date(now))
        is_open = session is not None and session[0] <= now < session[1]
        since = (now - session[0]).total_seconds() / 60 if session and is_open else 0.0
        return Snapshot(
            time=now,
            spx=self.market.spx,
            vix=self.market.vix,
            chains=dict(self._chains),
            account=self._account(),
            positions=tuple(self._positions.values()),
            bars=self.market.bars,
            minutes_since_open=since,
            market_open=is_open,
        )

    async def positions(self) -> list[Position]:
        self._sync()
        return list(self._positions.values())

    # --- orders ----------------------------------------------------------------------------
    def _check(self, req: OrderRequest) -> None:
        if req.qty <= 0:
            raise BrokerError(201, f"Order rejected - reason: invalid order size {req.qty}")
        if not req.legs:
            raise BrokerError(201, "Order rejected - reason: a combo needs legs")
        for leg in req.legs:
            self._quote(leg.contract)

    def _after(self, req: OrderRequest, qty: int) -> dict[str, Position]:
        after = dict(self._positions)
        for leg in req.legs:
            k = leg.contract.key
            q = (after[k].qty if k in after else 0) + leg.ratio * qty
            if q:
                after[k] = Position(leg.contract, q)
            else:
                after.pop(k, None)
        return after

    async def what_if(self, req: OrderRequest) -> WhatIf:
        self._sync()
        self._check(req)
        before = self._margin(self._positions)
        after = self._margin(self._after(req, req.qty))
        legs = sum(abs(leg.ratio) for leg in req.legs) * req.qty
        return WhatIf(after - before, after - before, after, after, legs * self.commission)

    async def place(self, req: OrderRequest) -> OrderState:
        self._sync()
        self._check(req)
        if req.order_id is not None:  # modify in place, as IB does for a re-sent live id
            st = self._orders.get(req.order_id)
            if st is None or not st.working:
                raise BrokerError(104, f"Cannot modify a filled or unknown order {req.order_id}")
            st.limit = req.limit
            self._requests[st.order_id] = req
        else:
            oid = next(self._ids)
            st = OrderState(oid, req.order_ref, "Submitted", req.qty, limit=req.limit)
            self._orders[oid] = st
            self._requests[oid] = req
        self._try_fill(st)
        return st

    async def cancel(self, order_id: int) -> None:
        st = self._orders.get(order_id)
        if st is None:
            raise BrokerError(135, f"Can't find order with id = {order_id}")
        if st.working:
            st.status = "Cancelled"

    async def orders(self) -> list[OrderState]:
        self._sync()
        return list(self._orders.values())

    def _match_working(self) -> None:
        for st in self._orders.values():
            if st.working:
                self._try_fill(st)

    def _try_fill(self, st: OrderState) -> None:
        req = self._requests[st.order_id]
        try:
            natural, _ = self._combo_prices(req)
        except BrokerError as e:
            st.status, st.error = "Cancelled", e.message
            return
        if st.limit < natural - 1e-9:
            return
        price = min(st.limit, natural + self.slippage)
        qty = st.remaining if self.fill_ratio >= 1 else max(1, int(st.remaining * self.fill_ratio))
        self._book(req, qty, price)
        fill = Fill(req.order_ref, qty, price, self._commission(req, qty), self.clock.now(),
                    f"sim.{next(self._exec_ids)}")
        st.avg_price = (st.avg_price * st.filled + price * qty) / (st.filled + qty)
        st.filled += qty
        st.fills.append(fill)
        if st.remaining == 0:
            st.status = "Filled"

    def _commission(self, req: OrderRequest, qty: int) -> float:
        return sum(abs(leg.ratio) for leg in req.legs) * qty * self.commission

    def _book(self, req: OrderRequest, qty: int, price: float) -> None:
        mult = req.legs[0].contract.multiplier
        self.cash -= price * mult * qty + self._commission(req, qty)
        self._positions = self._after(req, qty)

    def _settle_expired(self, now: datetime) -> None:
        """Cash-settle options whose AM settlement time has passed, at the SPX level then."""
        for k, p in list(self._positions.items()):
            c = p.contract
            if xp.settlement_time(c.expiry) + timedelta(minutes=1) > now:
                continue
            S = self.market.spx
            intrinsic = max(S - c.strike, 0) if c.right == "C" else max(c.strike - S, 0)
            self.cash += p.qty * c.multiplier * intrinsic
            del self._positions[k]
