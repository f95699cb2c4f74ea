"""completedOrder (bot.tws.encode_orders.completed_order) through ib_async's real Decoder at
the server versions whose layout differs (faProfile before 177, the PEG/mid-offset block from
170), and the account-summary and unsupported-request messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from test_tws_codec_orders import CONDITIONS, sentinel_order
from tws_harness import ACCT, CONDOR_LEGS, assert_minimal, condor, h, harness, ib_errors  # noqa: F401 (fixtures)

from bot.tws.encode_account import account_summary, account_summary_end
from bot.tws.encode_orders import completed_order, completed_orders_end
from bot.tws.requests import CancelById, ReqAccountSummary, UnknownRequest, decode_request
from bot.tws.wire import InMsg

DONE = datetime(2024, 1, 5, 20, 59, 30, tzinfo=UTC)


@pytest.mark.parametrize("version", [169, 176, 177, 178])
async def test_completed_order_echoes_the_placed_order(version, ib_errors):
    h = await harness(version)
    order = sentinel_order()
    h.client.placeOrder(41, condor(), order)
    p = await h.request()
    seen = []
    original = h.ib.wrapper.completedOrder
    h.ib.wrapper.completedOrder = lambda c, o, st: (seen.append((c, o, st)), original(c, o, st))
    future = h.ib.reqCompletedOrdersAsync(False)
    msg = completed_order(p, "Filled", perm_id=9001, filled=3, completed_time=DONE,
                          version=version)
    h.feed(msg, completed_orders_end())
    (trade,) = await future
    (contract, o, state) = seen[0]
    assert (o.permId, o.action, o.totalQuantity, o.lmtPrice) == (
        9001, order.action, order.totalQuantity, order.lmtPrice)
    assert (o.orderType, o.tif, o.orderRef, o.account) == (
        order.orderType, order.tif, order.orderRef, order.account)
    assert (o.goodTillDate, o.ocaType, o.triggerMethod, o.cashQty) == (
        order.goodTillDate, order.ocaType, order.triggerMethod, order.cashQty)
    assert o.conditions == CONDITIONS and o.algoParams == order.algoParams
    assert o.smartComboRoutingParams == order.smartComboRoutingParams
    assert o.filledQuantity == 3 and trade.orderStatus.status == "Filled"
    assert (state.completedTime, state.completedStatus) == ("20240105 20:59:30 UTC", "Filled")
    assert [(x.conId, x.action) for x in contract.comboLegs] == CONDOR_LEGS
    assert_minimal(msg, ib_errors, version)


async def test_account_summary_rows_and_request(h, ib_errors):
    h.ib.client.reqAccountSummary(5, "All", "BuyingPower,$LEDGER:USD")
    assert await h.request() == ReqAccountSummary(5, "All", "BuyingPower,$LEDGER:USD")
    future = h.ib.wrapper.startReq(5)
    h.feed(account_summary(5, ACCT, "BuyingPower", "3960000.00", "USD"), account_summary_end(5))
    await future
    (value,) = h.ib.wrapper.acctSummary.values()
    assert (value.account, value.tag, value.value, value.currency) == (
        ACCT, "BuyingPower", "3960000.00", "USD")
    assert_minimal(account_summary(5, ACCT, "Cushion", "1.0", ""), ib_errors)
    h.ib.client.cancelAccountSummary(5)
    assert await h.request() == CancelById(InMsg.CANCEL_ACCOUNT_SUMMARY, 5)


async def test_unmodelled_requests_carry_their_name_and_id(h):
    h.ib.client.reqPnL(17, ACCT, "")
    h.ib.client.reqMatchingSymbols(18, "SPX")
    h.ib.client.reqMktDepthExchanges()
    got = [await h.request() for _ in range(3)]
    assert all(isinstance(r, UnknownRequest) for r in got)
    assert [(r.name, r.reqId) for r in got] == [
        ("PnL", 17), ("matching symbols", 18), ("market depth exchanges", -1)]
    assert decode_request(["999", "1", "2"]).name == "message 999"
