"""Client -> server: ib_async's real Client request methods write the bytes, bot.tws.requests
parses them (placeOrder: tests/test_tws_codec_orders.py).
"""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from ib_async import DeltaNeutralContract, ExecutionFilter
from ib_async.contract import TagValue
from tws_harness import ACCT, CONDOR_LEGS, SPX_IND, condor, h, harness, ib_errors, spx_put, wire  # noqa: F401 (fixtures)

from bot.tws.encode_market import HistBar, historical_data
from bot.tws.framing import ProtocolError
from bot.tws.requests import (
    CancelById,
    CancelOrder,
    NoArgRequest,
    ReqAccountUpdates,
    ReqAccountUpdatesMulti,
    ReqAutoOpenOrders,
    ReqCompletedOrders,
    ReqContractDetails,
    ReqExecutions,
    ReqHistoricalData,
    ReqIds,
    ReqMarketDataType,
    ReqMktData,
    ReqSecDefOptParams,
    UnknownRequest,
    decode_request,
)
from bot.tws.wire import InMsg

# ---------------------------------------------------------------- requests (client -> server)


async def test_connect_time_requests(h):
    ib = h.ib
    ib.reqAutoOpenOrders(True)
    assert await h.request() == ReqAutoOpenOrders(True)
    ib.reqPositionsAsync()
    assert await h.request() == NoArgRequest(InMsg.REQ_POSITIONS)
    ib.reqOpenOrdersAsync()
    assert await h.request() == NoArgRequest(InMsg.REQ_OPEN_ORDERS)
    ib.reqCompletedOrdersAsync(False)
    assert await h.request() == ReqCompletedOrders(False)
    ib.reqAccountUpdatesAsync(ACCT)
    assert await h.request() == ReqAccountUpdates(True, ACCT)
    ib.reqAccountUpdatesMultiAsync(ACCT)
    assert await h.request() == ReqAccountUpdatesMulti(1, ACCT, "", False)
    since = "20240105 00:00:00"
    ib.reqExecutionsAsync(ExecutionFilter(3, ACCT, since, "SPX", "BAG", "SMART", "BUY"))
    assert await h.request() == ReqExecutions(2, 3, ACCT, since, "SPX", "BAG", "SMART", "BUY")
    for call, expected in [
        (lambda: h.client.reqIds(5), ReqIds(5)),
        (ib.reqCurrentTimeAsync, NoArgRequest(InMsg.REQ_CURRENT_TIME)),
        (ib.reqGlobalCancel, NoArgRequest(InMsg.REQ_GLOBAL_CANCEL)),
        (lambda: ib.reqMarketDataType(3), ReqMarketDataType(3)),
        (lambda: h.client.cancelMktData(9), CancelById(InMsg.CANCEL_MKT_DATA, 9)),
        (lambda: h.client.cancelHistoricalData(9), CancelById(InMsg.CANCEL_HISTORICAL_DATA, 9)),
    ]:
        call()
        assert await h.request() == expected


@pytest.mark.parametrize("version", [175, 176, 178])
async def test_req_contract_details(version):
    h = await harness(version)
    h.ib.reqContractDetailsAsync(spx_put())
    r = await h.request()
    assert isinstance(r, ReqContractDetails) and r.reqId == 1 and not r.includeExpired
    assert r.contract == wire(0, "SPX", "OPT", "20240216", 4500.0, "P", "", "SMART", tclass="SPX")


async def test_req_sec_def_opt_params_and_market_data(h):
    h.ib.reqSecDefOptParamsAsync("SPX", "", "IND", 416904)
    assert await h.request() == ReqSecDefOptParams(1, "SPX", "", "IND", 416904)
    h.ib.reqMktData(spx_put(conId=5001), "100,101,106", False, False, [TagValue("a", "b")])
    put = wire(5001, "SPX", "OPT", "20240216", 4500.0, "P", "", "SMART", tclass="SPX")
    assert await h.request() == ReqMktData(2, put, (), None, "100,101,106", False, False, "a=b;")
    bag = condor()
    bag.deltaNeutralContract = DeltaNeutralContract(77, 0.5, 4700.0)
    h.ib.reqMktData(bag, snapshot=True)
    r = await h.request()
    assert [(x.conId, x.action) for x in r.comboLegs] == CONDOR_LEGS
    assert r.deltaNeutralContract == (77, 0.5, 4700.0) and r.snapshot


async def test_req_historical_data(h):
    task = asyncio.ensure_future(
        h.ib.reqHistoricalDataAsync(SPX_IND, "", "60 D", "1 day", "TRADES", True)
    )
    r = await h.request()
    spx = wire(416904, "SPX", "IND", exch="CBOE", ccy="USD")
    assert r == ReqHistoricalData(
        1, spx, False, "", "1 day", "60 D", True, "TRADES", 1, (), False, ""
    )
    bars = [
        HistBar(date(2024, 1, 4), 4700, 4720.5, 4690, 4710.25),
        HistBar(date(2024, 1, 5), 4710.25, 4730, 4700, 4725, 1e6, 4715.5, 1234),
    ]
    h.feed(historical_data(1, bars, "20231101 00:00:00", "20240105 00:00:00"))
    got = await task
    assert [(b.date, b.open, b.high, b.low, b.close) for b in got] == [
        (date(2024, 1, 4), 4700, 4720.5, 4690, 4710.25),
        (date(2024, 1, 5), 4710.25, 4730, 4700, 4725),
    ]
    assert (got[1].volume, got[1].average, got[1].barCount) == (1e6, 4715.5, 1234)
    task = asyncio.ensure_future(
        h.ib.reqHistoricalDataAsync(condor(), "", "5 D", "1 day", "MIDPOINT", False)
    )
    r = await h.request()
    assert [(x.conId, x.action) for x in r.comboLegs] == CONDOR_LEGS and r.whatToShow == "MIDPOINT"
    h.feed(historical_data(2, []))
    assert list(await task) == []


@pytest.mark.parametrize("version", [168, 169, 178])
async def test_cancel_order(version):
    h = await harness(version)
    h.client.cancelOrder(42, "20240105 10:00:00")
    assert await h.request() == CancelOrder(42, "20240105 10:00:00" if version >= 169 else "")


def test_malformed_requests_are_protocol_errors():
    for fields in (["8", "1"], ["8", "1", "5", "extra"], ["x"], ["9", "8", "1", "bad-conId"]):
        with pytest.raises(ProtocolError):
            decode_request(fields)
    assert decode_request(["104", "3"]) == UnknownRequest(104, ("104", "3"))
