"""Chain and quote synthesis for the embedded simulator: what is listed and at what prices.

Listed: SPX standard monthlies (trading class SPX, the next `spx_expiries`; 5-point strikes
from 75% to 120% of spot, 25-point ones out to 40% and 150%, 100-point ones to 20% and 200%,
widening as spot moves: a listed strike stays listed), VIX monthly futures (the next
`vix_expiries`) and VIX options on them (trading class VIX). Chains are listed once per market
grid minute (`ChainBook.build`) and priced from that minute's state when first read
(`_LazyChain`): one closed-form Black-76 pass gives price, delta and vega (puts follow by
put-call parity); a step usually reads only a few strikes, and those are priced together
ahead. Quotes: mid +- a half-spread that widens with VIX, rounded out to the ticks of
`strategies.instruments` (as are multipliers: SPX 0.05 below 3.00 else 0.10; VIX options
0.01 / 0.05; VX futures 0.05, multiplier 1000).
The broker (`bot.broker.sim`) trades against these quotes; nothing here knows about orders.

`bot.sim.surface_vix` runs the Cboe VIX formula on these prices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import numpy as np

from bot.sim.grid import vx_tick
from bot.sim.lazychain import _asked, _Build, _LazyChain, state
from bot.sim.lazymap import LazyDict, LazyMap
from bot.sim.market import Market, years_to
from bot.sim.prices import SessionRows
from strategies import expiry as xp
from strategies.instruments import INSTRUMENTS
from strategies.types import Chain, Contract

STRIKE_STEP = 5.0  # near the money: 75% to 120% of spot
BANDS = ((25.0, 0.40, 1.50), (100.0, 0.20, 2.00))  # (step, low, high share of spot) further out
VIX_STRIKES = np.r_[np.arange(9.0, 30.0, 1.0), np.arange(30.0, 50.0, 2.5),
                    np.arange(50.0, 100.0, 5.0), np.arange(100.0, 160.0, 10.0)]

_VIX_IX = {k: i for i, k in enumerate(VIX_STRIKES.tolist())}

_SPX, _VIX, _VX = INSTRUMENTS["SPX"], INSTRUMENTS["VIX"], INSTRUMENTS["VX"]


def tick_round(price: np.ndarray | float, up: bool | None = None,
               small: float | np.ndarray = _SPX.tick_small, big: float | np.ndarray = _SPX.tick_big,
               brk: float | np.ndarray = _SPX.tick_break) -> np.ndarray:
    """Round to the tick (`small` below `brk`, `big` at or above; SPX's): nearest, or up/down."""
    p = np.asarray(price, dtype=float)
    tick = np.where(p < brk, small, big)
    n = p / tick
    n = np.round(n) if up is None else (np.ceil(n - 1e-9) if up else np.floor(n + 1e-9))
    return np.round(n * tick, 2)


class _Listing:
    """What one `ChainBook.build` lists, as of its minute (a slotted object, not closures:
    a build is made every step). In a session (`g`): years to expiry, forwards and the VIX
    curve at minute `k` of the session's grid lists (`plan`); outside one: `spx_now` and
    `vix_now`, taken at the build. Nothing here reads the market after the build, but the
    session's curve, priced for the whole session when first read."""

    __slots__ = ("mk", "g", "k", "j", "off", "plan", "spx_now", "vix_now", "vx", "ks", "ix",
                 "build", "src")
    mk: Market
    g: dict | None  # the session grid (None: outside a session)
    k: int  # its minute, and that minute's place on the stride (j, off)
    j: int
    off: int
    plan: tuple  # ChainBook._plan
    spx_now: list[tuple[date, float, float]]
    vix_now: list[tuple[date, float, float]]
    vx: list[tuple[date, float, float]] | None
    ks: np.ndarray
    ix: dict[float, int]
    build: _Build
    src: list[Any]

    def spx_listed(self) -> list[tuple[date, float, float]]:
        """(expiry, years, forward) at minute k, from the session's grid lists (the map may
        be read after the market moved on: nothing here reads the market)."""
        g = self.g
        if g is None:
            return self.spx_now
        k, mk = self.k, self.mk
        if self.off:  # a minute off the stride: the same values, from the grid's arrays
            return [(e, t, float(mk.grid_forward(g, e)[k])) for e in self.plan[3]
                    if (t := float(mk.grid_years(g, e)[k])) > 0]
        j = self.j
        return [(e, t, fl[j]) for e, yl, fl in self.plan[1] if (t := yl[j]) > 0]

    def vix_list(self) -> list[tuple[date, float, float]]:
        """The VIX futures listed (expiry, years, price), once per build: `Market.vix_curve`
        in a session, from the same curve, priced for the session when first read (many
        sessions read no future and no VIX chain; a function of the session's path alone)."""
        vx = self.vx
        if vx is None:
            g = self.g
            if g is None:
                vx = self.vix_now
            else:
                k, curve = self.k, self.plan[2]
                if len(curve) == 1:
                    curve.append(self.mk.session_curve(g, curve[0], self.plan[4]))
                vx = [(e, tl[k], vx_tick(px[k])) for e, tl, px in curve[1] if tl[k] > 0]
            self.vx = vx
        return vx

    def futures(self) -> dict[date, float]:
        return {e: F for e, _, F in self.vix_list()}

    def hot(self) -> dict[tuple[str, date], list[int]]:
        """Strikes looked up in each chain of the last build (as of the first time a chain
        of this build prices ahead), as indices into this build's strikes."""
        src = self.src
        h = src[0]
        if isinstance(h, tuple):
            h = src[0] = _asked(h, self.ks)
        return h  # type: ignore[no-any-return]

    # (each chain takes `hot` itself, and calls it only when it prices ahead)
    def spx_args(self) -> dict[date, tuple]:
        ks, build, hot, ix = self.ks, self.build, self.hot, self.ix
        return {e: ("SPX", e, t, ks, build, t, f, hot, ix) for e, t, f in self.spx_listed()}

    def vix_args(self) -> dict[date, tuple]:
        build, hot = self.build, self.hot
        return {e: ("VIX", e, t, VIX_STRIKES, build, t, F, hot, _VIX_IX)
                for e, t, F in self.vix_list()}


class ChainBook:
    """The listing and quotes of one simulated market: SPX chains by expiry (`chains`), VIX
    futures (`futures`: expiry -> price) and VIX chains (`vix_chains`), as of the last `build`."""

    def __init__(self, market: Market, spx_expiries: int = 4, vix_expiries: int = 6,
                 stride: int = 1) -> None:
        self.market = market
        self.n_spx, self.n_vix = spx_expiries, vix_expiries
        self.chains: LazyMap[date, Chain] = LazyMap({}, _LazyChain.make)  # SPX, by expiry
        self.vix_chains: LazyMap[date, Chain] = LazyMap({}, _LazyChain.make)
        self.futures: Mapping[date, float] = {}  # VIX futures: expiry -> price
        self._fut_ticks = 1
        self._strike_lo, self._strike_hi = math.inf, -math.inf
        self._strikes = np.empty(0)
        self._ix: dict[float, int] = {}  # strike -> index into _strikes
        self._spx_exps: dict[date, list[date]] = {}  # listed SPX expiries by exchange date
        # this build's quotes by contract object (id; the entry holds the contract, so its
        # id is not reused while the entry lives): hashing a Contract costs more than a lookup
        self._quotes: dict[int, tuple[Contract, tuple[float, float]]] = {}
        # contract (id; the entry holds it) -> (it, its row key or None, a call): `held_mids`
        # (building the key per mark was most of what it saves: callgrind, 10 sessions, 21 M
        # of its 27 M instructions)
        self._keys: dict[int, tuple[Contract, tuple[str, date, float] | None, bool]] = {}
        self._watch: list[tuple[str, date, float]] = []  # `watch`
        # rows of the strikes held, to the session's close (at the minutes on `stride`)
        self._rows = SessionRows(market, stride)
        self._stride = stride
        self._build: _Build | None = None  # the last build's state
        # (session, SPX grid lists, [day, VIX curve], expiries, VIX expiries listed)
        self._plan: tuple | None = None
        # the last build's source of hot strikes: [(its previous maps)] until one of its
        # chains prices ahead, then [{(symbol, expiry): indices}]
        self._hot: list[Any] = [{}]

    def build(self, when: datetime) -> None:
        """SPX chains, VIX futures and VIX chains as of `when`.

        The listing, times to expiry, forwards and VIX futures are set here; each chain's
        quotes and greeks are priced from this state when first read (`_LazyChain`): a step
        reads one or two of the ten chains. See `_price`.
        """
        mk = self.market
        S, sf = mk.spx, mk.spread_factor
        # (math's floor/ceil: exact, as numpy's, without a ufunc call on a scalar)
        lo = min(self._strike_lo, math.floor(S * 0.75 / STRIKE_STEP) * STRIKE_STEP)
        hi = max(self._strike_hi, math.ceil(S * 1.20 / STRIKE_STEP) * STRIKE_STEP)
        if (lo, hi) != (self._strike_lo, self._strike_hi):  # a listed strike stays listed
            self._strike_lo, self._strike_hi = lo, hi
            self._strikes = np.union1d(self._strikes, listing(S))
            self._ix = dict(zip(self._strikes.tolist(), range(self._strikes.size)))
        ks = self._strikes
        g = mk.grid() if when == mk.time else None
        if g is None and when == mk.time and (last := self._rows.sess) is not None \
                and mk.holds_close(last):
            g = last  # after the index close: the state of the session's last minute
        ls = _Listing()
        ls.mk, ls.g, ls.ks, ls.ix, ls.vx = mk, g, ks, self._ix, None
        if g is not None:  # in a session: its years to expiry, forwards and VIX curve, by minute
            plan = self._plan
            if plan is None or plan[0] is not g:  # the session's listing (fixed all session)
                day = xp.exchange_date(when)
                exps = self._spx_expiries(day)
                # (at the minutes on the stride: the rest are read from the arrays)
                plan = self._plan = (g, [(e, *mk.grid_lists(g, e, self._stride)) for e in exps],
                                     [day], exps, self.n_vix)
            ls.k = g["k"]
            ls.plan = plan
            ls.j, ls.off = divmod(ls.k, self._stride)
        else:
            exps = self._spx_expiries(xp.exchange_date(when))
            se0 = [(e, t) for e in exps if (t := years_to(e, when)) > 0]
            fs = mk.forward(np.array([t for _, t in se0]))  # SPX forwards (at spot now)
            ls.spx_now = [(e, t, fs[j]) for j, (e, t) in enumerate(se0)]
            fut, tv = mk.vix_curve(when, self.n_vix)
            ls.vix_now = [(e, t, F) for (e, F), t in zip(fut.items(), tv)]
        # listed when first read (most steps read no future, nor a VIX chain)
        self.futures = LazyDict(ls.futures)
        self._fut_ticks = max(1, round(sf))  # futures half-spread, in half ticks
        self._quotes = {}  # this build's quotes, by contract object
        if self._build is not None:  # its chains point back at it (`_lazy`): break the cycle,
            self._build.chains = []  # or every build is left to the cyclic GC (~5% of a run)
        ls.build = self._build = _Build(state(mk, sf), self._rows)
        if isinstance(self._hot[0], tuple):  # no chain of the last build priced ahead yet: from
            self._hot[0] = {}  # now on, it asks nothing of the one before (which is let go)
        ls.src = self._hot = [(self.chains, self.vix_chains)]  # -> the strikes they were asked
        # each chain is made when first looked up (a step reads one or two of the ten), and
        # each map lists its chains when first used
        self.chains = LazyMap(ls.spx_args, _LazyChain.make)
        self.vix_chains = LazyMap(ls.vix_args, _LazyChain.make)

    def _spx_expiries(self, day: date) -> list[date]:
        exps = self._spx_exps.get(day)
        if exps is None:
            exps = self._spx_exps[day] = xp.spx_monthlies(day, self.n_spx)
        return exps

    @property
    def strikes(self) -> np.ndarray:
        """The SPX strikes listed now (every SPX chain of the build lists these)."""
        return self._strikes

    def fut_quote(self, F: float) -> tuple[float, float]:
        """(bid, ask) of a VIX future at F: `_fut_ticks` half ticks either side, out to ticks."""
        tick = _VX.tick(F)
        half = tick / 2 * self._fut_ticks
        return (round(math.floor((F - half) / tick + 1e-9) * tick, 2),
                round(math.ceil((F + half) / tick - 1e-9) * tick, 2))

    @property
    def fut_quotes(self) -> dict[date, tuple[float, float]]:
        return {e: self.fut_quote(F) for e, F in self.futures.items()}

    def quote(self, c: Contract) -> tuple[float, float]:
        """(bid, ask) of a listed contract in this build; KeyError when `c` is not listed."""
        got = self._quotes.get(id(c))
        if got is not None and got[0] is c:
            return got[1]
        q = self._held(c)
        if q is None:
            q = self._lookup(c)
        self._quotes[id(c)] = (c, q)
        return q

    def held_mids(self, contracts: list[Contract]) -> list[float | None]:
        """Mids ((bid + ask) / 2) of `contracts` in this build, read straight from the
        session's rows where `_held` would answer (the broker's marks, every step: the same
        numbers as `quote`, without its layers of calls); None where it would not (the caller
        takes `quote`'s path)."""
        b = self._build
        if b is None or b.rows is None or b.rows.sess is not b.sess:
            return [None] * len(contracts)
        rows, k, keys = b.rows, b.k, self._keys
        get = rows.get
        out: list[float | None] = []
        held = []
        for c in contracts:
            got = keys.get(id(c))
            if got is None or got[0] is not c:
                if len(keys) >= 4096:
                    keys.clear()
                got = keys[id(c)] = (c, _row_key(c), c.right == "C")
            held.append(got)
            r = get(got[1], k) if got[1] is not None else None
            out.append(None if r is None else (r[0] + r[1]) / 2 if got[2] else (r[2] + r[3]) / 2)
        if None in out:
            # a strike held and not priced yet this session (its first mark): all of them in
            # one pass, as the chain path would price each (one chain at a time): the same rows
            todo = [h[1] for h, m in zip(held, out) if m is None and h[1] is not None
                    and h[1] not in rows.rows and self._listed(h[1])]
            if todo:  # (and the strikes watched: `watch`)
                todo += [w for w in self._watch if w not in rows.rows and self._listed(w)]
                rows.fill(b.sess, k, list(dict.fromkeys(todo)))
                for j, (h, m) in enumerate(zip(held, out)):
                    if m is None and h[1] is not None and (r := get(h[1], k)) is not None:
                        out[j] = (r[0] + r[1]) / 2 if h[2] else (r[2] + r[3]) / 2
        return out

    def watch(self, keys: list[tuple[str, date, float]]) -> None:
        """Options (row keys: symbol, expiry, strike) that are read after their session,
        such as a baseline's condor marked at the day's last snapshot the next morning: the
        pass that prices a session's first marks prices these too, so that read finds their
        rows (kept a session) instead of pricing them again. A hint only: every read gives
        the same numbers without it."""
        self._watch = list(keys)

    def _listed(self, key: tuple[str, date, float]) -> bool:
        """Does a chain of this build list the option of row `key` (its expiry and strike):
        would a quote of it reach the session's rows?"""
        sym, e, strike = key
        if sym == "SPX":
            return strike in self._ix and e in self.chains
        return sym == "VIX" and strike in _VIX_IX and e in self.vix_chains

    def _held(self, c: Contract) -> tuple[float, float] | None:
        """In a session, the quote of an option whose row this session has priced (a strike
        held or asked before: its row is in the session's cache, which only a chain listed in
        this session fills): read from the row, without making its chain. The same numbers as
        `_lookup`, which reads the same row. None when the row is not there yet."""
        b = self._build
        if b is None or b.rows is None or b.rows.sess is not b.sess:
            return None
        key = _row_key(c)
        r = b.rows.get(key, b.k) if key is not None else None
        if r is None:
            return None
        return (r[0], r[1]) if c.right == "C" else (r[2], r[3])

    def _lookup(self, c: Contract) -> tuple[float, float]:
        if c.sec_type == "FUT":
            F = self.futures.get(c.expiry)
            if c.symbol != "VIX" or F is None:
                raise KeyError(c.key)
            return self.fut_quote(F)
        if c.sec_type != "OPT" or c.right not in ("C", "P"):
            raise KeyError(c.key)
        chains = self.chains if c.symbol == "SPX" else self.vix_chains if c.symbol == "VIX" \
            else None
        if chains is None:
            raise KeyError(c.key)
        chain = chains.get(c.expiry)
        if chain is None or (c.trading_class or c.symbol) != chain.trading_class:
            raise KeyError(c.key)
        return chain.quote(c.strike, c.right)  # KeyError when the strike is not listed


def _row_key(c: Contract) -> tuple[str, date, float] | None:
    """The session-row key of an option a chain of its own class lists; None for anything
    else (a future, another trading class: quoted through the chains)."""
    if c.sec_type != "OPT" or (c.trading_class or c.symbol) != c.symbol \
            or c.right not in ("C", "P"):
        return None
    return (c.symbol, c.expiry, float(c.strike))


def listing(S: float) -> np.ndarray:
    """SPX strikes listed at spot S: every 5 points from 75% to 120% of S, every 25 from 40%
    to 150%, every 100 from 20% to 200% (coarser far from the money, as SPX lists them)."""
    out = np.empty(0)
    for step, lo, hi in ((STRIKE_STEP, 0.75, 1.20), *BANDS):
        out = np.union1d(out, np.arange(np.floor(S * lo / step) * step,
                                        np.ceil(S * hi / step) * step + step / 2, step))
    return out
