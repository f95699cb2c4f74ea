"""The session row cache (bot.sim.prices.SessionRows): a strike asked again later in the
session reads the row of the minute it is asked at, bit for bit what pricing it fresh at that
minute gives; rows never leak into the next session."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from bot.broker.sim import SimBroker
from bot.clock import SimClock
from bot.sim import lazychain as ch_mod
from bot.sim.market import years_to
from strategies import expiry as xp
from strategies.types import Contract

START = datetime(2026, 1, 5, 9, 45, tzinfo=xp.NY)


def fresh(b: SimBroker, ch, strike: float) -> tuple[float, ...]:
    (p,) = ch_mod._price(ch_mod.state(b.market),
                         [(ch.symbol, np.array([strike]), ch._t_at, ch._fwd)])
    return tuple(p[c][0].item() for c in ch_mod._ROW)


@pytest.mark.parametrize("scenario, tick, stride", [
    ("chop", 420, 1), ("crash_2020", 60, 1),
    ("chop", 300, 5),  # every read on the stride
    ("chop", 420, 5), ("calm", 60, 5),  # reads off the stride: those minutes priced alone
])
async def test_rows_are_those_of_the_minute_asked(scenario: str, tick: float,
                                                  stride: int) -> None:
    b = SimBroker(SimClock(START), scenario, 7, stride=stride)
    held: list[tuple[str, object, float]] = []
    sessions, checked = set(), 0
    for _ in range(150):
        snap = await b.snapshot()
        if not held:  # the same strikes all along, SPX and VIX, as a held position is
            e = sorted(snap.chains)[1]
            ks = snap.chains[e].strikes
            i = int(ks.searchsorted(snap.spx))
            held = [("SPX", e, float(ks[i - 8])), ("SPX", e, float(ks[i + 6]))]
            ve = sorted(snap.vix_chains)[0]
            held += [("VIX", ve, 20.0), ("VIX", ve, 30.0)]
        for sym, e, k in held:
            ch = (snap.chains if sym == "SPX" else snap.vix_chains)[e]
            want = fresh(b, ch, k)
            for right, (bid, ask, delta, vega) in (("C", (0, 1, 4, 6)), ("P", (2, 3, 5, 7))):
                assert ch.quote(k, right) == (want[bid], want[ask])
                assert ch.delta(k, right) == want[delta]
                assert ch.vega(k, right) == want[vega]
                # Python floats, never numpy scalars (round() on those rounds differently)
                assert {type(x) for x in (*ch.quote(k, right), ch.delta(k, right))} == {float}
            checked += 1
        cur = b.book._rows.current()
        if cur is not None:
            sessions.add(id(cur[0]))
            for sym, e, k in held:  # served from the cache, filled at an earlier minute
                k0, rows = b.book._rows.rows[(sym, e, k)]
                n = cur[0]["n"]  # minute k0, then the later minutes on the stride
                assert k0 <= cur[1] and len(rows) == 1 + n // stride - k0 // stride
                if stride == 1:
                    assert len(rows) == n + 1 - k0
        b.clock.advance(tick)
        if not xp.is_spx_open(b.clock.now()):
            b.clock.set(xp.next_spx_open(b.clock.now()))
    assert checked == 150 * len(held)
    assert len(sessions) >= 2 if tick >= 300 else len(sessions) == 1
    odd = b.book._rows._odd  # the minutes off the stride read in the last session
    assert (not odd) if tick % (60 * stride) == 0 else odd


def test_a_stride_below_one_minute_is_refused() -> None:
    with pytest.raises(ValueError, match="stride"):
        SimBroker(SimClock(START), "calm", 7, stride=0)


async def test_a_new_session_starts_empty() -> None:
    b = SimBroker(SimClock(START), "calm", 7)
    snap = await b.snapshot()
    e = sorted(snap.chains)[0]
    k = float(snap.chains[e].strikes[len(snap.chains[e].strikes) // 2])
    snap.chains[e].quote(k, "C")
    b.clock.advance(300)
    await b.snapshot()  # the strike was asked: priced for the rest of the session
    assert b.book._rows.rows
    b.clock.set(xp.next_spx_open(b.clock.now()))
    await b.snapshot()
    assert b.book._rows.current() is not None and not b.book._rows.rows


def test_the_session_grid_equals_the_minute_by_minute_values() -> None:
    """Market.grid_*: VIX, years to expiry, forwards and the VIX curve at every minute of a
    session are what the per-minute formulas give at that minute (bit for bit)."""
    from bot.sim.market import Market, years_to

    mk = Market("crash_2020", 7, START)
    exps = xp.spx_monthlies(xp.exchange_date(mk.time), 4)
    checked = 0
    for _ in range(2 * 400):
        s = mk.grid()
        if s is not None:
            k = s["k"]
            assert mk.vix == mk.vix_at(mk.v)
            for e in exps:
                t = years_to(e, mk.time)
                assert mk.grid_years(s, e)[k] == t
                assert mk.grid_forward(s, e)[k] == mk.forward(np.array([t]))[0]
            fut, tv = mk.vix_curve(mk.time, 6)
            day = xp.exchange_date(mk.time)
            ts = [(e, years_to(e, mk.time)) for e in xp.vix_expiries(day, 6)]
            live = [(e, t) for e, t in ts if t > 0]
            px = mk.vix_future(np.array([t for _, t in live]))
            tick = 0.05
            assert tv == [t for _, t in live]
            assert fut == {e: round(round(float(p) / tick) * tick, 2)
                           for (e, _), p in zip(live, px)}
            checked += 1
        nxt = mk.now + timedelta(minutes=1)
        mk.advance_to(nxt if xp.is_spx_open(nxt) else xp.next_spx_open(nxt))
    assert checked > 700


async def test_a_chain_read_after_its_session_gives_its_build_values() -> None:
    b = SimBroker(SimClock(START), "chop", 7)
    snap = await b.snapshot()
    e = sorted(snap.chains)[1]
    ks = snap.chains[e].strikes
    k = float(ks[int(ks.searchsorted(snap.spx))])
    snap.chains[e].quote(k, "C")
    b.clock.advance(60)
    old = await b.snapshot()  # k is hot: its rows come from the session cache
    want = fresh(b, old.chains[e], k + 5)
    held = fresh(b, old.chains[e], k)
    b.clock.advance(3 * 3600)  # the session's rows of k run to its close
    await b.snapshot()
    b.clock.set(xp.next_spx_open(b.clock.now()))
    await b.snapshot()  # the next session: its cache starts empty, the last one's is kept
    got = old.chains[e]
    assert got.quote(k, "C") == (held[0], held[1]) and got.vega(k, "P") == held[7]  # kept
    assert got.quote(k + 5, "P") == (want[2], want[3]) and got.delta(k + 5, "C") == want[4]
    assert b.book._rows.prev and (("SPX", e, k) in b.book._rows.prev)


async def test_broker_quotes_of_held_options_read_the_minute_asked() -> None:
    """`ChainBook.quote` (what the broker marks and fills at) serves a strike whose row the
    session has priced from that row, without making its chain: the same (bid, ask) as
    pricing it fresh at each minute, calls and puts, SPX and VIX; an option of a class the
    chain does not list is still refused though its strike's row is there."""
    from strategies.types import Contract

    b = SimBroker(SimClock(START), "chop", 7)
    held: list[Contract] = []
    served = 0
    for _ in range(40):
        snap = await b.snapshot()
        if not held:
            e = sorted(snap.chains)[1]
            ks = snap.chains[e].strikes
            i = int(ks.searchsorted(snap.spx))
            ve = sorted(snap.vix_chains)[0]
            held = [Contract("SPX", "OPT", e, float(ks[i - 8]), r, "SPX") for r in "CP"]
            held += [Contract("VIX", "OPT", ve, 25.0, r, "VIX", 100) for r in "CP"]
            for c in held:  # the first ask prices the rows (through the chain)
                b.book.quote(c)
        got = [b.book.quote(c) for c in held]
        if served:  # a later step: the rows served the quotes, no chain was made for them
            assert not [*b.book.chains.made(), *b.book.vix_chains.made()]
        for c, q in zip(held, got):
            chains = snap.chains if c.symbol == "SPX" else snap.vix_chains
            want = fresh(b, chains[c.expiry], c.strike)
            assert q == ((want[0], want[1]) if c.right == "C" else (want[2], want[3]))
            assert {type(x) for x in q} == {float}
            served += 1
        other = Contract("SPX", "OPT", held[0].expiry, held[0].strike, "C", "SPXW")
        # the broker's marks (`held_mids`): the mids of those quotes, computed here from the
        # fresh prices; None (quote's own path) for a future and for a class not listed
        fut = Contract("VIX", "FUT", sorted(snap.vix_futures)[0], 0.0, "", "VX", 1000)
        mids = b.book.held_mids([*held, fut, other])
        for c, m in zip(held, mids):
            chains = snap.chains if c.symbol == "SPX" else snap.vix_chains
            w = fresh(b, chains[c.expiry], c.strike)
            assert m == ((w[0] + w[1]) / 2 if c.right == "C" else (w[2] + w[3]) / 2)
        assert mids[len(held):] == [None, None]
        with pytest.raises(KeyError):
            b.book.quote(other)
        b.clock.advance(300)
        if not xp.is_spx_open(b.clock.now()):
            b.clock.set(xp.next_spx_open(b.clock.now()))
    assert served == 40 * len(held)


async def test_a_snapshot_read_late_in_its_session_is_not_served_a_later_row() -> None:
    """A strike first priced at a later minute has rows from that minute on; a snapshot of
    an earlier minute of the same session, read afterwards, prices it at its own minute (a
    row index before the first one wrapped round to the end of the session)."""
    b = SimBroker(SimClock(START), "chop", 7)
    early = await b.snapshot()
    e = sorted(early.chains)[1]
    b.clock.advance(1800)
    now = await b.snapshot()
    ks = now.chains[e].strikes
    k = float(ks[int(ks.searchsorted(now.spx)) - 3])
    now.chains[e].quote(k, "P")  # its rows: from this minute to the close
    assert ("SPX", e, k) in b.book._rows.rows
    ref = SimBroker(SimClock(START), "chop", 7)
    want = (await ref.snapshot()).chains[e]
    i = int(want.strikes.searchsorted(k))
    assert early.chains[e].quote(k, "P") == (want.put_bid[i], want.put_ask[i])


async def test_the_first_marks_of_a_session_price_every_held_strike_in_one_pass() -> None:
    """At a session's first step no held strike has rows yet: `held_mids` prices all of them
    (SPX in two expiries, VIX) in one fill and gives the mids fresh prices give; a strike or
    expiry that no chain lists is left to `quote`'s own path (None)."""
    b = SimBroker(SimClock(START), "chop", 7, stride=5)
    snap = await b.snapshot()
    exps, vexp = sorted(snap.chains), sorted(snap.vix_chains)[0]
    ks = snap.chains[exps[0]].strikes
    i = int(ks.searchsorted(snap.spx))
    held = [Contract("SPX", "OPT", exps[0], float(ks[i - 5]), "P", "SPX", 100),
            Contract("SPX", "OPT", exps[0], float(ks[i + 4]), "C", "SPX", 100),
            Contract("SPX", "OPT", exps[2], float(ks[i - 9]), "P", "SPX", 100),
            Contract("VIX", "OPT", vexp, 25.0, "C", "VIX", 100)]
    unlisted = [Contract("SPX", "OPT", exps[0], float(ks[i]) + 2.5, "C", "SPX", 100),
                Contract("SPX", "OPT", exps[-1] + timedelta(days=400), float(ks[i]), "C",
                         "SPX", 100)]
    fills: list[int] = []
    real = b.book._rows.fill
    b.book._rows.fill = lambda s, k0, keys: (fills.append(len(keys)), real(s, k0, keys))[1]
    assert not b.book._rows.rows
    mids = b.book.held_mids([*held, *unlisted])
    assert fills == [len(held)]  # one pass, the held strikes only
    for c, m in zip(held, mids):
        chains = snap.chains if c.symbol == "SPX" else snap.vix_chains
        w = fresh(b, chains[c.expiry], c.strike)
        assert m == ((w[0] + w[1]) / 2 if c.right == "C" else (w[2] + w[3]) / 2)
    assert mids[len(held):] == [None, None]
    assert b.book.held_mids(held) == mids[:len(held)] and fills == [len(held)]  # now rows


async def test_a_stride_changes_no_listing_or_quote_on_or_off_it() -> None:
    """A broker on a 5-minute stride lists and quotes what one on every minute does, at
    minutes on the stride and off it (years to expiry, forwards, quotes, greeks)."""
    a = SimBroker(SimClock(START), "chop", 7)
    b = SimBroker(SimClock(START), "chop", 7, stride=5)
    for step in range(40):
        sa, sb = await a.snapshot(), await b.snapshot()
        assert sorted(sa.chains) == sorted(sb.chains)
        for e in sorted(sa.chains):
            ca, cb = sa.chains[e], sb.chains[e]
            assert (ca.t, ca._t_at, ca._fwd) == (cb.t, cb._t_at, cb._fwd)
        e = sorted(sa.chains)[1]
        ks = sa.chains[e].strikes
        for k in ks[int(ks.searchsorted(sa.spx)) - 4:][:8:3].tolist():
            for right in "CP":
                assert sa.chains[e].quote(k, right) == sb.chains[e].quote(k, right)
                assert sa.chains[e].delta(k, right) == sb.chains[e].delta(k, right)
        for c in (a, b):
            c.clock.advance(60 * (1 + step % 4))  # on and off the stride


@pytest.mark.parametrize("scenario, stride", [("chop", 5), ("crash_2020", 1), ("calm", 7)])
async def test_after_the_index_close_quotes_come_from_the_last_minute_rows(
        scenario: str, stride: int) -> None:
    """From 16:00 to the options' close the market holds its last minute's state: the
    builds of those steps read that minute's rows (none is priced apart), and every quote,
    delta and mark is what pricing the chain's own listing fresh gives."""
    b = SimBroker(SimClock(datetime(2026, 1, 5, 15, 50, tzinfo=xp.NY)), scenario, 7,
                  stride=stride)
    snap = await b.snapshot()
    e, ve = sorted(snap.chains)[1], sorted(snap.vix_chains)[0]
    ks = snap.chains[e].strikes
    i = int(ks.searchsorted(snap.spx))
    held = [Contract("SPX", "OPT", e, float(ks[i - 6]), "P", "SPX", 100),
            Contract("SPX", "OPT", e, float(ks[i + 5]), "C", "SPX", 100),
            Contract("VIX", "OPT", ve, 22.0, "C", "VIX", 100)]
    b.book.held_mids(held)  # held: rows from 15:50 on
    for minutes in (10, 5, 5):  # 16:00 (the index close), 16:05, 16:10
        b.clock.advance(60 * minutes)
        snap = await b.snapshot()
        cur = b.book._rows.current()
        assert cur is not None and cur[1] == cur[0]["n"] and b.market.grid() is None
        mids = b.book.held_mids(held)
        for c, m in zip(held, mids):
            ch = (snap.chains if c.symbol == "SPX" else snap.vix_chains)[c.expiry]
            want = fresh(b, ch, c.strike)
            if m is None:  # off the stride (390 % 7): the broker takes quote's path
                assert 390 % stride
                m = sum(b.book.quote(c)) / 2
            assert m == ((want[0] + want[1]) / 2 if c.right == "C" else (want[2] + want[3]) / 2)
            for right, (bid, ask, delta) in (("C", (0, 1, 4)), ("P", (2, 3, 5))):
                assert ch.quote(c.strike, right) == (want[bid], want[ask])
                assert ch.delta(c.strike, right) == want[delta]
        assert "_lazy" in snap.chains[e].__dict__  # the chain's arrays were never priced
        # the listing: what the market's own formulas give at this instant
        when = b.market.time
        for x in sorted(snap.chains):
            t_x = years_to(x, when)
            assert (snap.chains[x].t, snap.chains[x]._fwd) == (
                t_x, float(b.market.forward(np.array([t_x]))[0]))
        fut, _ = b.market.vix_curve(when, b.book.n_vix)
        assert dict(snap.vix_futures) == fut and sorted(snap.vix_chains) == sorted(fut)
        assert [snap.vix_chains[x]._fwd for x in sorted(fut)] == [fut[x] for x in sorted(fut)]


async def test_a_watched_condor_is_marked_next_morning_from_the_rows_kept() -> None:
    """The CNDR baseline marks its condor at the day's last snapshot, read the next
    morning: strikes `watch`ed are priced with the session's first marks, and that late
    read takes the closing minute's rows kept (nothing priced again), at fresh prices."""
    from bot.baselines import condor_value

    b = SimBroker(SimClock(START), "chop", 7, stride=5)
    snap = await b.snapshot()
    e = sorted(snap.chains)[1]
    ks = snap.chains[e].strikes
    i = int(ks.searchsorted(snap.spx))
    strikes = (float(ks[i - 12]), float(ks[i - 6]), float(ks[i + 6]), float(ks[i + 12]))
    b.book.watch([("SPX", e, k) for k in strikes])
    held = [Contract("SPX", "OPT", e, float(ks[i - 3]), "P", "SPX", 100)]
    b.clock.set(xp.next_spx_open(b.clock.now()))  # a new session: its first marks
    await b.snapshot()
    b.book.held_mids(held)
    assert all(("SPX", e, k) in b.book._rows.rows for k in strikes)
    b.clock.set(datetime.combine(b.clock.now().astimezone(xp.NY).date(), datetime.min.time(),
                                 tzinfo=xp.NY).replace(hour=16, minute=10))
    last = await b.snapshot()  # the day's last snapshot: the market at its close
    chain = last.chains[e]
    want = [fresh(b, chain, k) for k in strikes]
    b.clock.set(xp.next_spx_open(b.clock.now()))
    await b.snapshot()  # the next morning: that session's rows are kept, no longer current
    priced: list[list[int]] = []
    chain._price_rows = lambda idx: priced.append(idx)  # type: ignore[method-assign]
    value = condor_value(chain, strikes)
    assert priced == []
    mid = [(w[2] + w[3]) / 2 if j < 2 else (w[0] + w[1]) / 2 for j, w in enumerate(want)]
    assert value == mid[0] - mid[1] - mid[2] + mid[3]
