"""Server -> client: errors, time, contract details, option chains, ticks, positions and
account messages, decoded by ib_async's real Decoder (see tests/tws_harness.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from datetime import date

import pytest
from ib_async import Contract, LimitOrder
from ib_async.contract import TagValue
from tws_harness import (  # noqa: F401 (fixtures)
    ACCT,
    FULL,
    SPX_IND,
    T0,
    assert_contract,
    assert_minimal,
    condor,
    h,
    harness,
    ib_errors,
    spx_put,
)

from bot.tws.encode_account import (
    account_download_end,
    account_update_multi,
    account_update_multi_end,
    position,
    position_end,
    update_account_time,
    update_account_value,
    update_portfolio,
)
from bot.tws.encode_market import (
    ContractDetailsSpec,
    HistBar,
    contract_details,
    contract_details_end,
    historical_data,
    market_data_type,
    security_definition_option_parameter,
    security_definition_option_parameter_end,
    tick_option_computation,
    tick_price,
    tick_size,
    tick_snapshot_end,
)
from bot.tws.encode_orders import (
    commission_report,
    completed_orders_end,
    exec_details_end,
    open_order_end,
)
from bot.tws.encode_session import current_time, error_msg, managed_accounts, next_valid_id
from bot.tws.framing import make_msg, parse_frames
from bot.tws.requests import CancelById, NoArgRequest, ReqMktData
from bot.tws.wire import InMsg

# ---------------------------------------------------------------- replies (server -> client)


async def test_error_info_unknown_contract_and_rejected_order(h, ib_errors):
    seen = []
    h.ib.errorEvent += lambda *args: seen.append(args[:3])
    farm_ok = "Market data farm connection is OK:usfarm"
    h.feed(error_msg(-1, 2104, farm_ok))
    future = h.ib.reqContractDetailsAsync(Contract(symbol="NOPE", secType="IND", exchange="CBOE"))
    await h.request()
    ib_errors.expect(r"Error 200, reqId 1: No security definition")
    no_def = "No security definition has been found for the request"
    h.feed(error_msg(1, 200, no_def))
    assert await future == []
    trade = h.ib.placeOrder(condor(), LimitOrder("BUY", 1, -1.5))
    await h.request()
    ib_errors.expect(r"Error 201, reqId 2: Order rejected")
    h.feed(error_msg(2, 201, "Order rejected - reason:margin", '{"reason": "margin"}'))
    assert trade.orderStatus.status == "Cancelled"
    assert trade.advancedError == '{"reason": "margin"}'
    rejected = (2, 201, "Order rejected - reason:margin")
    assert seen == [(-1, 2104, farm_ok), (1, 200, no_def), rejected]


async def test_error_before_v166_has_no_json_field():
    h = await harness(165)
    seen = []
    h.ib.errorEvent += lambda *args: seen.append(args[:3])
    msg = error_msg(-1, 2158, "Sec-def data farm connection is OK", "{}", version=165)
    assert parse_frames(msg) == [["4", "2", "-1", "2158", "Sec-def data farm connection is OK"]]
    h.feed(msg)
    assert seen == [(-1, 2158, "Sec-def data farm connection is OK")]


async def test_fixed_layout_messages_carry_no_trailing_fields(h, ib_errors):
    for msg in [
        next_valid_id(5), managed_accounts([ACCT]), current_time(T0),
        error_msg(-1, 2104, "ok"), contract_details_end(1),
        security_definition_option_parameter_end(1), tick_price(1, 1, 1.0, 1),
        tick_size(1, 0, 1), tick_option_computation(1, 13, implied_vol=0.2, delta=0.5),
        tick_snapshot_end(1), market_data_type(1, 1),
        historical_data(1, [HistBar(date(2024, 1, 5), 1, 2, 0.5, 1.5)]),
        exec_details_end(1), commission_report("e", 1.0), position(ACCT, FULL, 1, 2),
        update_account_value("k", "v", "USD", ACCT),
        update_portfolio(FULL, 1, 2, 3, 4, 5, 6, ACCT),
        update_account_time(T0), account_download_end(ACCT),
        account_update_multi(1, ACCT, "", "k", "v", "USD"), account_update_multi_end(1),
    ]:  # fmt: skip
        assert_minimal(msg, ib_errors)
    for version in (165, 166):
        assert_minimal(error_msg(1, 201, "rejected", "{}", version=version), ib_errors, version)


async def test_decoder_failures_fail_the_guard(h, ib_errors):
    ib_errors.expect(r"Error handling fields")  # proves a malformed message cannot pass silently
    h.feed(make_msg(1, 6, 1, 1, "4500.0"))  # tickPrice missing size and mask


async def test_current_time(h):
    future = h.ib.reqCurrentTimeAsync()
    assert await h.request() == NoArgRequest(InMsg.REQ_CURRENT_TIME)
    h.feed(current_time(T0))
    assert await future == T0


def sentinel_details() -> ContractDetailsSpec:
    """Every ContractDetails field distinct from every other."""
    values: dict[str, object] = {}
    for i, f in enumerate(dataclasses.fields(ContractDetailsSpec)):
        if isinstance(f.default, str):
            values[f.name] = f"<{f.name}>"
        elif isinstance(f.default, float):
            values[f.name] = 0.5 + i
        elif isinstance(f.default, int):
            values[f.name] = 100 + i
    values["secIdList"] = (("OCC", "SPX 240216P4500"), ("ISIN", "US0000000000"))
    values["longName"] = "Índice S&P 500 \\ <longName>"  # ib_async un-escapes longName
    return ContractDetailsSpec(FULL, **values)


@pytest.mark.parametrize("version", [157, 163, 164, 178])
async def test_contract_details(version, ib_errors):
    h = await harness(version)
    future = h.ib.reqContractDetailsAsync(spx_put())
    await h.request()
    spec = sentinel_details()
    msg = contract_details(1, spec, version=version)
    h.feed(msg, contract_details_end(1))
    (cd,) = await future
    assert_contract(cd.contract, FULL)
    assert cd.secIdList == [TagValue(t, v) for t, v in spec.secIdList]
    absent = {
        157: {"minSize", "sizeIncrement", "suggestedSizeIncrement"},
        163: {"minSize", "sizeIncrement"},
    }
    for f in dataclasses.fields(spec):
        if f.name not in ("contract", "secIdList"):
            want = 0.0 if f.name in absent.get(version, ()) else getattr(spec, f.name)
            assert getattr(cd, f.name) == want, f.name
    assert_minimal(msg, ib_errors, version)


async def test_option_chain(h):
    future = h.ib.reqSecDefOptParamsAsync("SPX", "", "IND", 416904)
    await h.request()
    monthly = ["20240216", "20240315"]
    h.feed(
        security_definition_option_parameter(
            1, "SMART", 416904, "SPX", "100", monthly, [4500, 4550.0]
        ),
        security_definition_option_parameter(1, "SMART", 416904, "SPXW", "100", ["20240112"], []),
        security_definition_option_parameter_end(1),
    )
    spx, spxw = await future
    assert (spx.exchange, spx.underlyingConId, spx.tradingClass) == ("SMART", "416904", "SPX")
    assert (spx.multiplier, spx.expirations, spx.strikes) == ("100", monthly, [4500.0, 4550.0])
    assert (spxw.tradingClass, spxw.expirations, spxw.strikes) == ("SPXW", ["20240112"], [])


async def test_market_data_ticks_and_greeks(h):
    opt = spx_put(conId=5001)
    ticker = h.ib.reqMktData(opt)
    await h.request()
    greeks = dict(implied_vol=0.18, delta=-0.16, opt_price=12.6, gamma=0.001, vega=4.2, theta=-0.9)
    h.feed(
        market_data_type(1, 3),
        tick_price(1, 66, 12.3, 10),  # delayed bid
        tick_price(1, 67, 12.9, 7),  # delayed ask
        tick_price(1, 68, 12.5, 1),  # delayed last
        tick_price(1, 9, 11.0),
        tick_size(1, 8, 1500),
        tick_size(1, 22, 32000),
        tick_option_computation(1, 83, **greeks, und_price=4720.5),
        tick_option_computation(1, 80, implied_vol=None, delta=math.nan),
    )
    assert ticker.marketDataType == 3
    assert (ticker.bid, ticker.bidSize, ticker.ask, ticker.askSize) == (12.3, 10, 12.9, 7)
    assert (ticker.last, ticker.close) == (12.5, 11.0)
    assert (ticker.volume, ticker.openInterest) == (1500, 32000)
    g = ticker.modelGreeks
    assert (g.impliedVol, g.delta, g.optPrice, g.pvDividend) == (0.18, -0.16, 12.6, 0.0)
    assert (g.gamma, g.vega, g.theta, g.undPrice) == (0.001, 4.2, -0.9, 4720.5)
    b = ticker.bidGreeks
    assert (b.impliedVol, b.delta, b.optPrice, b.gamma, b.undPrice) == (None,) * 5
    # ib_async keeps vega/theta "not available" as -2 (it maps only the others to None)
    assert (b.vega, b.theta) == (-2, -2)
    (fields,) = parse_frames(tick_option_computation(1, 80, implied_vol=None, delta=None))
    assert [float(x) for x in fields[4:]] == [-1, -2, -1, 0, -2, -2, -2, -1]
    h.feed(tick_price(1, 66, 0.0, 0))  # bid withdrawn: size 0 -> ib_async's "empty" price
    assert (ticker.bid, ticker.bidSize) == (h.ib.wrapper.defaultEmptyPrice, 0)
    h.ib.cancelMktData(opt)
    assert await h.request() == CancelById(InMsg.CANCEL_MKT_DATA, 1)


async def test_snapshot_ends_with_tick_snapshot_end(h):
    task = asyncio.ensure_future(h.ib.reqTickersAsync(SPX_IND))
    r = await h.request()
    assert isinstance(r, ReqMktData) and r.snapshot and r.contract.conId == 416904
    h.feed(tick_price(1, 4, 4720.5, 0), tick_snapshot_end(1))
    (ticker,) = await task
    assert ticker.last == 4720.5


async def test_positions_account_and_portfolio(h):
    positions = h.ib.reqPositionsAsync()
    await h.request()
    h.feed(position(ACCT, FULL, -2, 1250.0), position_end())
    (pos,) = await positions
    assert_contract(pos.contract, FULL, omit=("primaryExchange",))
    assert (pos.account, pos.position, pos.avgCost) == (ACCT, -2.0, 1250.0)
    updates = h.ib.reqAccountUpdatesAsync(ACCT)
    await h.request()
    h.feed(
        update_account_value("NetLiquidation", "100000.00", "USD", ACCT),
        update_account_value("ExcessLiquidity", "80000.00", "USD", ACCT),
        update_portfolio(FULL, -2, 11.5, -2300.0, 1250.0, 200.0, 30.0, ACCT),
        update_account_time(T0),
        account_download_end(ACCT),
    )
    await updates
    values = {v.tag: v.value for v in h.ib.accountValues(ACCT)}
    assert values == {"NetLiquidation": "100000.00", "ExcessLiquidity": "80000.00"}
    (item,) = h.ib.portfolio(ACCT)
    assert_contract(item.contract, FULL, omit=("exchange",))
    assert (item.position, item.marketPrice, item.marketValue) == (-2.0, 11.5, -2300.0)
    assert (item.averageCost, item.unrealizedPNL, item.realizedPNL) == (1250.0, 200.0, 30.0)
    multi = h.ib.reqAccountUpdatesMultiAsync(ACCT)
    r = await h.request()
    h.feed(
        account_update_multi(r.reqId, ACCT, "", "MaintMarginReq", "9300.00", "USD"),
        account_update_multi_end(r.reqId),
    )
    await multi
    maint = [v.value for v in h.ib.accountValues(ACCT) if v.tag == "MaintMarginReq"]
    assert maint == ["9300.00"]


async def test_empty_open_and_completed_orders(h):
    opened, completed = h.ib.reqOpenOrdersAsync(), h.ib.reqCompletedOrdersAsync(False)
    h.feed(open_order_end(), completed_orders_end())
    assert (await opened, await completed) == ([], [])
