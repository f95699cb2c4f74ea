"""SimBroker: the embedded broker. Synthetic market (bot.sim.market), fills against bid/ask,
Reg-T margin (bot.sim.margin), cash settlement.

Listed: SPX standard monthlies (trading class SPX, the next `spx_expiries`, 5-point strikes
from 75% to 120% of spot, widening as spot moves: a listed strike stays listed), VIX monthly futures (the next `vix_expiries`, multiplier 1000, 0.05
tick) and VIX options on them (trading class VIX, multiplier 100). Chains are listed once per
market grid minute and priced from that minute's state when first read (`_LazyChain`): one
closed-form Black-76 pass gives price, delta and vega (puts follow by put-call parity); a
step usually reads only a few strikes, and those are priced together ahead. Quotes: mid +-
a half-spread that widens with VIX, rounded out to ticks (SPX 0.05 below 3.00 else 0.10;
VIX options 0.01 / 0.05).

Orders: a combo (BAG) limit order is BUY of the combo at a signed per-unit price (debit > 0,
credit < 0); legs may mix SPX options, VIX options and VIX futures, any expiries (calendars,
diagonals). Leg prices are weighted by multiplier / the first leg's multiplier. An order
fills while SPX options trade and its limit is at or through the combo's natural price
(asks of bought legs minus bids of sold legs), at natural + `slippage`, never worse than the
limit; `fill_ratio` < 1 fills that share of the remaining quantity per market minute
(partial fills). `order_id` set modifies that working order in place. Rejections carry IB's
codes: 200 no security definition, 201 order size / insufficient margin, 104 cannot modify,
135 unknown order id. Settlement: SPX options at the SPX opening print of expiry day (AM
SET); VIX options and futures at the VIX at the open of their expiry day (SOQ).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from datetime import date, datetime
from datetime import time as dtime
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.broker.base import BrokerError, OrderRequest, OrderState, WhatIf
from bot.clock import SimClock
from bot.sim import margin as mg
from bot.sim.market import Market, settle_at, years_to
from strategies import expiry as xp
from strategies.pricing import black76_quote
from strategies.types import Account, Chain, Contract, Fill, Position, Snapshot

if TYPE_CHECKING:
    from bot.config import Settings

STRIKE_STEP = 5.0
VIX_STRIKES = np.r_[np.arange(9.0, 30.0, 1.0), np.arange(30.0, 50.0, 2.5),
                    np.arange(50.0, 100.0, 5.0), np.arange(100.0, 160.0, 10.0)]


def tick_round(price: np.ndarray | float, up: bool | None = None,
               small: float | np.ndarray = 0.05, big: float | np.ndarray = 0.10) -> np.ndarray:
    """Round to the option tick (`small` below 3.00, `big` at or above): nearest, or up/down."""
    p = np.asarray(price, dtype=float)
    tick = np.where(p < 3.0, small, big)
    n = p / tick
    n = np.round(n) if up is None else (np.ceil(n - 1e-9) if up else np.floor(n + 1e-9))
    return np.round(n * tick, 2)


_ARRAYS = frozenset({"call_bid", "call_ask", "put_bid", "put_ask", "call_delta", "put_delta",
                     "call_iv", "put_iv", "call_vega", "put_vega"})
_ROW = ("call_bid", "call_ask", "put_bid", "put_ask", "call_delta", "put_delta", "call_vega",
        "put_vega")
# (half-spread a + b x price, tick below 3.00, tick at or above) by option class
_SPREAD = {"SPX": (0.05, 0.004, 0.05, 0.10), "VIX": (0.02, 0.015, 0.01, 0.05)}
_SPREADS = np.array([_SPREAD["SPX"], _SPREAD["VIX"]] * 2)  # rows: call SPX, VIX, put SPX, VIX


def _price(state: tuple, parts: list[tuple[str, np.ndarray, float, float]]) -> list[dict[str, np.ndarray]]:
    """Quotes and greeks at the strikes of `parts` [(class, strikes, t, forward)], SPX parts
    first, from the market state of a build; one dict of arrays per part.

    One Black-76 pass for all (price, delta and vega together, plain closed forms) on the
    forward (SPX: S e^(rt); VIX: the matching future); puts follow by put-call parity, so
    they share the calls' implied vol, vega and delta - 1. Quotes: mid +- a half-spread that
    widens with VIX (`spread_factor`), rounded out to ticks as `tick_round` does. Every
    operation is elementwise: a strike's values do not depend on what is priced with it.
    """
    mk, S, v, vix, r, sf = state
    sizes = [ks.size for _, ks, _, _ in parts]
    ns = sum(m for m, p in zip(sizes, parts) if p[0] == "SPX")
    if len(parts) == 1:
        K = parts[0][1]
        T, F = np.full(K.size, parts[0][2]), np.full(K.size, parts[0][3])
    else:
        K = np.concatenate([ks for _, ks, _, _ in parts])
        T = np.repeat([t for _, _, t, _ in parts], sizes)
        F = np.repeat([f for _, _, _, f in parts], sizes)
    n = K.size
    if ns == n:
        iv = mk.spx_iv(K, T, S, v)
    elif ns == 0:
        iv = mk.vix_iv_at(K, F, T, vix)
    else:
        iv = np.concatenate([mk.spx_iv(K[:ns], T[:ns], S, v),
                             mk.vix_iv_at(K[ns:], F[ns:], T[ns:], vix)])
    call, cd, vega = black76_quote("c", F, K, T, r, iv)
    df = np.exp(-r * T)
    px = np.concatenate([call, np.maximum(call - df * (F - K), 0.0)])  # puts by parity
    if ns in (0, n):  # one class
        a, b, small, big = _SPREAD["SPX" if ns else "VIX"]
    else:
        a, b, small, big = np.repeat(_SPREADS, [ns, n - ns, ns, n - ns], axis=0).T
    half = sf * (a + b * px)
    q = np.empty((2, 2 * n))  # bid, ask
    np.maximum(np.subtract(px, half, out=q[0]), 0.0, out=q[0])
    np.maximum(np.add(px, half, out=q[1]), small, out=q[1])
    tick = np.where(q < 3.0, small, big)
    q /= tick
    np.floor(np.add(q[0], 1e-9, out=q[0]), out=q[0])
    np.ceil(np.subtract(q[1], 1e-9, out=q[1]), out=q[1])
    q *= tick
    np.round(q, 2, out=q)
    # delta: SPX w.r.t. the index (Black-76 delta x e^(rt)), VIX w.r.t. its future
    if ns == n:
        cd /= df
        pd_ = cd - 1.0
    elif ns == 0:
        pd_ = cd - df
    else:
        cd[:ns] /= df[:ns]
        pd_ = np.concatenate([cd[:ns] - 1.0, cd[ns:] - df[ns:]])
    out, lo = [], 0
    for m in sizes:
        sl, sp = slice(lo, lo + m), slice(n + lo, n + lo + m)
        out.append({"call_bid": q[0, sl], "call_ask": q[1, sl], "put_bid": q[0, sp],
                    "put_ask": q[1, sp], "call_delta": cd[sl], "put_delta": pd_[sl],
                    "call_iv": iv[sl], "put_iv": iv[sl], "call_vega": vega[sl],
                    "put_vega": vega[sl]})
        lo += m
    return out


class _Build:
    """The market state one build lists its chains at; strike lookups of all its chains are
    priced together, ahead, at the strikes asked of each in the previous build."""

    __slots__ = ("state", "chains", "joint")

    def __init__(self, state: tuple) -> None:
        self.state = state
        self.chains: list[_LazyChain] = []
        self.joint = False  # the joint pass ran

    def price_joint(self, asking: _LazyChain, i: int) -> None:
        self.joint = True
        todo = []
        for ch in self.chains:
            d = ch.__dict__
            if "_lazy" not in d or not (d["_hot"] or ch is asking):
                continue
            idx = d["_hot"]
            if ch is asking and i not in idx:
                idx = sorted([*idx, i])
            d["_hot"] = None
            todo.append((ch, idx))
        todo.sort(key=lambda x: x[0].symbol != "SPX")
        done = _price(self.state, [(ch.symbol, ch.strikes[idx], ch._t_at, ch._fwd) for ch, idx in todo])
        for (ch, idx), p in zip(todo, done):
            got = ch.__dict__["_q"]
            for k, *row in zip(idx, *(p[c].tolist() for c in _ROW)):
                got[k] = tuple(row)


class _LazyChain(Chain):
    """A `Chain` whose quote and greek arrays are priced (`_price`) on first read, from the
    state captured when the chain was listed: the same values as pricing every chain at
    once. Pickles and copies as a plain `Chain`.

    Most chains a step reads are only asked `quote()`/`delta()`/`vega()` at a few strikes
    (the legs held or watched). Until an array is read these price only strikes: the first
    lookup in any chain of a build prices the strikes each chain was asked in the previous
    build (and the one asked), a chain missing then prices just the strike asked, and any
    further miss prices the whole chain.
    """

    @classmethod
    def make(cls, sym: str, e: date, t: float, ks: np.ndarray, build: _Build, t_at: float,
             fwd: float, hot: list[int]) -> _LazyChain:
        """`t_at`: years to expiry as priced; `hot`: indices into `ks` to price ahead."""
        ch = object.__new__(cls)
        ch.__dict__.update(symbol=sym, trading_class=sym, expiry=e, t=t, strikes=ks,
                           multiplier=100, as_of=None, _lazy=build, _hot=hot, _asked=set(),
                           _q={}, _t_at=t_at, _fwd=fwd)
        build.chains.append(ch)
        return ch

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        if name in _ARRAYS and "_lazy" in d:
            (p,) = _price(d["_lazy"].state, [(self.symbol, self.strikes, self._t_at, self._fwd)])
            d.update(p)
            del d["_lazy"]
            return d[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _row(self, strike: float) -> tuple[float, ...] | None:
        """(call bid, ask, put bid, ask, call delta, put delta, call vega, put vega) at
        `strike` while the arrays are not priced; None once they are (or should be)."""
        d = self.__dict__
        ks = d["strikes"]
        i = int(ks.searchsorted(strike))
        if i >= len(ks) or ks[i] != strike:
            return None  # not listed: the caller's lookup raises KeyError
        d["_asked"].add(i)
        build = d.get("_lazy")
        if build is None:
            return None
        row = d["_q"].get(i)
        if row is None:
            if not build.joint:
                build.price_joint(self, i)
            elif d["_hot"] is not None:  # not in the joint pass: this strike alone
                d["_hot"] = None
                (p,) = _price(build.state, [(self.symbol, ks[i:i + 1], self._t_at, self._fwd)])
                d["_q"][i] = tuple(p[c][0].item() for c in _ROW)
            row = d["_q"].get(i)
        return row  # None on a further miss: the caller reads (prices) the arrays

    def quote(self, strike: float, right: str) -> tuple[float, float]:
        row = self._row(strike)
        if row is None:
            return super().quote(strike, right)
        return (row[0], row[1]) if right == "C" else (row[2], row[3])

    def delta(self, strike: float, right: str) -> float:
        row = self._row(strike)
        if row is None:
            return super().delta(strike, right)
        return row[4] if right == "C" else row[5]

    def vega(self, strike: float, right: str) -> float:
        row = self._row(strike)
        if row is None:
            return super().vega(strike, right)
        return row[6] if right == "C" else row[7]

    def asked(self) -> list[int]:
        """Indices of the strikes looked up by `quote()`/`delta()`/`vega()` so far, ascending."""
        return sorted(self.__dict__["_asked"])

    def __reduce__(self) -> tuple:
        return Chain, tuple(getattr(self, f.name) for f in dataclasses.fields(Chain))


def _no_def(c: Contract) -> BrokerError:
    return BrokerError(200, f"No security definition has been found for the request: {c.key}")


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
        *,
        commission_per_future: float = 2.25,
        max_order_qty: int = 500,
        spx_expiries: int = 4,
        vix_expiries: int = 6,
        history_days: int = 260,
    ) -> None:
        self.clock = clock
        self.market = Market(scenario, seed, clock.now(), history_days)
        self.cash, self.account_id = initial_cash, account_id
        self.commission, self.commission_future = commission_per_contract, commission_per_future
        self.slippage, self.fill_ratio, self.max_order_qty = slippage, fill_ratio, max_order_qty
        self.n_spx, self.n_vix = spx_expiries, vix_expiries
        self.settlements: list[tuple[datetime, str, int, float]] = []  # time, key, qty, price
        self._positions: dict[str, Position] = {}
        self._orders: dict[int, OrderState] = {}
        self._requests: dict[int, OrderRequest] = {}
        self._ids = itertools.count(1)
        self._exec_ids = itertools.count(1)
        self._chains: dict[date, Chain] = {}  # SPX, by expiry
        self._vix_chains: dict[date, Chain] = {}
        self._futures: dict[date, float] = {}  # VIX futures: price, and (bid, ask)
        self._fut_ticks = 1
        self._strike_lo, self._strike_hi = math.inf, -math.inf
        self._strikes = np.empty(0)
        self._spx_exps: dict[date, list[date]] = {}  # listed SPX expiries by exchange date
        self._quotes: dict[Contract, tuple[float, float]] = {}
        self._chain_time: datetime | None = None
        self._synced: datetime | None = None
        self._day_start_value: float | None = None
        self._day: date | None = None
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

    def _open_now(self) -> bool:
        return xp.is_spx_open(self.clock.now())

    # --- market ----------------------------------------------------------------------------
    def _sync(self) -> None:
        now = self.clock.now()
        if self._synced == now:
            return
        self._synced = now
        self.market.advance_to(now)
        if self._chain_time != self.market.time:
            self._chain_time = self.market.time
            self._build(self.market.time)
        self._settle_expired(now)
        if self._open_now():
            self._match_working()

    def _build(self, when: datetime) -> None:
        """SPX chains, VIX futures and VIX chains as of `when`.

        The listing, times to expiry, forwards and VIX futures are set here; each chain's
        quotes and greeks are priced from this state when first read (`_LazyChain`): a step
        reads one or two of the ten chains. See `_price`.
        """
        mk = self.market
        S, r, sf = mk.spx, mk.r, mk.spread_factor
        lo = min(self._strike_lo, np.floor(S * 0.75 / STRIKE_STEP) * STRIKE_STEP)
        hi = max(self._strike_hi, np.ceil(S * 1.20 / STRIKE_STEP) * STRIKE_STEP)
        if (lo, hi) != (self._strike_lo, self._strike_hi):  # a listed strike stays listed
            self._strike_lo, self._strike_hi = lo, hi
            self._strikes = np.arange(lo, hi + STRIKE_STEP, STRIKE_STEP)
        ks = self._strikes
        day = xp.exchange_date(when)
        exps = self._spx_exps.get(day)
        if exps is None:
            exps = self._spx_exps[day] = xp.spx_monthlies(day, self.n_spx)
        se = [(e, t) for e in exps if (t := years_to(e, when)) > 0]
        self._futures, tv = mk.vix_curve(when, self.n_vix)
        self._fut_ticks = max(1, round(sf))  # futures half-spread, in half ticks
        self._quotes = {}  # this build's quotes, by contract
        ts, tva = np.array([t for _, t in se]), np.array(tv)
        fs = S * np.exp(r * ts)  # SPX forwards
        fv = np.array(list(self._futures.values()))
        build = _Build((mk, S, mk.v, mk.vix, r, sf))
        hot = self._asked()  # strikes looked up in each chain of the last build
        self._chains = {e: _LazyChain.make("SPX", e, t, ks, build, ts[j], fs[j],
                                           hot.get(("SPX", e), []))
                        for j, (e, t) in enumerate(se)}
        self._vix_chains = {e: _LazyChain.make("VIX", e, t, VIX_STRIKES, build, tva[j], fv[j],
                                               hot.get(("VIX", e), []))
                            for j, (e, t) in enumerate(zip(self._futures, tv))}

    def _asked(self) -> dict[tuple[str, date], list[int]]:
        """Strikes looked up in each chain of the last build, as indices into the strikes
        listed now (the listing only widens)."""
        out = {}
        for chains in (self._chains, self._vix_chains):
            for e, ch in chains.items():
                if not isinstance(ch, _LazyChain) or not ch.__dict__["_asked"]:
                    continue
                idx = ch.asked()
                if ch.symbol == "SPX" and ch.strikes is not self._strikes:
                    shift = int(round((ch.strikes[0] - self._strikes[0]) / STRIKE_STEP))
                    idx = [i + shift for i in idx]
                out[(ch.symbol, e)] = idx
        return out

    def _fut_quote(self, F: float) -> tuple[float, float]:
        """(bid, ask) of a VIX future at F: a half-spread of `_fut_ticks` half ticks, out to ticks."""
        k = self._fut_ticks
        return (round(math.floor((F - 0.025 * k) / 0.05 + 1e-9) * 0.05, 2),
                round(math.ceil((F + 0.025 * k) / 0.05 - 1e-9) * 0.05, 2))

    @property
    def _fut_quotes(self) -> dict[date, tuple[float, float]]:
        return {e: self._fut_quote(F) for e, F in self._futures.items()}

    def _quote(self, c: Contract) -> tuple[float, float]:
        q = self._quotes.get(c)
        if q is None:
            q = self._quotes[c] = self._lookup(c)
        return q

    def _lookup(self, c: Contract) -> tuple[float, float]:
        if c.sec_type == "FUT":
            F = self._futures.get(c.expiry)
            if c.symbol != "VIX" or F is None:
                raise _no_def(c)
            return self._fut_quote(F)
        if c.sec_type != "OPT" or c.right not in ("C", "P"):
            raise _no_def(c)
        chains = {"SPX": self._chains, "VIX": self._vix_chains}.get(c.symbol, {})
        chain = chains.get(c.expiry)
        if chain is None or (c.trading_class or c.symbol) != chain.trading_class:
            raise _no_def(c)
        try:
            return chain.quote(c.strike, c.right)
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

    def _settle_value(self, c: Contract) -> float:
        """SPX: the opening print of expiry day; VIX: VIX at that open (SOQ)."""
        spx, vix = self.market.opens.get(c.expiry, (self.market.spx, self.market.vix))
        return spx if c.symbol == "SPX" else vix

    def _mark(self, c: Contract) -> float:
        try:
            bid, ask = self._quote(c)
            return (bid + ask) / 2
        except BrokerError:
            pass
        expired = self.clock.now() >= settle_at(c.expiry)
        u = self._settle_value(c) if expired else (self.market.spx if c.symbol == "SPX"
                                                   else self._futures.get(c.expiry, self.market.vix))
        if c.sec_type == "FUT":
            return u
        return max(u - c.strike, 0.0) if c.right == "C" else max(c.strike - u, 0.0)

    # --- account ---------------------------------------------------------------------------
    def _margin(self, positions: dict[str, Position]) -> mg.Margin:
        return mg.requirement(positions.values(), self._mark,
                              {"SPX": self.market.spx, "VIX": self.market.vix})

    def _value(self) -> float:
        return self.cash + sum(p.qty * p.contract.multiplier * self._mark(p.contract)
                               for p in self._positions.values())

    def _account(self) -> Account:
        value = self._value()
        today = xp.exchange_date(self.clock.now())
        if self._day != today:
            self._day, self._day_start_value = today, value
        m = self._margin(self._positions)
        excess = value - m.maint
        unreal = sum(p.qty * p.contract.multiplier * (self._mark(p.contract) - p.avg_cost)
                     for p in self._positions.values())
        return Account(net_liquidation=value, init_margin=m.init, maint_margin=m.maint,
                       excess_liquidity=excess, cushion=excess / value if value > 0 else 0.0,
                       realized_pnl_today=value - (self._day_start_value or value),
                       unrealized_pnl=unreal)

    async def snapshot(self) -> Snapshot:
        self._sync()
        now = self.clock.now()
        session = xp.spx_option_session(xp.exchange_date(now))
        is_open = session is not None and session[0] <= now < session[1]
        since = (now - session[0]).total_seconds() / 60 if session and is_open else 0.0
        return Snapshot(time=now, spx=self.market.spx, vix=self.market.vix,
                        chains=dict(self._chains), account=self._account(),
                        positions=tuple(self._positions.values()),
                        vix_futures=dict(self._futures), vix_chains=dict(self._vix_chains),
                        bars=self.market.bars, minutes_since_open=since, market_open=is_open)

    async def positions(self) -> list[Position]:
        self._sync()
        return list(self._positions.values())

    # --- orders ----------------------------------------------------------------------------
    def _check(self, req: OrderRequest) -> None:
        if req.qty <= 0 or req.qty > self.max_order_qty:
            raise BrokerError(201, f"Order rejected - reason:The order size {req.qty} is not "
                                   f"allowed (1 to {self.max_order_qty} contracts)")
        if not req.legs or any(leg.ratio == 0 for leg in req.legs):
            raise BrokerError(201, "Order rejected - reason:Invalid combo legs")
        if not math.isfinite(req.limit):
            raise BrokerError(201, f"Order rejected - reason:Invalid limit price {req.limit}")
        for leg in req.legs:
            self._quote(leg.contract)

    def _commission(self, req: OrderRequest, qty: int) -> float:
        return sum(abs(leg.ratio) * qty * (self.commission_future if leg.contract.sec_type == "FUT"
                                           else self.commission) for leg in req.legs)

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
            raise BrokerError(201, "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER "
                                   f"TO OBTAIN THE DESIRED POSITION YOUR EQUITY WITH LOAN VALUE "
                                   f"[{equity:.2f} USD] MUST EXCEED THE INITIAL MARGIN "
                                   f"[{after.init:.2f} USD]")

    async def place(self, req: OrderRequest) -> OrderState:
        self._sync()
        self._check(req)
        if req.order_id is not None:  # modify in place, as IB does for a re-sent live id
            st = self._orders.get(req.order_id)
            if st is None or not st.working:
                raise BrokerError(104, f"Cannot modify a filled order. orderId={req.order_id}")
            old = self._requests[st.order_id]
            if old.legs != req.legs:
                raise BrokerError(201, "Order rejected - reason:Cannot change the legs of a combo")
            self._check_margin(req, max(0, req.qty - st.filled))
            st.limit = req.limit
            st.qty = max(req.qty, st.filled)
            self._requests[st.order_id] = req
        else:
            self._check_margin(req, req.qty)
            oid = next(self._ids)
            st = OrderState(oid, req.order_ref, "Submitted", req.qty, limit=req.limit)
            self._orders[oid] = st
            self._requests[oid] = req
        if self._open_now():
            self._try_fill(st)
        return st

    async def cancel(self, order_id: int) -> None:
        st = self._orders.get(order_id)
        if st is None:
            raise BrokerError(135, f"Can't find order with id = {order_id}")
        if st.working:
            st.status = "Cancelled"
            st.error = "Order Canceled - reason:"

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
            natural, _, legs = self._combo_prices(req)
        except BrokerError as e:
            st.status, st.error = "Cancelled", e.message
            return
        if st.limit < natural - 1e-9:
            return
        price = min(st.limit, natural + self.slippage)
        qty = st.remaining if self.fill_ratio >= 1 else max(1, int(st.remaining * self.fill_ratio))
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
            st.status = "Filled"

    def _settle_expired(self, now: datetime) -> None:
        """Cash-settle options and futures whose AM settlement (09:30 New York) has passed."""
        for k, p in list(self._positions.items()):
            c = p.contract
            if now < settle_at(c.expiry) or c.expiry not in self.market.opens:
                continue
            u = self._settle_value(c)
            if c.sec_type == "FUT":
                value = u
            else:
                value = max(u - c.strike, 0.0) if c.right == "C" else max(c.strike - u, 0.0)
            self.cash += p.qty * c.multiplier * value
            self.settlements.append((now, k, p.qty, value))
            del self._positions[k]


def make_sim_broker(settings: Settings) -> tuple[SimBroker, SimClock]:
    """The simulated broker and its clock, from a `bot.config.Settings`: the one factory the
    CLI, backtests, benches and tests use. The clock starts at 09:30 New York on `sim.start`
    (or the next SPX option session when that day has none) and runs at `sim.speed`."""
    s = settings.sim
    start = datetime.combine(s.start, dtime(9, 30), tzinfo=xp.NY)
    if xp.spx_option_session(s.start) is None:
        start = xp.next_spx_open(start)
    clock = SimClock(start, None if s.speed == "max" else float(s.speed))
    broker = SimBroker(clock, s.scenario, s.seed, s.initial_cash, s.commission_per_contract,
                       s.slippage, s.fill_ratio)
    return broker, clock
