"""The emulator answers like TWS for any client (issue 13 item 4), through ib_async's real
client over 127.0.0.1: account summary by tag list and group, completed orders, BAG orders in
either price convention, gamma and theta in model greeks, incomplete handshakes closed,
IB's error for requests the emulator does not implement.

Expected values come from the SimBroker underneath (cash, margins), from vollib (greeks) or
from the orders the test sent, never from the emulator's own encoders. The clock is manual;
a request/answer round trip is the barrier.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import date

import pytest
from ib_async import IB, LimitOrder, Option
from ib_helpers import (
    ACCT,
    REPO,
    SHORT_CONDOR,
    combo,
    condor_options,
    gateway,
    ib_errors,  # noqa: F401 (fixture)
    natural_of,
)
from ib_helpers import connect as ib_connect
from vollib.black_scholes.greeks.analytical import gamma as bs_gamma
from vollib.black_scholes.greeks.analytical import theta as bs_theta

from bot.sim.gateway import Gateway
from tests.procs import Proc

CID = 12
SUMMARY_TAGS = ["BuyingPower", "TotalCashValue", "FullInitMarginReq", "FullMaintMarginReq",
                "Cushion"]


async def connect(gw: Gateway) -> IB:
    return await ib_connect(gw, CID)


async def condor_legs(ib: IB, gw: Gateway) -> tuple[list[Option], float]:
    opts, tickers = await condor_options(ib, gw)
    return opts, natural_of(tickers)


bag = combo
BUY_SIDE = SHORT_CONDOR  # a short condor as a BUY at a negative limit
SELL_SIDE = ("SELL", "BUY", "BUY", "SELL")  # the same condor as a SELL at a positive limit


async def summary(ib: IB, group: str, tags: str) -> list[tuple[str, str, str]]:
    """reqAccountSummary through ib_async's client; the rows of this request, in order."""
    rows: list[tuple[str, str, str]] = []
    handler = lambda v: rows.append((v.tag, v.value, v.currency))  # noqa: E731
    ib.accountSummaryEvent += handler
    try:
        req_id = ib.client.getReqId()
        done = ib.wrapper.startReq(req_id)
        ib.client.reqAccountSummary(req_id, group, tags)
        await asyncio.wait_for(done, 5)
    finally:
        ib.accountSummaryEvent -= handler
    return rows


async def test_account_summary_honours_tags_and_group():
    async with gateway() as gw:
        ib = await connect(gw)
        try:
            opts, natural = await condor_legs(ib, gw)
            trade = ib.placeOrder(bag(opts, BUY_SIDE), LimitOrder("BUY", 2, natural))
            await ib.reqCurrentTimeAsync()
            assert trade.orderStatus.status == "Filled"
            rows = await summary(ib, "All", ",".join(SUMMARY_TAGS))
            assert [t for t, _, _ in rows] == SUMMARY_TAGS  # only what was asked, in order
            got = {t: float(v) for t, v, _ in rows}
            account = (await gw.sim.snapshot()).account
            assert got["TotalCashValue"] == pytest.approx(gw.sim.cash, abs=0.01)
            assert got["FullInitMarginReq"] == pytest.approx(account.init_margin, abs=0.01)
            assert got["FullMaintMarginReq"] == pytest.approx(account.maint_margin, abs=0.01)
            assert got["FullInitMarginReq"] > 0 and got["TotalCashValue"] > 1_000_000  # a credit
            nl = account.net_liquidation
            assert got["Cushion"] == pytest.approx((nl - account.maint_margin) / nl, abs=1e-4)
            # IB, Reg-T margin account: 4 x (min(ELV, previous-day ELV) - initial margin)
            prev = nl - account.realized_pnl_today
            expected_bp = 4 * (min(nl, prev) - account.init_margin)
            assert got["BuyingPower"] == pytest.approx(expected_bp, abs=0.05)
            assert {c for t, _, c in rows if t != "Cushion"} == {"USD"}
            assert await summary(ib, "NoSuchGroup", "BuyingPower") == []  # not in that group
            ledger = await summary(ib, "All", "NetLiquidation,$LEDGER:ALL,NoSuchTag")
            assert ledger[0][0] == "NetLiquidation"
            cash = {c: float(v) for t, v, c in ledger if t == "CashBalance"}
            assert cash == {"BASE": pytest.approx(gw.sim.cash, abs=0.01),
                            "USD": pytest.approx(gw.sim.cash, abs=0.01)}
            assert "NoSuchTag" not in {t for t, _, _ in ledger}
        finally:
            ib.disconnect()


async def test_completed_orders_lists_filled_and_cancelled(ib_errors):
    ib_errors.allow(r"Error 202, .*Order Canceled")
    async with gateway() as gw:
        ib = await connect(gw)
        try:
            opts, natural = await condor_legs(ib, gw)
            filled = ib.placeOrder(bag(opts, BUY_SIDE), LimitOrder("BUY", 1, natural,
                                                                  orderRef="ref-filled"))
            resting = ib.placeOrder(bag(opts, BUY_SIDE), LimitOrder("BUY", 1, natural - 3.0,
                                                                   orderRef="ref-cancelled"))
            await ib.reqCurrentTimeAsync()
            assert resting.orderStatus.status == "Submitted"
            ib.cancelOrder(resting.order)
            await ib.reqCurrentTimeAsync()
            done = await asyncio.wait_for(ib.reqCompletedOrdersAsync(False), 5)
            got = {t.order.orderRef: t for t in done}
            assert set(got) == {"ref-filled", "ref-cancelled"}
            assert got["ref-filled"].orderStatus.status == "Filled"
            assert got["ref-cancelled"].orderStatus.status == "Cancelled"
            assert got["ref-filled"].order.permId == filled.order.permId
            assert got["ref-filled"].order.filledQuantity == 1
            assert got["ref-filled"].order.lmtPrice == natural
            assert [leg.conId for leg in got["ref-filled"].contract.comboLegs] == \
                [o.conId for o in opts]
            assert got["ref-cancelled"].order.permId == resting.order.permId
        finally:
            ib.disconnect()


async def test_bag_orders_in_either_convention_are_reported_as_sent():
    async with gateway() as gw:
        ib = await connect(gw)
        try:
            opts, natural = await condor_legs(ib, gw)
            assert natural < 0  # a credit, as a BUY
            bought = ib.placeOrder(bag(opts, BUY_SIDE), LimitOrder("BUY", 1, natural))
            sold = ib.placeOrder(bag(opts, SELL_SIDE), LimitOrder("SELL", 1, -natural))
            await ib.reqCurrentTimeAsync()
            assert bought.orderStatus.status == sold.orderStatus.status == "Filled"
            assert bought.orderStatus.avgFillPrice <= natural < 0  # at the limit or better
            assert sold.orderStatus.avgFillPrice >= -natural > 0
            b_bag, s_bag = ([f.execution for f in t.fills if f.contract.secType == "BAG"]
                            for t in (bought, sold))
            assert [(e.side, e.price < 0) for e in b_bag] == [("BOT", True)]
            assert [(e.side, e.price > 0) for e in s_bag] == [("SLD", True)]
            assert s_bag[0].avgPrice == sold.orderStatus.avgFillPrice
            legs = [sorted((f.contract.conId, f.execution.side) for f in t.fills
                           if f.contract.secType == "OPT") for t in (bought, sold)]
            assert legs[0] == legs[1]  # the same condor either way
            held = {p.contract.conId: p.position for p in ib.positions()}
            assert [held[o.conId] for o in opts] == [2, -2, -2, 2]
        finally:
            ib.disconnect()


async def test_model_greeks_carry_gamma_and_theta():
    async with gateway() as gw:
        ib = await connect(gw)
        try:
            put = Option("SPX", "20260220", 5600, "P", "SMART", tradingClass="SPX")
            await ib.qualifyContractsAsync(put)
            ticker = ib.reqMktData(put)
            await ib.reqCurrentTimeAsync()
            g = ticker.modelGreeks
            t = gw.snap.chains[date(2026, 2, 20)].t
            r = gw.sim.market.r
            assert g.gamma == pytest.approx(bs_gamma("p", gw.snap.spx, 5600, t, r, g.impliedVol),
                                            rel=1e-6)
            assert g.theta == pytest.approx(bs_theta("p", gw.snap.spx, 5600, t, r, g.impliedVol),
                                            rel=1e-6)
            assert g.gamma > 0 and g.theta < 0
        finally:
            ib.disconnect()


async def test_incomplete_handshake_is_closed():
    async with gateway(handshake_timeout=0.2) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(b"AP")  # two bytes, then nothing
        assert await asyncio.wait_for(reader.read(), 3) == b""  # the server hung up
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(b"API\0" + len(b"v157..178").to_bytes(4, "big") + b"v157..178")
        data = await asyncio.wait_for(reader.read(), 3)  # the version reply, then EOF
        assert data[4:].split(b"\0")[0] == b"178"
        writer.close()
        ib = await connect(gw)  # a client that completes the handshake stays connected
        try:
            assert ib.isConnected() and all(s.started for s in gw.live)
        finally:
            ib.disconnect()


async def test_unsupported_requests_get_ibs_error(ib_errors):
    ib_errors.expect(r"Error 503, reqId \d+: .*does not support matching symbols requests")
    ib_errors.expect(r"Error 503, reqId \d+: .*does not support PnL requests")
    async with gateway() as gw:
        ib = await connect(gw)
        try:
            errors = []
            ib.errorEvent += lambda req_id, code, msg, *_: errors.append((req_id, code))
            assert await ib.reqMatchingSymbolsAsync("SPX") == []  # ended by the error
            ib.reqPnL(ACCT)
            await ib.reqCurrentTimeAsync()
            assert (ib.wrapper.pnlKey2ReqId[(ACCT, "")], 503) in errors
        finally:
            ib.disconnect()


def test_sim_gateway_process_closes_a_stalled_handshake(tmp_path):
    """The same through `condorbot sim-gateway --handshake-timeout`: a client that sends two
    bytes and stops is disconnected (a blocking read returns EOF), not held open."""
    gw = Proc(["sim-gateway", "--port", "0", "--speed", "60", "--handshake-timeout", "0.3"],
              REPO)
    try:
        port = gw.until(lambda e: e["event"] == "gateway.listening", 30)["port"]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"AP")
            assert sock.recv(64) == b""  # EOF from the server, well before the 5 s timeout
    finally:
        gw.stop()


async def test_a_sim_refusal_without_an_ib_code_is_reported_as_201(ib_errors):
    """SimBroker refuses with a broker-neutral kind (no IB code): the client still gets an
    error for the order, with IB's generic rejection code 201 and the sim's reason."""
    from bot.broker.base import BrokerError, ErrorKind

    ib_errors.allow("Error 201")
    async with gateway() as gw:
        async def refuse(req: object) -> None:
            raise BrokerError(ErrorKind.REJECTED_MARGIN, "not enough equity")

        gw.sim.place = refuse  # type: ignore[method-assign]
        ib = await connect(gw)
        try:
            opts, natural = await condor_legs(ib, gw)
            seen: list[tuple[int, str]] = []
            ib.errorEvent += lambda _id, code, msg, _c: seen.append((code, msg))
            trade = ib.placeOrder(bag(opts, BUY_SIDE), LimitOrder("BUY", 1, natural))
            await ib.reqCurrentTimeAsync()
            assert seen == [(201, "not enough equity")]
            assert trade.orderStatus.status == "Cancelled"  # ib_async's reading of an error
        finally:
            ib.disconnect()
