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

import dataclasses
import math
from datetime import date, datetime
from typing import Any

import numpy as np

from bot.sim.grid import vx_tick
from bot.sim.lazymap import LazyMap
from bot.sim.market import Market, years_to
from bot.sim.prices import ROW as _ROW
from bot.sim.prices import SessionRows, price_flat
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


ONE_BY_ONE = 4  # strikes a build prices alone (to the session's close) before a whole chain
_ARRAYS = frozenset({"call_bid", "call_ask", "put_bid", "put_ask", "call_delta", "put_delta",
                     "call_iv", "put_iv", "call_vega", "put_vega"})
def _price(state: tuple,
           parts: list[tuple[str, np.ndarray, float, float]]) -> list[dict[str, np.ndarray]]:
    """Quotes and greeks at the strikes of `parts` [(class, strikes, t, forward)], SPX parts
    first, from the market state of a build; one dict of arrays per part.

    One Black-76 pass for all (price, delta and vega together, plain closed forms) on the
    forward (SPX: S e^((r-q)t); VIX: the matching future); puts follow by put-call parity, so
    they share the calls' implied vol and vega; SPX deltas are w.r.t. the index,
    e^(-qt) N(d1) and e^(-qt) (N(d1) - 1). Quotes: mid +- a half-spread that
    widens with VIX (`spread_factor`), rounded out to ticks as `tick_round` does. Every
    operation is elementwise: a strike's values do not depend on what is priced with it.
    """
    mk, S, v, vix, r, dy, sf = state
    sizes = [ks.size for _, ks, _, _ in parts]
    ns = sum(m for m, p in zip(sizes, parts) if p[0] == "SPX")
    if len(parts) == 1:
        K = parts[0][1]
        T, F = np.full(K.size, parts[0][2]), np.full(K.size, parts[0][3])
    else:
        K = np.concatenate([ks for _, ks, _, _ in parts])
        T = np.repeat([t for _, _, t, _ in parts], sizes)
        F = np.repeat([f for _, _, _, f in parts], sizes)
    return price_flat(mk, S, v, vix, r, dy, sf, K, T, F, ns, sizes)


class _Build:
    """The market state one build lists its chains at; strike lookups of all its chains are
    priced together, ahead, at the strikes asked of each in the previous build."""

    __slots__ = ("state", "chains", "joint", "rows", "sess", "k", "fills")

    def __init__(self, state: tuple, rows: SessionRows | None = None) -> None:
        self.state = state
        self.chains: list[_LazyChain] = []
        self.joint = False  # the joint pass ran
        cur = rows.current() if rows is not None else None
        # inside a session: rows come from (and missing ones go to) the session's cache
        self.rows = rows if cur is not None else None
        self.sess: dict | None = None
        self.k = -1
        if cur is not None:
            self.sess, self.k = cur
        self.fills = 0  # strikes priced one by one (to the close) after the joint pass

    def row(self, ch: _LazyChain, i: int) -> tuple[float, ...] | None:
        """In a session: the row of strike `i` of `ch` at this build's minute, from the
        session cache. The first miss of the build prices it to the close together with the
        strikes each chain was asked in the previous build (missing too), in one pass; up to
        ONE_BY_ONE later misses are priced alone; beyond that None (nothing done): a scan of
        the chain prices the whole chain once instead."""
        rows, k = self.rows, self.k
        assert rows is not None
        key = (ch.symbol, ch.expiry, float(ch.strikes[i]))
        if key not in rows.rows:
            if not self.joint:
                self.joint = True
                keys = [key]
                for c in self.chains:
                    d = c.__dict__
                    if "_lazy" in d and d["_hot"]:
                        keys += [x for s in c.strikes[d["_hot"]].tolist()
                                 if (x := (c.symbol, c.expiry, s)) not in rows.rows]
                rows.fill(self.sess, k, list(dict.fromkeys(keys)))
            elif self.fills >= ONE_BY_ONE:
                return None
            else:
                self.fills += 1
                rows.fill(self.sess, k, [key])
        row = ch.__dict__["_q"][i] = rows.get(key, k)  # Python floats, as before
        return row

    def price_joint(self, asking: _LazyChain, i: int) -> None:
        self.joint = True
        todo = []
        chains = self.chains
        if not any(ch is asking for ch in chains):  # made after the build was replaced
            chains = [*chains, asking]
        for ch in chains:
            d = ch.__dict__
            if "_lazy" not in d or not (d["_hot"] or ch is asking):
                continue
            idx = d["_hot"]
            if ch is asking and i not in idx:
                idx = sorted([*idx, i])
            d["_hot"] = None
            todo.append((ch, idx))
        todo.sort(key=lambda x: x[0].symbol != "SPX")
        done = _price(self.state, [(ch.symbol, ch.strikes[idx], ch._t_at, ch._fwd)
                                   for ch, idx in todo])
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
             fwd: float, hot: list[int], ix: dict[float, int]) -> _LazyChain:
        """`t_at`: years to expiry as priced; `hot`: indices into `ks` to price ahead; `ix`:
        strike -> index into `ks`."""
        ch = object.__new__(cls)
        ch.__dict__.update(symbol=sym, trading_class=sym, expiry=e, t=t, strikes=ks,
                           multiplier=INSTRUMENTS[sym].multiplier, as_of=None, _lazy=build,
                           _hot=hot, _asked=set(), _q={}, _t_at=t_at, _fwd=fwd, _ix=ix)
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
        i = d["_ix"].get(strike)  # strike -> index of the listing
        if i is None:
            return None  # not listed: the caller's lookup raises KeyError
        d["_asked"].add(i)
        build = d.get("_lazy")
        if build is None:
            return None
        row = d["_q"].get(i)
        if row is None:
            if build.rows is not None and build.rows.sess is build.sess:  # its session's cache
                return build.row(self, i)  # None: many misses, the caller reads the arrays
            if build.rows is not None:  # read after its session: the rows kept from it
                row = build.rows.kept(build.sess, (self.symbol, self.expiry, float(strike)),
                                      build.k)
                if row is not None:
                    d["_q"][i] = row
                    return row
            if not build.joint:
                build.price_joint(self, i)
            elif d["_hot"] is not None:  # not in the joint pass: this strike alone
                d["_hot"] = None
                ks = d["strikes"]
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

    def prefetch(self, strikes: list[float]) -> None:
        """Price these strikes together, ahead of their lookups, when the chain is read
        after its build's session (or its build is out of one): the lookups would price them
        one by one, then the whole chain. The same values (elementwise pricing); in its own
        session the row cache does this already, and nothing is done."""
        d = self.__dict__
        build = d.get("_lazy")
        if build is None or (build.rows is not None and build.rows.sess is build.sess):
            return
        got, ix = d["_q"], d["_ix"]
        idx = sorted({i for k in strikes if (i := ix.get(k)) is not None and i not in got})
        if not idx:
            return
        (p,) = _price(build.state, [(self.symbol, d["strikes"][idx], self._t_at, self._fwd)])
        for i, *row in zip(idx, *(p[c].tolist() for c in _ROW)):
            got[i] = tuple(row)

    def asked(self) -> list[int]:
        """Indices of the strikes looked up by `quote()`/`delta()`/`vega()` so far, ascending."""
        return sorted(self.__dict__["_asked"])

    def __reduce__(self) -> tuple:
        return Chain, tuple(getattr(self, f.name) for f in dataclasses.fields(Chain))


class ChainBook:
    """The listing and quotes of one simulated market: SPX chains by expiry (`chains`), VIX
    futures (`futures`: expiry -> price) and VIX chains (`vix_chains`), as of the last `build`."""

    def __init__(self, market: Market, spx_expiries: int = 4, vix_expiries: int = 6) -> None:
        self.market = market
        self.n_spx, self.n_vix = spx_expiries, vix_expiries
        self.chains: LazyMap[date, Chain] = LazyMap({}, _LazyChain.make)  # SPX, by expiry
        self.vix_chains: LazyMap[date, Chain] = LazyMap({}, _LazyChain.make)
        self.futures: dict[date, float] = {}  # VIX futures: price, and (bid, ask)
        self._fut_ticks = 1
        self._strike_lo, self._strike_hi = math.inf, -math.inf
        self._strikes = np.empty(0)
        self._ix: dict[float, int] = {}  # strike -> index into _strikes
        self._spx_exps: dict[date, list[date]] = {}  # listed SPX expiries by exchange date
        # this build's quotes by contract object (id; the entry holds the contract, so its
        # id is not reused while the entry lives): hashing a Contract costs more than a lookup
        self._quotes: dict[int, tuple[Contract, tuple[float, float]]] = {}
        self._rows = SessionRows(market)  # rows of the strikes held, to the session's close
        self._build: _Build | None = None  # the last build's state
        self._plan: tuple | None = None  # (session, SPX grid lists, VIX curve): the session
        # the last build's source of hot strikes: [(its previous maps)] until it lists a
        # chain, then [{(symbol, expiry): indices}]
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
        if g is not None:  # in a session: its years to expiry, forwards and VIX curve, by minute
            plan = self._plan
            if plan is None or plan[0] is not g:  # the session's listing (fixed all session)
                day = xp.exchange_date(when)
                exps = self._spx_expiries(day)
                plan = self._plan = (g, [(e, *mk.grid_lists(g, e)) for e in exps],
                                     mk.session_curve(g, day, self.n_vix))
            k = g["k"]
            # `Market.vix_curve` in a session, from the same curve
            got = [(e, tl[k], px[k]) for e, tl, px in plan[2] if tl[k] > 0]
            self.futures, tv = {e: vx_tick(p) for e, _, p in got}, [t for _, t, _ in got]
            spx: Any = plan[1]
            out: Any = None
        else:
            exps = self._spx_expiries(xp.exchange_date(when))
            se0 = [(e, t) for e in exps if (t := years_to(e, when)) > 0]
            fs = mk.forward(np.array([t for _, t in se0]))  # SPX forwards (at spot now)
            out = [(e, t, fs[j]) for j, (e, t) in enumerate(se0)]
            spx = None
            self.futures, tv = mk.vix_curve(when, self.n_vix)
        self._fut_ticks = max(1, round(sf))  # futures half-spread, in half ticks
        self._quotes = {}  # this build's quotes, by contract object
        futs, fv = self.futures, list(self.futures.values())
        if self._build is not None:  # its chains point back at it (`_lazy`): break the cycle,
            self._build.chains = []  # or every build is left to the cyclic GC (~5% of a run)
        build = self._build = _Build(state(mk), self._rows)
        if isinstance(self._hot[0], tuple):  # the last build never listed a chain: it asks
            self._hot[0] = {}  # nothing of the one before (which is let go)
        src = self._hot = [(self.chains, self.vix_chains)]  # -> the strikes they were asked
        ix = self._ix

        def hot() -> dict[tuple[str, date], list[int]]:
            """Strikes looked up in each chain of the last build (as of this build's first
            listing), as indices into this build's strikes."""
            h = src[0]
            if isinstance(h, tuple):
                h = src[0] = _asked(h, ks)
            return h

        def spx_args() -> dict[date, tuple]:
            # in a session: the session's grid lists at minute k (the map may be read after
            # the market moved on: nothing here reads the market)
            se = out if spx is None else [(e, t, fl[k]) for e, yl, fl in spx if (t := yl[k]) > 0]
            h = hot()
            return {e: ("SPX", e, t, ks, build, t, f, h.get(("SPX", e), []), ix)
                    for e, t, f in se}

        def vix_args() -> dict[date, tuple]:
            h = hot()
            return {e: ("VIX", e, t, VIX_STRIKES, build, t, fv[j], h.get(("VIX", e), []),
                        _VIX_IX) for j, (e, t) in enumerate(zip(futs, tv))}

        # each chain is made when first looked up (a step reads one or two of the ten), and
        # each map lists its chains when first used
        self.chains = LazyMap(spx_args, _LazyChain.make)
        self.vix_chains = LazyMap(vix_args, _LazyChain.make)

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

    def _held(self, c: Contract) -> tuple[float, float] | None:
        """In a session, the quote of an option whose row this session has priced (a strike
        held or asked before: its row is in the session's cache, which only a chain listed in
        this session fills): read from the row, without making its chain. The same numbers as
        `_lookup`, which reads the same row. None when the row is not there yet."""
        b = self._build
        if b is None or b.rows is None or b.rows.sess is not b.sess or c.sec_type != "OPT" \
                or (c.trading_class or c.symbol) != c.symbol:
            return None
        got = b.rows.rows.get((c.symbol, c.expiry, float(c.strike)))
        if got is None or b.k < got[0]:
            return None
        r = got[1][b.k - got[0]]
        if c.right == "C":
            return float(r[0]), float(r[1])
        if c.right == "P":
            return float(r[2]), float(r[3])
        return None

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


def _asked(maps: tuple[LazyMap, ...], ks: np.ndarray) -> dict[tuple[str, date], list[int]]:
    """Strikes looked up in each chain made in `maps` (a build's), as indices into the SPX
    strikes `ks` (the listing only widens)."""
    out = {}
    for chains in maps:
        for ch in chains.made():  # a chain never looked up was asked nothing
            if not isinstance(ch, _LazyChain) or not ch.__dict__["_asked"]:
                continue
            idx = ch.asked()
            if ch.symbol == "SPX" and ch.strikes is not ks:
                idx = ks.searchsorted(ch.strikes[idx]).tolist()
            out[(ch.symbol, ch.expiry)] = idx
    return out


def listing(S: float) -> np.ndarray:
    """SPX strikes listed at spot S: every 5 points from 75% to 120% of S, every 25 from 40%
    to 150%, every 100 from 20% to 200% (coarser far from the money, as SPX lists them)."""
    out = np.empty(0)
    for step, lo, hi in ((STRIKE_STEP, 0.75, 1.20), *BANDS):
        out = np.union1d(out, np.arange(np.floor(S * lo / step) * step,
                                        np.ceil(S * hi / step) * step + step / 2, step))
    return out


def state(mk: Market) -> tuple:
    """The market state a build prices from (see `_price`)."""
    return (mk, mk.spx, mk.v, mk.vix, mk.r, mk.q, mk.spread_factor)
