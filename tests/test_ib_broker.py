"""IBBroker (bot.broker.ib) against the TWS emulator over 127.0.0.1: the real ib_async client
underneath, no mocked IB object. The emulator's clock is manual unless a test says otherwise;
waits are on events and request/answer barriers, never sleeps.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from ib_helpers import (  # noqa: F401
    ACCT,
    barrier,
    bot_process,
    broker,
    condor_order,
    entry_condor,
    events_until,
    gateway,
    ib_errors,
    make_sim,
    next_error,
    placed,
    settings,
    write_config,
)

from bot.broker.base import BrokerError, ErrorKind, LiveAccountRefused, OrderRequest, OrderStatus
from bot.broker.ib import IBBroker
from bot.broker.ib_chains import sane_quote
from bot.broker.ib_market import Plan, next_emit
from bot.config import OrderSettings, RiskSettings
from bot.orders import Executor
from bot.risk import RiskGuard
from bot.sim.gateway import Faults
from bot.store import Store
from strategies import expiry as xp
from strategies.types import Contract, Intent, Leg

REF = "C0001-20260105:open:0:0"


async def test_connect_without_startup_timeouts_and_clock_from_server():
    async with gateway() as gw, broker(gw) as b:
        assert b.connected and b.account == ACCT
        assert abs((b.clock.now() - gw.sim.clock.now()).total_seconds()) < 2
        assert set(b.cx.indexes) == {"SPX", "VIX", "AD-NYSE"} and len(b.cx.futures) == 6
        assert b.cx.listings["SPX"].trading_class == "SPX"  # never SPXW
        assert len(b.market.lines) <= b.market.plan.max_lines
    # the guard fixture fails the test on any "... request timed out" ERROR from ib_async


async def test_delayed_market_data_is_marked_as_old():
    async with gateway() as gw, broker(gw, market_data_type=3) as b:
        snap = await b.snapshot()
        assert all(t.marketDataType == 3 for _, t in b.market.lines.values())
        chain = snap.chains[entry_condor(snap).expiry]
        assert np.isfinite(chain.put_bid).any()
        age = snap.time - chain.as_of  # 15 min before the clock read that dated the quotes
        assert timedelta(minutes=15) <= age < timedelta(minutes=15, seconds=1)


async def test_qualification_is_cached_and_unknown_symbols_fail(ib_errors):
    async with gateway() as gw, broker(gw) as b:
        known = Contract("SPX", "OPT", date(2026, 2, 20), 6000.0, "P", "SPX")
        weekly = Contract("SPX", "OPT", date(2026, 2, 20), 6000.0, "P", "SPXW")
        nope = Contract("NOPE", "OPT", date(2026, 2, 20), 100.0, "C", "NOPE")
        ib_errors.expect(r"Error 200, .*SPXW")
        ib_errors.expect(r"Error 200, .*NOPE")
        found = await b.cx.qualify([known, weekly, nope])
        assert found[known.key].conId > 0 and found[weekly.key] is None and found[nope.key] is None
        (session,) = gw.live
        sent = session.messages
        again = await b.cx.qualify([known, weekly, nope])
        await barrier(b)
        assert again == found and session.messages == sent + 1  # only the barrier went out
        with pytest.raises(BrokerError) as e:
            await b.place(OrderRequest("C0009-20260105:open:0:0", (Leg(known, 1), Leg(nope, -1)),
                                       1, 1.0))
        assert e.value.code == 200 and "NOPE" in e.value.message and gw.journal == []
        assert e.value.kind is ErrorKind.NO_SECURITY_DEFINITION


async def test_snapshot_holds_lines_near_target_delta_only():
    async with gateway() as gw, broker(gw, plan=Plan()) as b:
        snap = await b.snapshot()
        assert snap.market_open and snap.minutes_since_open == pytest.approx(30, abs=0.1)
        assert snap.spx == pytest.approx(gw.snap.spx, abs=0.01)
        assert snap.account.net_liquidation == 1e6
        exp = next(e for e in sorted(snap.chains) if 45 <= xp.dte(e, snap.time) <= 60)
        chain = snap.chains[exp]
        quoted = np.isfinite(chain.put_bid) | np.isfinite(chain.call_bid)
        assert 10 <= quoted.sum() <= len(b.market.lines) < chain.strikes.size
        assert np.nanmin(np.abs(np.abs(chain.put_delta) - 0.16)) < 0.01
        assert np.nanmin(np.abs(chain.call_delta - 0.16)) < 0.01
        assert all(chain.as_of <= snap.time for chain in snap.chains.values())
        assert (snap.time - chain.as_of).total_seconds() < 5  # quotes just arrived
        assert len(snap.vix_futures) == 6
        assert any(np.isfinite(c.call_bid).any() for c in snap.vix_chains.values())
        assert "ad_line" in snap.bars and snap.bars.index[-1].date() < xp.exchange_date(snap.time)
        await gw.advance(5 * 3600)  # the market moves; lines follow it
        snap = await b.snapshot()
        options = [k for k in b.market.lines if ":" in k and ":FUT:" not in k]
        assert len(b.market.lines) <= Plan().max_lines and b.market.released > 0
        assert b.market.subscribed - b.market.released == len(b.market.lines) and options


async def test_frozen_bid_ask_ages_the_chain_and_trips_quote_stale():
    """Quote time is when IB last sent the bid/ask (on the broker clock), not `now`: the
    emulator keeps streaming greeks for frozen quotes, as a stuck feed behind a live model
    would, and only the frozen expiry goes stale. The emulator's clock is manual (it moves 50 s
    before each snapshot): at 600x a loaded machine let an hour pass between reads."""
    async with gateway() as gw, broker(gw) as b:
        snap = await b.snapshot()
        condor = entry_condor(snap)
        req = condor_order(condor, REF, "mid")
        intent = Intent(REF, "C0001-20260105", "open", condor.legs, 1, condor.mid, condor.natural)
        guard = RiskGuard(RiskSettings())
        assert guard.check(intent, snap, await b.what_if(req), snap.time).approved
        frozen = {k: t for k, (c, t) in b.market.lines.items()
                  if isinstance(c, Contract) and c.expiry == condor.expiry}
        other = next(c.expiry for c, _ in b.market.lines.values()
                     if isinstance(c, Contract) and c.symbol == "SPX" and c.expiry != condor.expiry)
        for key, t in frozen.items():
            gw.faults.quotes[key] = (t.bid, t.ask)
        limit = guard.s.max_quote_age_seconds
        start, wall = snap.time, datetime.now(UTC)
        while (snap.time - snap.chains[condor.expiry].as_of).total_seconds() <= limit:
            await gw.advance(50)  # not a divisor of the limit: the age is never on it
            snap = await b.snapshot()
            assert snap.time - start < timedelta(hours=1), "frozen quotes never went stale"
            for key, (c, t) in b.market.lines.items():  # lines that follow the market: frozen too
                if isinstance(c, Contract) and c.expiry == condor.expiry and key not in frozen:
                    frozen[key] = t
                    gw.faults.quotes[key] = (t.bid, t.ask)
        assert (snap.time - snap.chains[other].as_of).total_seconds() < limit
        held = [t for t in frozen.values() if t in b.market.times.first]
        assert any(t.time is not None and t.time > wall for t in held)  # ib_async's Ticker.time
        # moved on with the greeks: it is no quote time
        v = guard.check(intent, snap, await b.what_if(req), snap.time)
        assert v.code == "quote_stale" and v.numbers["age_seconds"] > limit


async def test_condor_entry_filled_what_if_margin_fills_and_positions():
    async with gateway() as gw, broker(gw) as b:
        snap = await b.snapshot()
        condor = entry_condor(snap)
        req = condor_order(condor, REF, "natural")
        expected = await gw.sim.what_if(req)
        w = await b.what_if(req)
        assert w == expected and w.init_margin_change == 5000.0 and w.commission == 2.6
        await b.place(req)
        await barrier(b)
        (st,) = await b.orders()
        assert (st.status, st.filled, st.order_ref) == (OrderStatus.FILLED, 1, REF)
        assert st.status is OrderStatus.FILLED and st.done and not st.working
        (fill,) = st.fills
        assert fill.qty == 1 and fill.price <= condor.natural + 1e-9 and fill.commission == 2.6
        assert fill.intent_key == REF and fill.time is not None and fill.exec_id
        held = {p.contract.key: p.qty for p in await b.positions()}
        assert held == {leg.contract.key: leg.ratio for leg in condor.legs}
        snap = await b.snapshot()
        assert snap.account.init_margin == 5000.0 and len(snap.positions) == 4
        for leg in condor.legs:  # held legs are always quoted
            assert all(map(math.isfinite, snap.chains[condor.expiry].quote(leg.contract.strike,
                                                                          leg.contract.right)))
        with pytest.raises(BrokerError, match="never twice"):
            await b.place(req)
        assert len(placed(gw, REF)) == 1


async def test_walk_modifies_in_place_with_the_same_order_id():
    async with gateway() as gw, broker(gw) as b:
        condor = entry_condor(await b.snapshot())
        st = await b.place(condor_order(condor, REF, "mid"))
        assert st.status is OrderStatus.WORKING and st.working
        st2 = await b.place(condor_order(condor, REF, "natural", order_id=st.order_id))
        await barrier(b)
        (final,) = await b.orders()
        assert st2.order_id == st.order_id and final.status == "Filled"
        assert [j["orderId"] for j in placed(gw, REF)] == [st.order_id, st.order_id]


async def test_rejected_order_is_a_failure_never_a_success(ib_errors):
    async with gateway() as gw, broker(gw) as b:
        condor = entry_condor(await b.snapshot())
        gw.reject_orders(1)
        ib_errors.expect(r"Error 201, .*fault injection")
        with pytest.raises(BrokerError) as e:
            await b.place(condor_order(condor, REF))
        assert e.value.code == 201 and e.value.kind is ErrorKind.REJECTED
        (st,) = await b.orders()
        assert st.status is OrderStatus.REJECTED and st.done and "201" in st.error
        assert st.filled == 0
        assert not await b.positions()


async def test_refusals_carry_broker_neutral_kinds(ib_errors):
    """IB's codes arrive over the wire; callers see ErrorKind (IB's code kept for the logs)."""
    async with gateway(make_sim()) as gw, broker(gw) as b:
        condor = entry_condor(await b.snapshot())
        ib_errors.expect(r"Error 201, .*EQUITY WITH LOAN")
        with pytest.raises(BrokerError) as e:  # 400 condors need ~$2M margin on a $1M account
            await b.place(condor_order(condor, REF, qty=400))
        assert e.value.kind is ErrorKind.REJECTED_MARGIN and e.value.code == 201
        (st,) = await b.orders()
        with pytest.raises(BrokerError) as e:
            await b.place(condor_order(condor, REF, order_id=st.order_id))
        assert e.value.kind is ErrorKind.CANNOT_MODIFY
        with pytest.raises(BrokerError) as e:
            await b.cancel(987654)
        assert e.value.kind is ErrorKind.NOT_FOUND
        with pytest.raises(BrokerError) as e:
            await b.place(condor_order(condor, REF))
        assert e.value.kind is ErrorKind.DUPLICATE and len(placed(gw, REF)) == 1


async def test_disconnect_mid_order_reconnects_and_never_sends_a_second_order(tmp_path, ib_errors):
    async with gateway() as gw, broker(gw) as b:
        snap = await b.snapshot()
        condor = entry_condor(snap)
        intent = Intent(REF, "C0001-20260105", "open", condor.legs, 1, condor.mid, condor.natural)
        store = Store(tmp_path / "state.db")
        ex = Executor(b, store, OrderSettings(walk_steps=4, walk_seconds=10, max_slippage=1.0))
        assert await ex.submit(intent, snap.time) is None  # at mid: working
        (working,) = await b.orders()
        ib_errors.expect(r"Peer closed connection")
        lost = asyncio.ensure_future(next_emit(b.ib.disconnectedEvent))
        gw.drop()
        await lost
        with pytest.raises(BrokerError) as e:
            await b.place(condor_order(condor, "C0002-20260105:open:0:0"))
        assert e.value.code == 504 and e.value.kind is ErrorKind.DISCONNECTED
        with pytest.raises(BrokerError):
            await b.snapshot()
        await b.wait_ready()
        assert b.reconnects == 1 and await b.positions() == []
        (again,) = await b.orders()
        assert again.order_id == working.order_id and again.working
        done = []
        for step in range(1, 4):  # the executor walks the same order to natural
            done += await ex.process(snap.time + timedelta(seconds=10 * step))
            await barrier(b)
        done += await ex.process(snap.time + timedelta(seconds=40))
        assert [d.status for d in done] == ["Filled"] and done[0].filled == 1
        orders = placed(gw, REF)
        # one order, modified in place (the sim's fill model may fill before natural)
        assert {o["orderId"] for o in orders} == {working.order_id} and 2 <= len(orders) <= 4
        store.close()


async def test_fills_made_while_disconnected_are_reconciled(ib_errors):
    async with gateway() as gw, broker(gw) as b:
        condor = entry_condor(await b.snapshot())
        st = await b.place(condor_order(condor, REF, "mid"))
        ib_errors.expect(r"Peer closed connection")
        lost = asyncio.ensure_future(next_emit(b.ib.disconnectedEvent))
        gw.drop()
        await lost
        sim_id = gw.desk.orders[(b.s.client_id, st.order_id)].sim_id  # TWS fills it meanwhile
        await gw.sim.place(condor_order(condor, REF, "natural", order_id=sim_id))
        await gw.advance(0)
        await b.wait_ready()
        (after,) = await b.orders()
        assert after.status == "Filled" and after.filled == 1 and after.fills[0].commission == 2.6
        assert len(await b.positions()) == 4 and len(placed(gw, REF)) == 1


def test_ib_status_names_round_trip():
    from bot.broker.ib_errors import ib_status_name, order_status

    assert {order_status(ib_status_name(s)) for s in OrderStatus} == set(OrderStatus)


def test_paper_account_ids_are_du_and_digits_exactly():
    from bot.broker.ib_accounts import is_paper

    assert is_paper("DU1234567")
    for bad in ("DUX", "DU", "", "U123", "du1234567", " DU123", "DU123 ", "DU123\n", "DU12X",
                "DU\u0661\u0662", "DF1234567"):
        assert not is_paper(bad), bad


async def test_malformed_or_missing_account_ids_are_refused(ib_errors):
    ib_errors.allow(r"API connection failed: TimeoutError")  # ib_async never completes a
    for accounts in (["DUX"], ["DU"], [""], ["U123"]):  # connect with no account
        async with gateway(accounts=accounts) as gw, broker(gw, connect=False, timeout=1.0) as b:
            with pytest.raises(LiveAccountRefused) as e:
                await b.connect()
            assert e.value.accounts == [a for a in accounts if a] and not b.connected
            with pytest.raises(LiveAccountRefused):
                await b.place(OrderRequest(REF, (), 1, 1.0))
            assert gw.journal == []


async def test_live_account_is_refused_before_anything_is_placed():
    for accounts, live in ((["U1234567"], ["U1234567"]), ([ACCT, "U7654321"], ["U7654321"])):
        async with gateway(accounts=accounts) as gw, broker(gw, connect=False) as b:
            with pytest.raises(LiveAccountRefused) as e:
                await b.connect()
            assert e.value.accounts == live and not b.connected
            with pytest.raises(LiveAccountRefused):
                await b.place(OrderRequest(REF, (), 1, 1.0))
            assert gw.journal == []


@pytest.mark.parametrize("account", ["U1234567", ""])
async def test_cli_run_against_a_live_account_exits_3(tmp_path, account):
    async with gateway(accounts=[account]) as gw:
        cfg = write_config(tmp_path, ib={"client_id": 9, "timeout": 3})  # "": a timeout
        proc = await bot_process("run", "--broker", "ib", "--port", str(gw.port), "--config",
                                 str(cfg), cwd=tmp_path)
        seen = await events_until(proc, lambda e: e["event"] == "broker.live_account_refused", 60)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 3 and b"not a paper account" in err
        assert seen[-1]["accounts"] == ([account] if account else []) and gw.journal == []


async def test_pacing_never_above_the_configured_rate():
    async with gateway() as gw, broker(gw, plan=Plan(), max_msgs_per_sec=20) as b:
        await b.snapshot()
        assert b.pacer.sent >= 60  # enough traffic that the cap had to bind
        assert gw.max_rate <= 20


async def test_connectivity_codes_stop_orders_until_restored(ib_errors):
    async with gateway() as gw, broker(gw) as b:
        req = condor_order(entry_condor(await b.snapshot()), REF, "mid")
        for code in (1100, 1102, 10197):
            ib_errors.expect(rf"Error {code}")
        got = asyncio.ensure_future(next_error(b, 1100))
        gw.send_error(1100, "Connectivity between IB and Trader Workstation has been lost.")
        await got
        with pytest.raises(BrokerError) as e:
            await b.place(req)
        assert e.value.code == 1100 and e.value.kind is ErrorKind.DISCONNECTED
        assert gw.journal == []
        got = asyncio.ensure_future(next_error(b, 1102))
        gw.send_error(1102, "Connectivity between IB and TWS has been restored - data maintained.")
        await got
        assert (await b.place(req)).working
        got = asyncio.ensure_future(next_error(b, 10197))
        gw.send_error(10197, "No market data during competing live session")
        await got
        assert math.isfinite((await b.snapshot()).spx)


async def test_refused_market_data_and_bad_quotes_are_nan(ib_errors):
    ib_errors.allow(r"Error 354, ")
    async with gateway(faults=Faults(market_data_error=354)) as gw, broker(gw) as b:
        snap = await b.snapshot()
        assert b.market.refused and math.isfinite(snap.spx)
        assert all(np.isnan(c.put_bid).all() and np.isnan(c.call_bid).all()
                   for c in snap.chains.values())
    async with gateway() as gw, broker(gw) as b:
        condor = entry_condor(await b.snapshot())
        short_put, short_call = condor.legs[1].contract, condor.legs[2].contract
        gw.faults.quotes[short_put.key] = (5.0, 4.0)  # crossed
        gw.faults.quotes[short_call.key] = (0.0, 1.0)  # no bid
        await gw.advance(0)
        chain = (await b.snapshot()).chains[condor.expiry]
        assert all(map(math.isnan, chain.quote(short_put.strike, "P")))
        bid, ask = chain.quote(short_call.strike, "C")
        assert math.isnan(bid) and ask == 1.0
        assert b.market.flagged["crossed"] >= 1 and b.market.flagged["zero"] >= 1
    assert sane_quote(-1, 2.0)[2] == "zero" and sane_quote(float("nan"), 1.0)[2] == "missing"


async def test_slow_replies_time_out_and_are_reconciled_not_resent():
    async with gateway() as gw, broker(gw) as b:
        condor = entry_condor(await b.snapshot())
        b.s = b.s.model_copy(update={"timeout": 0.2})
        gw.faults.delay = 0.5
        with pytest.raises(BrokerError, match="no what-if answer"):
            await b.what_if(condor_order(condor, REF))
        st = await b.place(condor_order(condor, REF))
        assert st.status is OrderStatus.PENDING  # no answer yet: not a success, not a failure
        gw.faults.delay = 0.0
        b.s = b.s.model_copy(update={"timeout": 5.0})
        await barrier(b)
        (after,) = await b.orders()
        assert after.status == "Filled" and len(placed(gw, REF)) == 1


async def test_clock_follows_an_accelerated_emulator():
    async with gateway(speed=600.0) as gw, broker(gw) as b:
        assert 300 < b.clock.rate < 1200
        first = await b.snapshot()
        second = await b.snapshot()
        assert second.time > first.time
        # within a wall second of the emulator's (600 market s at 600x): a clock left at 1x
        # would fall behind by that every wall second; 0.2 s failed on a loaded 2-core run
        assert abs((b.clock.now() - gw.now()).total_seconds()) < 600


def test_plan_follows_strategy_params():
    from bot.broker.ib import plan_for
    from strategies.params import StrategyParams

    p = plan_for(StrategyParams(wing_width=40, wing_mult=1.5, dte_min=30, dte_max=50))
    assert p.widths == (40.0, 60.0) and p.entry_dte == (30, 50)
    assert IBBroker(settings(4002)).market.plan.widths == (50.0, 75.0)
