"""SimBroker chains priced on demand: the same quotes and greeks as pricing every listed option
at once with the reference pricer (strategies.pricing.black76_price / black76_greeks), whether
read at once, a step late, strike by strike or as arrays; copies and pickles are plain Chains."""

from __future__ import annotations

import copy
import pickle
from datetime import datetime

import numpy as np
import pytest

from bot.broker.sim import SimBroker
from bot.clock import SimClock
from bot.sim.chains import VIX_STRIKES, tick_round
from strategies import expiry as xp
from strategies.pricing import black76_greeks, black76_price
from strategies.types import Chain, Snapshot

START = datetime(2026, 1, 5, 9, 45, tzinfo=xp.NY)
ARRAYS = ("call_bid", "call_ask", "put_bid", "put_ask", "call_delta", "put_delta", "call_iv",
          "put_iv", "call_vega", "put_vega")


def reference(b: SimBroker) -> dict[tuple[str, object], dict[str, np.ndarray]]:
    """Every listed option priced in one eager pass, as the simulator did before chains were
    priced on demand (reference high-precision price, full greeks, puts by parity)."""
    mk = b.market
    S, r, q, sf = mk.spx, mk.r, mk.q, mk.spread_factor
    spx = [(e, ch.t) for e, ch in b.book.chains.items()]
    vix = [(e, ch.t) for e, ch in b.book.vix_chains.items()]
    ks = next(iter(b.book.chains.values())).strikes
    ts, tv = np.array([t for _, t in spx]), np.array([t for _, t in vix])
    fv = np.array([b.book.futures[e] for e, _ in vix])
    ivs, ivv = mk.iv_surface(ks, ts), mk.vix_iv(VIX_STRIKES, fv, tv)
    ns, m, mv = ivs.size, len(ks), len(VIX_STRIKES)
    n = ns + ivv.size
    is_spx = np.tile(np.r_[np.ones(ns, bool), np.zeros(ivv.size, bool)], 2)
    K = np.concatenate([np.tile(ks, len(ts)), np.tile(VIX_STRIKES, len(tv))])
    F = np.concatenate([np.repeat(S * np.exp((r - q) * ts), m), np.repeat(fv, mv)])
    T = np.concatenate([np.repeat(ts, m), np.repeat(tv, mv)])
    iv = np.concatenate([ivs.ravel(), ivv.ravel()])
    call = black76_price("c", F, K, T, r, iv)
    g = black76_greeks("c", F, K, T, r, iv)
    df = np.exp(-r * T)
    px = np.concatenate([call, np.maximum(call - df * (F - K), 0.0)])
    a, bb = np.where(is_spx, 0.05, 0.02), np.where(is_spx, 0.004, 0.015)
    small, big = np.where(is_spx, 0.05, 0.01), np.where(is_spx, 0.10, 0.05)
    half = sf * (a + bb * px)
    bid = tick_round(np.maximum(px - half, 0.0), False, small, big)
    ask = tick_round(np.maximum(px + half, small), True, small, big)
    cd = g["delta"].copy()
    cd[:ns] /= df[:ns]  # SPX: N(d1), then x e^(-qt) for the delta to the index
    pd_ = cd - np.concatenate([np.ones(ns), df[ns:]])
    eq = np.exp(-q * T[:ns])
    cd[:ns] *= eq
    pd_[:ns] *= eq
    out = {}
    for sym, rows, width, base in (("SPX", spx, m, 0), ("VIX", vix, mv, ns)):
        for j, (e, _) in enumerate(rows):
            sl = slice(base + j * width, base + (j + 1) * width)
            out[(sym, e)] = {"call_bid": bid[:n][sl], "call_ask": ask[:n][sl],
                             "put_bid": bid[n:][sl], "put_ask": ask[n:][sl],
                             "call_delta": cd[sl], "put_delta": pd_[sl], "call_iv": iv[sl],
                             "put_iv": iv[sl], "call_vega": g["vega"][sl],
                             "put_vega": g["vega"][sl]}
    return out


def chains(snap: Snapshot) -> dict[tuple[str, object], Chain]:
    return {**{("SPX", e): c for e, c in snap.chains.items()},
            **{("VIX", e): c for e, c in snap.vix_chains.items()}}


async def walk(scenario: str, steps: int, tick: float):
    b = SimBroker(SimClock(START), scenario, 7)
    for _ in range(steps):
        snap = await b.snapshot()
        yield b, snap
        b.clock.advance(tick)
        if not xp.is_spx_open(b.clock.now()):
            b.clock.set(xp.next_spx_open(b.clock.now()))


@pytest.mark.parametrize("scenario, tick", [("chop", 300), ("crash_2020", 1800)])
async def test_arrays_equal_the_eager_reference(scenario: str, tick: float) -> None:
    n = 0
    async for b, snap in walk(scenario, 60, tick):
        ref = reference(b)  # before any chain is read: the state of this build
        for key, ch in chains(snap).items():
            for f in ARRAYS:  # quotes to the tick, greeks to the last bit
                np.testing.assert_array_equal(getattr(ch, f), ref[key][f], err_msg=f"{key} {f}")
            n += 1
    assert n >= 60 * 8


async def test_read_a_step_late_gives_the_values_of_its_build() -> None:
    held = None
    async for b, snap in walk("crash_2020", 40, 3600):
        if held is not None:
            old, ref = held
            for key, ch in chains(old).items():
                np.testing.assert_array_equal(ch.put_bid, ref[key]["put_bid"])
                np.testing.assert_array_equal(ch.call_delta, ref[key]["call_delta"])
        held = (snap, reference(b))


async def test_lookups_by_strike_equal_the_arrays() -> None:
    rng = np.random.default_rng(3)
    async for b, snap in walk("chop", 80, 300):
        ref = reference(b)
        for key, ch in chains(snap).items():
            ks = ch.strikes
            picks = [ks[len(ks) // 3], ks[len(ks) // 2], ks[rng.integers(len(ks))]]
            for k in picks:  # the first two are asked every build: priced ahead next time
                i = int(np.searchsorted(ks, k))
                for right, p in (("C", "call"), ("P", "put")):
                    assert ch.quote(k, right) == (ref[key][f"{p}_bid"][i], ref[key][f"{p}_ask"][i])
                    assert ch.delta(k, right) == ref[key][f"{p}_delta"][i]
                    assert ch.vega(k, right) == ref[key][f"{p}_vega"][i]
            with pytest.raises(KeyError):
                ch.quote(float(ks[0]) + 0.5, "C")
            with pytest.raises(KeyError):
                ch.delta(float(ks[-1]) + 1000.0, "P")


async def test_copies_and_pickles_are_plain_chains() -> None:
    async for _, snap in walk("calm", 1, 300):
        ch = next(iter(snap.chains.values()))
        for clone in (pickle.loads(pickle.dumps(ch)), copy.deepcopy(ch), copy.copy(ch)):
            assert type(clone) is Chain
            assert (clone.symbol, clone.expiry, clone.t) == (ch.symbol, ch.expiry, ch.t)
            for f in ARRAYS + ("strikes",):
                np.testing.assert_array_equal(getattr(clone, f), getattr(ch, f))
        assert isinstance(ch, Chain)
        assert "call_bid=array(" in repr(ch)
        with pytest.raises(AttributeError):
            ch.no_such_field  # noqa: B018


async def test_a_replaced_build_is_not_left_to_the_cyclic_collector() -> None:
    """A build's chains point back at it; once the next build replaces it nothing keeps that
    cycle, so reference counting frees it (left to the cyclic GC, builds cost ~5% of a run).
    A chain read after its build was replaced still gives its build's values (see above)."""
    import gc

    b = SimBroker(SimClock(START), "chop", 7)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(30):
            snap = await b.snapshot()
            ch = snap.chains[sorted(snap.chains)[0]]
            ch.quote(float(ch.strikes[len(ch.strikes) // 2]), "P")
            _ = snap.vix_chains[sorted(snap.vix_chains)[0]].call_bid  # a chain priced whole
            b.clock.advance(300)
        del snap, ch
        gc.collect()
        left = [o for o in gc.garbage if type(o).__name__ in ("_Build", "_LazyChain")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []


async def after_close_read_next_day() -> tuple[SimBroker, Snapshot, SimBroker, Snapshot]:
    """(broker, its snapshot of 16:10 on Jan 6 - not read -, after which it moved to 10:00 on
    Jan 7; a second broker of the same market, and its snapshot of 16:10)."""
    when = datetime(2026, 1, 6, 16, 10, tzinfo=xp.NY)
    b = SimBroker(SimClock(START), "chop", 1)
    b.clock.set(when)
    late = await b.snapshot()
    b.clock.set(datetime(2026, 1, 7, 10, 0, tzinfo=xp.NY))
    await b.snapshot()
    ref_b = SimBroker(SimClock(START), "chop", 1)
    ref_b.clock.set(when)
    return b, late, ref_b, await ref_b.snapshot()


async def test_chains_listed_after_the_close_and_first_read_next_day_keep_their_values() -> None:
    """A snapshot's chain maps are listed when first used. One taken after the index close
    (16:10, the options still trade) and first read the next morning gives the prices of
    16:10, not of wherever the market has moved (CNDR marks a day's last snapshot so)."""
    b, late, ref_b, ref = await after_close_read_next_day()
    assert b.market.spx != ref_b.market.spx  # the market did move on
    for e in ref.chains:
        got, want = late.chains[e], ref.chains[e]
        k = float(want.strikes[len(want.strikes) // 3])
        assert got.quote(k, "P") == want.quote(k, "P") and got.t == want.t
        np.testing.assert_array_equal(got.call_bid, want.call_bid)
    assert list(late.vix_chains) == list(ref.vix_chains)


async def test_prefetch_prices_a_late_read_strikes_together_with_the_same_values(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`prefetch` (CNDR's day mark: four strikes of the day's last chain, read next morning)
    prices the strikes in one pass; the lookups then give the chain's own values."""
    from bot.sim import lazychain as ch_mod

    _, late, _, ref = await after_close_read_next_day()
    want = ref.chains
    e = sorted(want)[1]
    ks = [float(k) for k in want[e].strikes[[100, 140, 160, 200]]]
    calls: list[int] = []
    real = ch_mod._price

    def counting(state, parts):  # type: ignore[no-untyped-def]
        calls.append(sum(p[1].size for p in parts))
        return real(state, parts)

    monkeypatch.setattr(ch_mod, "_price", counting)
    chain = late.chains[e]
    chain.prefetch(ks)
    got = [chain.quote(k, r) for k in ks for r in "CP"]
    assert calls == [4]  # one pass, four strikes; the lookups price nothing more
    assert got == [want[e].quote(k, r) for k in ks for r in "CP"]
