"""Trading-day boundaries in the emulator, as IB has them (issue 14 item 11), through ib_async
over 127.0.0.1: reqExecutions returns only the current day's executions (older ones are
forgotten, also for a client that connects the next day), and DAY orders still working at the
close are cancelled then (a GTC order is not), so they cannot fill on a later day.

The emulator's clock is manual (`gw.advance`); START is 10:00 New York on Mon 5 Jan 2026, the
session closes 16:15.
"""

from __future__ import annotations

import asyncio

from ib_async import IB, Bag, LimitOrder
from ib_helpers import (
    combo,
    condor_options,
    connect,
    gateway,
    ib_errors,  # noqa: F401 (fixture)
    natural_of,
)

from bot.sim.gateway import Gateway
from strategies import expiry as xp

CID = 14
HOUR = 3600.0


async def condor(ib: IB, gw: Gateway) -> tuple[Bag, float]:
    opts, tickers = await condor_options(ib, gw)
    return combo(opts), natural_of(tickers)


def exec_days(fills: list) -> set:
    return {xp.exchange_date(f.execution.time) for f in fills}


async def test_executions_are_reported_for_their_day_only():
    async with gateway() as gw:
        ib = await connect(gw, CID)
        try:
            bag, natural = await condor(ib, gw)
            first_day = xp.exchange_date(gw.clock.now())
            ib.placeOrder(bag, LimitOrder("BUY", 1, natural, orderRef="day1"))
            await ib.reqCurrentTimeAsync()
            today = await asyncio.wait_for(ib.reqExecutionsAsync(), 5)
            assert len(today) == 5 and exec_days(today) == {first_day}  # BAG + 4 legs
            await gw.advance(24 * HOUR)  # Tue 10:00
            assert xp.exchange_date(gw.clock.now()) > first_day
            assert await asyncio.wait_for(ib.reqExecutionsAsync(), 5) == []
            bag, natural = await condor(ib, gw)
            ib.placeOrder(bag, LimitOrder("BUY", 1, natural, orderRef="day2"))
            await ib.reqCurrentTimeAsync()
            fills = await asyncio.wait_for(ib.reqExecutionsAsync(), 5)
            assert {f.execution.orderRef for f in fills} == {"day2"}
        finally:
            ib.disconnect()
        later = await connect(gw, CID + 1)  # a client connecting on day 2 (the bot restarted)
        try:
            assert {f.execution.orderRef for f in later.fills()} == {"day2"}
            done = await asyncio.wait_for(later.reqCompletedOrdersAsync(False), 5)
            assert [t.order.orderRef for t in done] == ["day2"]  # day 1's order is forgotten
        finally:
            later.disconnect()


async def test_day_orders_expire_at_the_close():
    async with gateway() as gw:
        ib = await connect(gw, CID)
        try:
            bag, natural = await condor(ib, gw)
            far = natural - 5.0  # a credit nobody pays: rests
            day = ib.placeOrder(bag, LimitOrder("BUY", 1, far, orderRef="day", tif="DAY"))
            gtc = ib.placeOrder(bag, LimitOrder("BUY", 1, far, orderRef="gtc", tif="GTC"))
            await ib.reqCurrentTimeAsync()
            assert day.orderStatus.status == gtc.orderStatus.status == "Submitted"
            close = xp.spx_option_session(xp.exchange_date(gw.clock.now()))[1]
            await gw.advance((close - gw.clock.now()).total_seconds() - 60)  # 16:14
            await ib.reqCurrentTimeAsync()
            assert day.orderStatus.status == "Submitted"  # still its day
            await gw.advance(120)  # past the close
            await ib.reqCurrentTimeAsync()
            assert day.orderStatus.status == "Cancelled" and day.isDone()
            assert gtc.orderStatus.status == "Submitted"
            sim_states = {st.order_ref: st.status for st in await gw.sim.orders()}
            assert sim_states == {"day": "Cancelled", "gtc": "Submitted"}
            open_refs = {t.order.orderRef for t in await ib.reqOpenOrdersAsync()}
            assert open_refs == {"gtc"}
            done = await asyncio.wait_for(ib.reqCompletedOrdersAsync(False), 5)
            assert [(t.order.orderRef, t.orderStatus.status) for t in done] == [
                ("day", "Cancelled")]
            await gw.advance(18 * HOUR)  # into the next session: an expired order cannot fill
            await ib.reqCurrentTimeAsync()
            assert day.orderStatus.status == "Cancelled" and day.fills == []
            assert {st.order_ref: st.status for st in await gw.sim.orders()}["day"] == "Cancelled"
        finally:
            ib.disconnect()
