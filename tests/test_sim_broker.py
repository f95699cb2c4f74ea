"""SimBroker: listed chains, parity, Reg-T margin against hand-computed figures, order
semantics (fills by the fill model, partial fills, modify, cancel, rejections), settlement."""

from __future__ import annotations

from datetime import date, datetime, time

import numpy as np
import pytest

from bot.broker.base import BrokerError, ErrorKind, OrderRequest, OrderStatus
from bot.broker.sim import SimBroker
from bot.clock import SimClock
from bot.sim import margin as mg
from strategies import expiry as xp
from strategies.instruments import to_tick
from strategies.types import Contract, Leg, Position

START = datetime(2026, 1, 5, 9, 45, tzinfo=xp.NY)
FEB, MAR = date(2026, 2, 20), date(2026, 3, 20)


def make(scenario="calm", seed=7, **kw) -> tuple[SimBroker, SimClock]:
    clock = SimClock(START)
    return SimBroker(clock, scenario, seed, **kw), clock


def spx(exp: date, strike: float, right: str) -> Contract:
    return Contract("SPX", "OPT", exp, float(strike), right, "SPX", 100)


def vixo(exp: date, strike: float, right: str = "C") -> Contract:
    return Contract("VIX", "OPT", exp, float(strike), right, "VIX", 100)


def vixf(exp: date) -> Contract:
    return Contract("VIX", "FUT", exp, multiplier=1000)


def condor(exp: date, lp: float, sp: float, sc: float, lc: float) -> tuple[Leg, ...]:
    return (Leg(spx(exp, lp, "P"), 1), Leg(spx(exp, sp, "P"), -1),
            Leg(spx(exp, sc, "C"), -1), Leg(spx(exp, lc, "C"), 1))


# --- margin rules, hand-computed ----------------------------------------------------------

MARKS = {spx(MAR, 6000, "C").key: 120.0, spx(FEB, 5500, "P").key: 20.0}


def req(*legs: tuple[Contract, int], spot=6000.0, vix=18.0) -> mg.Margin:
    pos = [Position(c, q) for c, q in legs]
    mark = lambda c: MARKS.get(c.key, 18.0 if c.sec_type == "FUT" else 1.0)  # noqa: E731
    return mg.requirement(pos, mark, {"SPX": spot, "VIX": vix})


@pytest.mark.parametrize("legs, expected", [
    # iron condor x2: the greater side only, 50 x 100 x 2
    ([(spx(FEB, 5550, "P"), 2), (spx(FEB, 5600, "P"), -2), (spx(FEB, 6300, "C"), -2),
      (spx(FEB, 6350, "C"), 2)], 10_000.0),
    # asymmetric condor: 75-wide puts, 50-wide calls -> 75 x 100
    ([(spx(FEB, 5525, "P"), 1), (spx(FEB, 5600, "P"), -1), (spx(FEB, 6300, "C"), -1),
      (spx(FEB, 6350, "C"), 1)], 7_500.0),
    # two put spreads, one call spread: max(50, 75) + 50, x 100
    ([(spx(FEB, 5550, "P"), 2), (spx(FEB, 5600, "P"), -2), (spx(FEB, 6300, "C"), -1),
      (spx(FEB, 6375, "C"), 1)], 12_500.0),
    ([(spx(FEB, 5600, "P"), -3), (spx(FEB, 5550, "P"), 3)], 15_000.0),  # put credit vertical
    ([(spx(FEB, 5600, "P"), 1), (spx(FEB, 5550, "P"), -1)], 0.0),  # debit vertical
    ([(spx(FEB, 6000, "C"), -1), (spx(MAR, 6000, "C"), 1)], 0.0),  # calendar
    ([(spx(FEB, 5800, "P"), -1), (spx(MAR, 5750, "P"), 1)], 5_000.0),  # put diagonal
    ([(spx(FEB, 6100, "C"), -1), (spx(MAR, 6050, "C"), 1)], 0.0),  # call diagonal, long lower
    # reverse calendar: the March short is uncovered: (120 + 15% x 6000) x 100
    ([(spx(FEB, 6000, "C"), 1), (spx(MAR, 6000, "C"), -1)], 102_000.0),
    # naked OTM put: 20 + max(900 - 500, 10% x 5500) = 570, x 100
    ([(spx(FEB, 5500, "P"), -1)], 57_000.0),
    ([(vixo(FEB, 20), -2), (vixo(FEB, 25), 2)], 1_000.0),  # VIX call credit spread
    ([(vixo(MAR, 18), 1), (vixo(FEB, 22), -1)], 0.0),  # VIX call diagonal (event layer)
])
def test_reg_t_requirement_of_known_combos(legs, expected):
    m = req(*legs)
    assert m.maint == pytest.approx(expected) and m.init == pytest.approx(expected)


def test_vix_futures_margin_and_calendar_offset():
    one = req((vixf(FEB), 1))
    assert one.maint == pytest.approx(0.40 * 18.0 * 1000)
    assert one.init == pytest.approx(1.1 * one.maint)
    cal = req((vixf(FEB), 1), (vixf(MAR), -1))
    assert cal.maint == pytest.approx(0.5 * 7_200.0)


# --- chains --------------------------------------------------------------------------------

async def test_chains_list_spx_monthlies_vix_futures_and_vix_options():
    b, _ = make()
    s = await b.snapshot()
    today = START.date()
    assert list(s.chains) == xp.spx_monthlies(today, 4)
    assert list(s.vix_futures) == xp.vix_expiries(today, 6) == list(s.vix_chains)
    for ch in s.chains.values():
        assert ch.trading_class == "SPX" and ch.multiplier == 100
        assert np.all(ch.call_bid <= ch.call_ask) and np.all(ch.put_bid <= ch.put_ask)
        assert np.allclose(np.round(ch.call_ask / 0.05), ch.call_ask / 0.05)
    f = list(s.vix_futures.values())
    for (e, ch), F in zip(s.vix_chains.items(), f):
        assert ch.symbol == ch.trading_class == "VIX" and ch.multiplier == 100 and ch.expiry == e
        up = (ch.strikes > F) & (ch.strikes < 3 * F)
        assert np.all(np.diff(ch.call_iv[up]) > 0)  # positive call skew
        assert np.all((ch.call_delta > 0) & (ch.call_delta < 1) & (ch.put_delta < 0))


async def test_put_call_parity_on_the_sim_chain():
    b, _ = make("chop", 3)
    s = await b.snapshot()
    r, q = b.market.r, b.market.q
    assert (r, q) == (0.04, 0.015)  # the scenario's short rate and dividend yield
    for ch in s.chains.values():
        cmid, pmid = (ch.call_bid + ch.call_ask) / 2, (ch.put_bid + ch.put_ask) / 2
        parity = s.spx * np.exp(-q * ch.t) - ch.strikes * np.exp(-r * ch.t)  # C - P
        slack = (ch.call_ask - ch.call_bid + ch.put_ask - ch.put_bid) / 2 + 0.01
        assert np.all(np.abs(cmid - pmid - parity) <= slack)
        assert np.allclose(ch.call_delta - ch.put_delta, np.exp(-q * ch.t))
    for e, ch in s.vix_chains.items():
        cmid, pmid = (ch.call_bid + ch.call_ask) / 2, (ch.put_bid + ch.put_ask) / 2
        parity = np.exp(-r * ch.t) * (s.vix_futures[e] - ch.strikes)
        slack = (ch.call_ask - ch.call_bid + ch.put_ask - ch.put_bid) / 2 + 0.01
        assert np.all(np.abs(cmid - pmid - parity) <= slack)


async def test_spreads_widen_with_vol():
    b, clock = make("crash_2020", 1)
    s0 = await b.snapshot()
    while b.market.day < 28:  # Mar 16 2020
        clock.advance(86400)
        await b.snapshot()
    clock.set(datetime.combine(xp.exchange_date(clock.now()), time(15, 55), tzinfo=xp.NY))
    s1 = await b.snapshot()
    assert s1.vix > 4 * s0.vix

    def atm_width(s):
        ch = s.chains[sorted(s.chains)[1]]
        i = int(np.argmin(np.abs(ch.strikes - s.spx)))
        return ch.call_ask[i] - ch.call_bid[i]

    assert atm_width(s1) > 4 * atm_width(s0)


async def test_gap_down_goes_through_a_16_delta_short_put_entered_on_day_0():
    for seed in (1, 7):
        b, clock = make("gap_down", seed)
        s = await b.snapshot()
        exp = next(e for e in s.chains if 45 <= xp.dte(e, s.time) <= 60)
        ch = s.chains[exp]
        short_put = ch.strikes[int(np.argmin(np.abs(ch.put_delta + 0.16)))]
        clock.set(datetime(2026, 1, 9, 9, 30, tzinfo=xp.NY))  # day 4
        s4 = await b.snapshot()
        assert b.market.day == 4 and s4.spx < short_put - 25, (seed, s4.spx, short_put)


# --- orders --------------------------------------------------------------------------------

async def test_marketable_combo_fills_at_natural_never_at_the_limit():
    b, _ = make()
    s = await b.snapshot()
    legs = condor(FEB, 5550, 5600, 6300, 6350)
    wi = await b.what_if(OrderRequest("x", legs, 2, -10.0))
    assert wi.init_margin_change == pytest.approx(10_000.0)
    assert wi.commission == pytest.approx(8 * 0.65)
    ch = s.chains[FEB]
    natural = sum(leg.ratio * ch.quote(leg.contract.strike, leg.contract.right)[leg.ratio > 0]
                  for leg in legs)
    st = await b.place(OrderRequest("ic", legs, 2, round(natural - 0.5, 2)))
    assert st.status is OrderStatus.WORKING and st.filled == 0  # more credit than natural: rests
    cash = b.cash
    st = await b.place(OrderRequest("ic", legs, 2, round(natural + 1.0, 2), order_id=st.order_id))
    assert st.status is OrderStatus.FILLED and st.avg_price == pytest.approx(natural)
    assert b.cash - cash == pytest.approx(-natural * 100 * 2 - 8 * 0.65)
    pos = {p.contract.key: p.qty for p in await b.positions()}
    assert pos == {leg.contract.key: 2 * leg.ratio for leg in legs}
    acct = (await b.snapshot()).account
    assert acct.init_margin == acct.maint_margin == pytest.approx(10_000.0)
    assert acct.excess_liquidity == pytest.approx(acct.net_liquidation - 10_000.0)
    assert acct.cushion == pytest.approx(acct.excess_liquidity / acct.net_liquidation)


async def _resting_fills(seed: int, share: float) -> list[tuple[int, float]]:
    """(minutes waited, price) of one-lot condors resting `share` of the way from mid to
    natural, one order after another, over a morning."""
    b, clock = make(seed=seed)
    out = []
    for i in range(12):
        s = await b.snapshot()
        legs = condor(FEB, 5550, 5600, 6300, 6350)
        q = [s.chains[FEB].quote(leg.contract.strike, leg.contract.right) for leg in legs]
        nat = sum(leg.ratio * qq[leg.ratio > 0] for leg, qq in zip(legs, q))
        mid = sum(leg.ratio * (qq[0] + qq[1]) / 2 for leg, qq in zip(legs, q))
        limit = to_tick(mid + share * (nat - mid), 0.05, down=True)  # on the grid, toward mid
        st = await b.place(OrderRequest(f"r{i}", legs, 1, limit))
        for waited in range(30):
            if not st.working:
                out.append((waited, st.avg_price))
                assert st.avg_price <= limit + 1e-9  # at its limit, or natural if it came to us
                break
            clock.advance(60)
            await b.orders()
        else:
            await b.cancel(st.order_id)
            out.append((30, float("nan")))
    return out


async def test_resting_combo_fills_at_its_limit_by_seeded_draws():
    near = await _resting_fills(3, 0.8)
    assert near == await _resting_fills(3, 0.8)  # same seed, same fills
    waits = [w for w, _ in near]
    assert sum(w < 30 for w in waits) >= 10 and len(set(waits)) > 2  # luck, not a rule
    far = [w for w, _ in await _resting_fills(3, 0.25)]
    assert sum(far) > sum(waits)  # nearer mid: longer waits


async def test_partial_fills_fill_a_share_of_the_remainder_each_minute():
    b, clock = make(fill_ratio=0.5)
    await b.snapshot()
    legs = condor(FEB, 5550, 5600, 6300, 6350)
    st = await b.place(OrderRequest("p", legs, 5, 50.0))  # any credit: marketable
    seen = [st.filled]
    while st.working:
        clock.advance(60)
        await b.orders()
        seen.append(st.filled)
    assert seen == [2, 3, 4, 5] and st.status is OrderStatus.FILLED
    assert [f.qty for f in st.fills] == [2, 1, 1, 1]
    assert len({f.exec_id for f in st.fills}) == 4
    assert st.avg_price == pytest.approx(sum(f.qty * f.price for f in st.fills) / 5)


async def test_modify_in_place_cancel_and_ib_error_codes():
    b, _ = make(initial_cash=3_000.0)
    await b.snapshot()
    legs = condor(FEB, 5550, 5600, 6300, 6350)
    with pytest.raises(BrokerError) as e:
        await b.place(OrderRequest("big", legs, 1, -10.0))  # needs 5,000 of margin
    assert e.value.kind is ErrorKind.REJECTED_MARGIN and e.value.code == 201
    assert "INITIAL MARGIN" in e.value.message
    debit = (Leg(spx(FEB, 5600, "P"), 1), Leg(spx(FEB, 5550, "P"), -1))
    st = await b.place(OrderRequest("d", debit, 1, 0.05))  # too low to fill
    again = await b.place(OrderRequest("d", debit, 1, 0.10, order_id=st.order_id))
    assert again.order_id == st.order_id and again.limit == 0.10 and again.working
    await b.cancel(st.order_id)
    assert st.status is OrderStatus.CANCELLED
    codes = []
    for bad in (OrderRequest("m", debit, 1, 0.2, order_id=st.order_id),
                OrderRequest("q", debit, 0, 0.2), OrderRequest("q", debit, 501, 0.2),
                OrderRequest("p", debit, 1, float("nan")),
                OrderRequest("k", (Leg(spx(FEB, 5601, "P"), 1),), 1, 1.0),
                OrderRequest("k", (Leg(vixf(date(2026, 1, 20)), 1),), 1, 15.0),
                OrderRequest("k", (Leg(Contract("SPY", "OPT", FEB, 500.0, "P"), 1),), 1, 1.0)):
        with pytest.raises(BrokerError) as e:
            await b.place(bad)
        codes.append((e.value.kind, e.value.code))
    K = ErrorKind
    assert codes == [(K.CANNOT_MODIFY, 104), (K.REJECTED, 201), (K.REJECTED, 201),
                     (K.INVALID_PRICE, 201),
                     (K.NO_SECURITY_DEFINITION, 200), (K.NO_SECURITY_DEFINITION, 200),
                     (K.NO_SECURITY_DEFINITION, 200)]
    with pytest.raises(BrokerError) as e:
        await b.cancel(999)
    assert e.value.kind is ErrorKind.NOT_FOUND and e.value.code == 135


async def test_a_limit_off_the_published_tick_grid_is_refused():
    """Cboe: SPX options tick 0.05 below 3.00 else 0.10, SPX complex orders 0.05; VIX options
    0.01 below 3.00 else 0.05, VIX complex orders 0.01 at any price (since November 2022);
    VX futures 0.05 (CFE)."""
    b, _ = make()
    s = await b.snapshot()
    f1 = next(iter(s.vix_futures))
    for legs, limit in ((condor(FEB, 5550, 5600, 6300, 6350), -7.12),
                        ((Leg(spx(FEB, 5600, "P"), 1),), 3.05),
                        ((Leg(vixo(f1, 20), 1),), 3.47), ((Leg(vixf(f1), 1),), 15.02)):
        with pytest.raises(BrokerError) as e:
            await b.place(OrderRequest("off", legs, 1, limit))
        assert e.value.kind is ErrorKind.INVALID_PRICE and e.value.code == 110, limit
    for legs, limit in (((Leg(vixo(f1, 20), 1), Leg(vixo(f1, 25), -1)), 3.47),
                        ((Leg(spx(FEB, 5600, "P"), 1),), 2.95),
                        ((Leg(vixo(f1, 20), 1),), 2.97), ((Leg(vixf(f1), 1),), 15.05)):
        assert (await b.place(OrderRequest("on", legs, 1, limit))).order_id > 0, limit


async def test_calendars_diagonals_vix_options_and_futures_trade():
    b, _ = make()
    s = await b.snapshot()
    atm = float(s.chains[FEB].strikes[np.argmin(np.abs(s.chains[FEB].strikes - s.spx))])
    cal = (Leg(spx(FEB, atm, "C"), -1), Leg(spx(MAR, atm, "C"), 1))
    (f1, F1), (f2, F2) = list(s.vix_futures.items())[:2]
    diag = (Leg(vixo(f2, round(F2)), 1), Leg(vixo(f1, round(F1) + 4), -1))
    fut = (Leg(vixf(f1), 1),)
    for key, legs in (("cal", cal), ("diag", diag), ("fut", fut)):
        wi = await b.what_if(OrderRequest(key, legs, 1, 0.0))
        st = await b.place(OrderRequest(key, legs, 1, 1_000.0))
        assert st.status is OrderStatus.FILLED, key
        if key != "fut":
            assert wi.init_margin_change == 0.0 and st.avg_price > 0  # debit, paid in full
    assert st.avg_price == pytest.approx(b.book.fut_quotes[f1][1])
    assert {p.contract.key for p in await b.positions()} >= {vixf(f1).key, diag[0].contract.key}
    acct = (await b.snapshot()).account
    assert acct.maint_margin == pytest.approx(0.4 * b.book.futures[f1] * 1000)


async def test_orders_rest_while_the_market_is_closed():
    b, clock = make()
    await b.snapshot()
    clock.set(datetime(2026, 1, 5, 17, 0, tzinfo=xp.NY))
    legs = condor(FEB, 5550, 5600, 6300, 6350)
    st = await b.place(OrderRequest("night", legs, 1, 50.0))
    assert st.working
    clock.set(datetime(2026, 1, 6, 9, 30, tzinfo=xp.NY))
    await b.orders()
    assert st.status is OrderStatus.FILLED and st.fills[0].time == clock.now()


async def test_cash_settlement_at_the_am_open_print():
    b, clock = make()
    s = await b.snapshot()
    jan = date(2026, 1, 16)  # SPX January standard monthly
    k = float(s.chains[jan].strikes[np.argmin(np.abs(s.chains[jan].strikes - s.spx))])
    fj = date(2026, 1, 21)  # VIX January expiry
    legs = [(Leg(spx(jan, k, "C"), 1), Leg(spx(jan, k - 50, "C"), -1)),
            (Leg(spx(jan, k, "P"), 2),), (Leg(vixo(fj, 14.0), 3),), (Leg(vixf(fj), 1),)]
    for i, lg in enumerate(legs):
        assert (await b.place(OrderRequest(f"o{i}", lg, 1, 10_000.0))).status is OrderStatus.FILLED
    cash = b.cash
    clock.set(datetime(2026, 1, 16, 9, 40, tzinfo=xp.NY))
    await b.snapshot()
    S = b.market.opens[jan][0]  # SET: the opening print of expiry day
    spx_pay = max(S - k, 0) - max(S - k + 50, 0) + 2 * max(k - S, 0)
    assert b.cash - cash == pytest.approx(100 * spx_pay)
    assert all(p.contract.expiry != jan for p in await b.positions())
    cash = b.cash
    clock.set(datetime(2026, 1, 21, 10, 0, tzinfo=xp.NY))
    await b.snapshot()
    soq = b.market.opens[fj][1]  # VIX at the open of its expiry day
    assert b.cash - cash == pytest.approx(3 * 100 * max(soq - 14.0, 0) + 1000 * soq)
    assert await b.positions() == []
    assert [x[1] for x in b.settlements][-2:] == [vixo(fj, 14.0).key, vixf(fj).key]
