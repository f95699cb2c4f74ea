"""The simulator's chains priced on first read (`_LazyChain`), and the build state they price
from (`_Build`): the lazy half of `bot.sim.chains` (which lists them: `ChainBook`).

A chain is listed with the market state of its build (`state`) and prices its quotes and
greeks only when read: one closed-form Black-76 pass (`_price`, on `bot.sim.prices.price_flat`)
gives price, delta and vega (puts by put-call parity). A step usually reads a few strikes: in
a session they come from the session's row cache (`bot.sim.prices.SessionRows`, priced to the
close the first time they are asked), the strikes each chain was asked in the previous build
are priced together ahead, and a scan of a chain prices the whole chain once. Every
operation is elementwise: a strike's values do not depend on what is priced with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.sim.prices import ROW as _ROW
from bot.sim.prices import SessionRows, price_flat
from strategies.instruments import INSTRUMENTS
from strategies.types import Chain

if TYPE_CHECKING:
    from bot.sim.lazymap import LazyMap
    from bot.sim.market import Market

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

    def row(self, ch: _LazyChain, i: int, strike: float) -> tuple[float, ...] | None:
        """In a session: the row of strike `i` (= `strike`) of `ch` at this build's minute,
        from the session cache. The first miss of the build prices it to the close together
        with the strikes each chain was asked in the previous build (missing too), in one
        pass; up to ONE_BY_ONE later misses are priced alone; beyond that None (nothing
        done): a scan of the chain prices the whole chain once instead."""
        rows, k = self.rows, self.k
        assert rows is not None
        key = (ch.symbol, ch.expiry, float(strike))
        if key not in rows.rows:
            if not self.joint:
                self.joint = True
                keys = [key]
                for c in self.chains:
                    d = c.__dict__
                    if "_lazy" in d and _hot(d):
                        keys += [x for s in c.strikes[d["_hot"]].tolist()
                                 if (x := (c.symbol, c.expiry, s)) not in rows.rows]
                rows.fill(self.sess, k, list(dict.fromkeys(keys)))
            elif self.fills >= ONE_BY_ONE:
                return None
            else:
                self.fills += 1
                rows.fill(self.sess, k, [key])
        row = rows.get(key, k)  # Python floats, as before
        if row is None and k >= rows.rows[key][0]:  # a minute off the stride: it alone
            rows.price_at(self.sess, k, key)
            row = rows.get(key, k)
        ch.__dict__["_q"][i] = row
        return row

    def price_joint(self, asking: _LazyChain, i: int) -> None:
        self.joint = True
        todo = []
        chains = self.chains
        if not any(ch is asking for ch in chains):  # made after the build was replaced
            chains = [*chains, asking]
        for ch in chains:
            d = ch.__dict__
            if "_lazy" not in d or not (_hot(d) or ch is asking):
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
            _store(ch.__dict__["_q"], idx, p)


def _hot(d: dict[str, Any]) -> list[int] | None:
    """The strikes a chain (its `__dict__`) prices ahead: resolved from its build's source
    (a function of the last build's lookups) on first need, which in a session is rare (the
    row cache answers most lookups); None once priced."""
    h = d["_hot"]
    if h is not None and not isinstance(h, list):
        h = d["_hot"] = h().get((d["symbol"], d["expiry"]), [])
    return h


def _store(got: dict[int, tuple[float, ...]], idx: list[int], p: dict[str, np.ndarray]) -> None:
    """Rows (Python floats, in `_ROW` order) of the strikes `idx` priced in `p`, into `got`."""
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
             fwd: float, hot: list[int] | Callable[[], dict[tuple[str, date], list[int]]],
             ix: dict[float, int]) -> _LazyChain:
        """`t_at`: years to expiry as priced; `hot`: indices into `ks` to price ahead, or a
        function giving them by (symbol, expiry); `ix`: strike -> index into `ks`."""
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
            rows = build.rows
            if rows is not None and rows.sess is build.sess:  # its session's cache
                # a row read at this minute already (the broker marked it this step): the one
                # `build.row` would give, without its two calls
                at = rows._at.get((d["symbol"], d["expiry"], float(strike)))
                if at is not None and at[0] == build.k:
                    d["_q"][i] = at[1]
                    return at[1]  # type: ignore[no-any-return]
                return build.row(self, i, strike)  # None: many misses, the caller reads the arrays
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
                self._price_rows([i])
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
        rows = build.rows
        if idx and rows is not None:  # what its session priced (kept a session) is read
            left = []
            for i in idx:
                row = rows.kept(build.sess, (self.symbol, self.expiry, float(d["strikes"][i])),
                                build.k)
                if row is None:
                    left.append(i)
                else:
                    got[i] = row
            idx = left
        if idx:
            self._price_rows(idx)

    def _price_rows(self, idx: list[int]) -> None:
        """Price strikes `idx` (indices, ascending) from the build's state into the rows."""
        d = self.__dict__
        (p,) = _price(d["_lazy"].state, [(self.symbol, d["strikes"][idx], self._t_at, self._fwd)])
        _store(d["_q"], idx, p)

    def asked(self) -> list[int]:
        """Indices of the strikes looked up by `quote()`/`delta()`/`vega()` so far, ascending."""
        return sorted(self.__dict__["_asked"])

    def __reduce__(self) -> tuple:
        return Chain, tuple(getattr(self, f.name) for f in dataclasses.fields(Chain))


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


def state(mk: Market, sf: float | None = None) -> tuple:
    """The market state a build prices from (see `_price`); `sf`: the spread factor, when
    the caller has read it already."""
    return (mk, mk.spx, mk.v, mk.vix, mk.r, mk.q, mk.spread_factor if sf is None else sf)
