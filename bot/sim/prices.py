"""The simulator's option pricing pass (`price_flat`) and the session row cache built on it.

`price_flat` is the one closed-form pass `bot.sim.chains` prices chains with (see
`lazychain._price`). Every operation in it is elementwise, and the market inputs (spot,
variance, VIX, spread factor) may be arrays aligned with the strikes as well as scalars: a
value priced with the state of minute k is the same, bit for bit, whether it is priced alone
at minute k or in one pass over the minutes of a session.

`SessionRows` uses that: a session's path (spot and variance at every grid minute) is drawn
when the session opens (`bot.sim.market.Market._open_session`), so the quotes of a strike a
step holds can be priced for the rest of the session in one pass, the first time it is
asked, and every later minute reads its row (call bid, ask, put bid, ask, call delta, put
delta, call vega, put vega) from the cache instead of pricing a handful of strikes again.
The cache belongs to one session (a new session, or a market without one, starts empty).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.sim.grid import vx_tick
from strategies.instruments import INSTRUMENTS
from strategies.pricing import black76_quote

if TYPE_CHECKING:
    from bot.sim.market import Market

_SPX, _VIX = INSTRUMENTS["SPX"], INSTRUMENTS["VIX"]
ROW = ("call_bid", "call_ask", "put_bid", "put_ask", "call_delta", "put_delta", "call_vega",
       "put_vega")
# (half-spread a + b x price, tick below the break, tick at or above, break) by option class
SPREAD = {sym: (a, b, i.tick_small, i.tick_big, i.tick_break)
          for sym, a, b, i in (("SPX", 0.05, 0.004, _SPX), ("VIX", 0.02, 0.015, _VIX))}
_SPREADS = np.array([SPREAD["SPX"], SPREAD["VIX"]] * 2)  # rows: call SPX, VIX, put SPX, VIX


def _head(x: Any, ns: int) -> Any:
    return x[:ns] if np.ndim(x) else x


def _tail(x: Any, ns: int) -> Any:
    return x[ns:] if np.ndim(x) else x


def price_flat(mk: Market, S: Any, v: Any, vix: Any, r: float, dy: float, sf: Any,
               K: np.ndarray, T: np.ndarray, F: np.ndarray, ns: int,
               sizes: list[int]) -> list[dict[str, np.ndarray]]:
    """Quotes and greeks at strikes K (SPX first: the first `ns`), years T, forwards F, split
    into parts of `sizes`; S, v, vix and sf are scalars or arrays aligned with K (see
    `lazychain._price` for the model)."""
    n = K.size
    if ns == n:
        iv = mk.spx_iv(K, T, S, v)
    elif ns == 0:
        iv = mk.vix_iv_at(K, F, T, vix)
    else:
        iv = np.concatenate([mk.spx_iv(K[:ns], T[:ns], _head(S, ns), _head(v, ns)),
                             mk.vix_iv_at(K[ns:], F[ns:], T[ns:], _tail(vix, ns))])
    call, cd, vega = black76_quote("c", F, K, T, r, iv)
    df = np.exp(-r * T)
    px = np.concatenate([call, np.maximum(call - df * (F - K), 0.0)])  # puts by parity
    if ns in (0, n):  # one class
        a, b, small, big, brk = SPREAD["SPX" if ns else "VIX"]
    else:
        a, b, small, big, brk = np.repeat(_SPREADS, [ns, n - ns, ns, n - ns], axis=0).T
    if np.ndim(sf):
        sf = np.concatenate([sf, sf])  # calls, then puts
    half = sf * (a + b * px)
    q = np.empty((2, 2 * n))  # bid, ask
    np.maximum(np.subtract(px, half, out=q[0]), 0.0, out=q[0])
    np.maximum(np.add(px, half, out=q[1]), small, out=q[1])
    tick = np.where(q < brk, small, big)
    q /= tick
    np.floor(np.add(q[0], 1e-9, out=q[0]), out=q[0])
    np.ceil(np.subtract(q[1], 1e-9, out=q[1]), out=q[1])
    q *= tick
    np.round(q, 2, out=q)
    # delta: SPX w.r.t. the index (Black-76 delta x e^((r-q)t)), VIX w.r.t. its future
    if ns == n:
        cd /= df
        eq = np.exp(-dy * T)
        pd_ = (cd - 1.0) * eq
        cd *= eq
    elif ns == 0:
        pd_ = cd - df
    else:
        eq = np.exp(-dy * T[:ns])
        cd[:ns] /= df[:ns]
        pd_ = np.concatenate([(cd[:ns] - 1.0) * eq, cd[ns:] - df[ns:]])
        cd[:ns] *= eq
    out, lo = [], 0
    for m in sizes:
        sl, sp = slice(lo, lo + m), slice(n + lo, n + lo + m)
        out.append({"call_bid": q[0, sl], "call_ask": q[1, sl], "put_bid": q[0, sp],
                    "put_ask": q[1, sp], "call_delta": cd[sl], "put_delta": pd_[sl],
                    "call_iv": iv[sl], "put_iv": iv[sl], "call_vega": vega[sl],
                    "put_vega": vega[sl]})
        lo += m
    return out


class SessionRows:
    """Rows of strikes priced for the rest of one session: (symbol, expiry, strike) ->
    (first minute k0, [row at k0, then at each later minute on the decision stride, to the
    close]).

    `stride` (minutes): the minutes a backtest's steps read (its tick: open + j x stride).
    A fill prices its first minute and the later multiples of the stride, not every minute
    (a year of 5-minute ticks read rows at 64 k (key, minute) pairs of the 386 k priced
    minute by minute). A read off the stride prices that one minute alone (`price_at`): the
    same numbers, since pricing is elementwise. With stride 1 every minute is priced."""

    def __init__(self, mk: Market, stride: int = 1) -> None:
        if stride < 1:
            raise ValueError(f"stride must be a whole number of minutes >= 1, not {stride}")
        self.mk = mk
        self.stride = stride
        self.sess: dict | None = None  # the session the rows belong to
        self.rows: dict[tuple[str, date, float], tuple[int, np.ndarray]] = {}
        self.prev_sess: dict | None = None  # the session before, and its rows
        self.prev: dict[tuple[str, date, float], tuple[int, np.ndarray]] = {}
        self._at: dict[tuple[str, date, float], tuple[int, tuple[float, ...]]] = {}  # last read
        self._odd: dict[tuple[tuple[str, date, float], int], tuple[float, ...]] = {}  # off stride

    def current(self) -> tuple[dict, int] | None:
        """(session, minute) of the market's state now; None between sessions. From the
        index close until the next open the market holds the state of its last session's
        last minute (the options trade on to 16:15): that session and minute, whose rows hold
        those very prices (a day's last steps, and the marks made then, read them)."""
        s = self.mk.grid()
        if s is None:
            last = self.sess
            return (last, last["n"]) if last is not None and self.mk.holds_close(last) else None
        if s is not self.sess:  # a new session; the last one's rows are kept for reading
            self.prev_sess, self.prev = self.sess, self.rows
            self.sess, self.rows, self._at, self._odd = s, {}, {}, {}
        return s, s["k"]

    def _index(self, k0: int, k: int) -> int | None:
        """Where minute k is in rows filled from k0 (k >= k0); None: not priced there."""
        st = self.stride
        if k == k0:
            return 0
        return None if k % st else k // st - k0 // st

    def kept(self, sess: dict | None, key: tuple[str, date, float],
             k: int) -> tuple[float, ...] | None:
        """The row at minute k of `key` in the previous session `sess` (a chain read after
        its session ended), if it was priced then; None otherwise."""
        got = self.prev.get(key) if sess is not None and sess is self.prev_sess else None
        if got is None or k < got[0]:
            return None
        i = self._index(got[0], k)
        return None if i is None else tuple(got[1][i].tolist())

    def get(self, key: tuple[str, date, float], k: int) -> tuple[float, ...] | None:
        """The row of `key` at minute k of this session; None when it is not priced (no
        fill of the key yet, a fill from a later minute, or a minute off the stride that
        `price_at` has not priced)."""
        at = self._at.get(key)
        if at is not None and at[0] == k:  # the broker's mark and the strategy read one minute
            return at[1]
        got = self.rows.get(key)
        if got is None or k < got[0]:
            return None
        k0, st = got[0], self.stride
        if k == k0 or not k % st:  # (`_index`, inline: a step reads a few rows)
            row = tuple(got[1][0 if k == k0 else k // st - k0 // st].tolist())
        else:
            odd = self._odd.get((key, k))
            if odd is None:
                return None
            row = odd
        self._at[key] = (k, row)
        return row

    def _state(self, s: dict) -> tuple[np.ndarray, ...]:
        """(spot, variance, VIX, spread factor) at every minute of session `s`, each as the
        market computes it at that minute (`Market.vix`, `Market.spread_factor`)."""
        got = s["cache"].get("state")
        if got is None:
            S, v = self.mk.grid_path(s)
            vix = self.mk.grid_vix(s)[0]
            sf = np.minimum(6.0, np.maximum(0.8, vix / 15.0))
            got = s["cache"]["state"] = (S, v, vix, sf)
        return got

    def _vix_future(self, s: dict, e: date, at: slice | np.ndarray) -> np.ndarray:
        """The VIX future of expiry `e` at the minutes `at`, as `Market.vix_curve` lists it
        (elementwise: the values it has in the whole session's curve)."""
        return np.array([vx_tick(p) for p in self.mk._grid_curve(s, [e], at)[0][2]])

    def fill(self, s: dict | None, k0: int, keys: list[tuple[str, date, float]]) -> None:
        """Price `keys` (SPX ones first) from minute k0 to the close, in one pass: minute k0
        and the later minutes on the stride."""
        assert s is not None and s is self.sess
        st = self.stride
        at: slice | np.ndarray = slice(k0, None)
        if st > 1:
            at = np.arange((k0 // st) * st, s["n"] + 1, st)  # k0's stride minute, then on
            at[0] = k0
        for key, rows in self._price(s, at, keys):
            self.rows[key] = (k0, rows)

    def price_at(self, s: dict | None, k: int, key: tuple[str, date, float]) -> None:
        """Price `key` at minute k alone (a read off the stride of rows filled before)."""
        assert s is not None and s is self.sess
        ((_, rows),) = self._price(s, np.array([k]), [key])
        self._odd[(key, k)] = tuple(rows[0].tolist())

    def _price(self, s: dict, at: slice | np.ndarray, keys: list[tuple[str, date, float]]
               ) -> list[tuple[tuple[str, date, float], np.ndarray]]:
        """Rows of `keys` at the minutes `at` of session `s` (by minute, in ROW order)."""
        mk = self.mk
        S, v, vix, sf = (x[at] for x in self._state(s))
        m = S.size
        keys = sorted(keys, key=lambda x: x[0] != "SPX")
        ns = m * sum(1 for sym, _, _ in keys if sym == "SPX")
        T = np.concatenate([mk.grid_years(s, e)[at] for _, e, _ in keys])
        vxf: dict[date, np.ndarray] = {}  # VIX futures at `at`, by expiry (once a pass)
        F = np.concatenate([mk.grid_forward(s, e)[at] if sym == "SPX" else
                            vxf[e] if e in vxf else vxf.setdefault(e, self._vix_future(s, e, at))
                            for sym, e, _ in keys])
        K = np.repeat(np.array([k for _, _, k in keys], dtype=float), m)
        nk = len(keys)
        out = price_flat(mk, np.tile(S, nk), np.tile(v, nk), np.tile(vix, nk), mk.r, mk.q,
                         np.tile(sf, nk), K, T, F, ns, [m] * nk)
        return [(key, np.array([p[c] for c in ROW]).T) for key, p in zip(keys, out)]
