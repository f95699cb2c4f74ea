"""When IB last updated each market data line's bid/ask, on the broker clock.

IB's tick messages carry no time, and ib_async's `Ticker.time` moves with any tick (model
greeks too), so a frozen bid/ask behind a live model would look fresh by it. `QuoteTimes`
stamps a line when a bid/ask tick (price or size) arrives for it, with the broker clock's
time (`now`, IBBroker's BrokerClock: an accelerated emulator's market time).

A subscription's first quotes are TWS's cached values, not an update: they count as `first`
until the book has seen them (`settle`, once the new lines' first bid/ask are in) or for
FIRST_QUOTE_WALL wall seconds, whichever ends first. A wall window alone misread a fast
(manual or accelerated) emulator: an hour of market time can pass in under 0.5 wall seconds,
so real updates counted as first quotes and the chain aged as if frozen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from ib_async import Ticker

DELAY = timedelta(minutes=15)  # delayed market data (types 3/4)
# TWS API tick types of a bid/ask update: bid size, bid, ask, ask size (0-3) and their
# delayed twins (66 bid, 67 ask, 69 bid size, 70 ask size).
QUOTE_TICKS = frozenset({0, 1, 2, 3, 66, 67, 69, 70})
FIRST_QUOTE_WALL = 0.5  # wall seconds after a line's first bid/ask that still belong to it


class QuoteTimes:
    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.quoted: dict[Ticker, datetime] = {}  # line -> last bid/ask update
        self.first: dict[Ticker, tuple[float, datetime]] = {}  # line -> (wall, its first quote)
        self._since_sync: set[Ticker] = set()  # lines stamped since the last clock sync
        self._settled: set[Ticker] = set()  # lines whose first quotes are in: ticks update

    def stamp(self, tickers: Iterable[Ticker], lines: set[Ticker]) -> None:
        """One packet's tickers (pendingTickersEvent): stamp those of `lines` whose bid or ask
        moved. The quotes a subscription starts with (TWS's cached values, within
        FIRST_QUOTE_WALL of the first) are its `first`, not an update."""
        at: datetime | None = None
        mono = time.monotonic()
        for t in tickers:
            if t in lines and any(tk.tickType in QUOTE_TICKS for tk in t.ticks):
                at = at or self.now()
                born = self.first.setdefault(t, (mono, at))
                if t in self._settled or mono - born[0] > FIRST_QUOTE_WALL:
                    self.quoted[t] = at
                self._since_sync.add(t)

    def settle(self, tickers: Iterable[Ticker]) -> None:
        """These lines' first quotes have arrived (they have a bid/ask): any later bid/ask
        tick for them is an update."""
        self._settled.update(t for t in tickers if t in self.first)

    def clock_synced(self, jumped_to: datetime | None) -> None:
        """The broker clock was read again. A server clock that jumped forward (an emulator's
        manual clock: it moves, then pushes the new quotes) dates the bid/asks received since
        the previous read at the jump's end rather than at our stale extrapolation."""
        if jumped_to is not None:
            for t in self._since_sync:
                if t in self.quoted:
                    self.quoted[t] = jumped_to
                elif t in self.first:
                    self.first[t] = (self.first[t][0], jumped_to)
        self._since_sync.clear()

    def as_of(self, tickers: list[Ticker], now: datetime, delayed: bool) -> datetime:
        """A chain's quote time from its lines: the latest bid/ask update on any of them (the
        feed for this expiry is alive if anything on it moved); before any update, the oldest
        first quote; `now` without any bid/ask (the chain's quotes are all NaN then). Never
        after `now`; 15 min earlier for delayed data."""
        updates = [self.quoted[t] for t in tickers if t in self.quoted]
        firsts = [self.first[t][1] for t in tickers if t in self.first]
        t = max(updates) if updates else min(firsts) if firsts else now
        t = min(t, now)
        return t - DELAY if delayed else t

    def forget(self, t: Ticker) -> None:
        self._settled.discard(t)
        self.quoted.pop(t, None)
        self.first.pop(t, None)
        self._since_sync.discard(t)

    def clear(self) -> None:
        self._settled.clear()
        self.quoted.clear()
        self.first.clear()
        self._since_sync.clear()


QUOTE_FIELDS = ("bid", "bidSize", "ask", "askSize", "last", "lastSize", "prevBid", "prevBidSize",
                "prevAsk", "prevAskSize", "prevLast", "prevLastSize", "markPrice", "close")
GREEK_FIELDS = ("bidGreeks", "askGreeks", "lastGreeks", "modelGreeks")


def emptied(t: Ticker) -> Ticker:
    """A new subscription's ticker, emptied of what an earlier one left. ib_async keeps one
    Ticker per contract across cancelMktData and hands the same object back on the next
    reqMktData, still holding the old bid/ask and greeks: read before the new line's first
    ticks arrive, they passed as fresh quotes (a strike released and subscribed again an hour
    later was quoted at the old SPX level). No tick can arrive between reqMktData and this:
    nothing awaits in between."""
    nan = math.nan
    for name in QUOTE_FIELDS:
        setattr(t, name, nan)
    for name in GREEK_FIELDS:
        setattr(t, name, None)
    t.ticks = []
    return t
