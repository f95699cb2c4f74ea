"""placeOrder <-> openOrder field by field at every server version, what-if margins, and the
order lifecycle (status, executions, commissions) through ib_async's real decoder.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ib_async import Bag, ComboLeg, Contract, LimitOrder, Order
from ib_async.contract import TagValue
from ib_async.objects import SoftDollarTier
from ib_async.order import (
    ExecutionCondition,
    MarginCondition,
    OrderComboLeg,
    PercentChangeCondition,
    PriceCondition,
    TimeCondition,
    VolumeCondition,
)  # fmt: skip
from ib_async.util import UNSET_DOUBLE
from tws_harness import (  # noqa: F401 (fixtures)
    ACCT,
    CLIENT_ID,
    CONDOR_LEGS,
    FULL,
    TEXT,
    VERSIONS,
    assert_contract,
    assert_minimal,
    client_fmt,
    condor,
    h,
    harness,
    ib_errors,
    spx_put,
    wire,
)

from bot.tws.encode_orders import (
    ExecutionSpec,
    OrderStateSpec,
    commission_report,
    exec_details,
    exec_details_end,
    open_order,
    open_order_end,
    order_status,
)
from bot.tws.framing import SERVER_VERSION
from bot.tws.requests import NoArgRequest
from bot.tws.wire import InMsg, ParsedOrder, WireComboLeg

# ---------------------------------------------------------------- placeOrder <-> openOrder

ORDER_ATTRS = {f.name for f in dataclasses.fields(Order)}
STRUCTURAL = re.compile(
    r"^(orderId$|contract\.|comboLegs\.|orderComboLegs\.|smartComboRoutingParams\.|algoParams\."
    r"|conditions\.|deltaNeutralContract\.|softDollarTier\.|_sharesAllocation$|secIdType$|secId$)"
)
CONDITIONS = [
    PriceCondition(1, "a", True, 4500.5, 416904, "CBOE", 2),
    TimeCondition(3, "o", False, "20240105 10:00:00"),
    MarginCondition(4, "a", True, 30),
    ExecutionCondition(5, "a", "OPT", "SMART", "SPX"),
    VolumeCondition(6, "o", True, 1000, 5001, "SMART"),
    PercentChangeCondition(7, "a", False, 2.5, 416904, "CBOE"),
]
LEG_PRICES = [1.5, UNSET_DOUBLE, -0.5, 2.0]


def sentinel_order(order_type: str = "LMT", bools: set[str] | None = None) -> Order:
    """Every scalar Order field set to a value no other field has (bools alternate, or only
    the ones in `bools` are True), and every conditional block switched on."""
    o = Order()
    for i, f in enumerate(dataclasses.fields(Order)):
        d = f.default
        if isinstance(d, bool):
            setattr(o, f.name, (i % 2 == 0) if bools is None else f.name in bools)
        elif isinstance(d, int):
            setattr(o, f.name, 1000 + i)
        elif isinstance(d, float):
            setattr(o, f.name, 1000.5 + i)
        elif isinstance(d, str):
            setattr(o, f.name, f"<{f.name}>")
    o.orderType = order_type
    o.algoParams = [TagValue("maxPctVol", "0.1"), TagValue("x", "y")]
    o.smartComboRoutingParams = [TagValue("NonGuaranteed", "1")]
    o.orderComboLegs = [OrderComboLeg(p) for p in LEG_PRICES]
    o.orderMiscOptions = [TagValue("a", "b")]
    o.softDollarTier = SoftDollarTier("sdt", "v1", "")
    o.conditions = list(CONDITIONS)
    return o


def check_slots(order: Order, p: ParsedOrder) -> set[str]:
    """Every named raw field holds exactly what the Client wrote for that Order attribute."""
    checked = set()
    for name, text in p.raw.items():
        if not STRUCTURAL.match(name):
            assert name in ORDER_ATTRS, f"{name} is not an Order attribute"
            assert text == client_fmt(getattr(order, name)), f"field {name} misplaced"
            checked.add(name)
    assert p.raw["softDollarTier.name"] == order.softDollarTier.name
    assert p.raw["softDollarTier.val"] == order.softDollarTier.val
    return checked


# Scalar Order attributes Client.placeOrder never sends (for a LMT order on a BAG at v178).
NOT_SENT = {
    "orderId", "clientId", "permId", "basisPoints", "basisPointsType", "autoCancelDate",
    "filledQuantity", "refFuturesConId", "shareholder", "imbalanceOnly", "routeMarketableToBbo",
    "parentPermId", "faProfile", "minTradeQty", "minCompeteSize", "competeAgainstBestOffset",
    "midOffsetAtWhole", "midOffsetAtHalf", "referenceContractId", "peggedChangeAmount",
    "isPeggedChangeAmountDecrease", "referenceChangeAmount", "referenceExchangeId",
}  # fmt: skip
SCALARS = {f.name for f in dataclasses.fields(Order) if isinstance(f.default, int | float | str)}


@pytest.mark.parametrize("version", VERSIONS)
async def test_place_order_every_field_lands_in_its_slot(version):
    h = await harness(version)
    order = sentinel_order()
    h.client.placeOrder(41, condor(), order)
    p = await h.request()
    checked = check_slots(order, p)
    if version == SERVER_VERSION:
        assert SCALARS - checked == NOT_SENT
    assert (p.orderId, p.action, p.orderType, p.orderRef) == (41, "<action>", "LMT", "<orderRef>")
    assert (p.totalQuantity, p.lmtPrice, p.auxPrice, p.account) == (
        order.totalQuantity, order.lmtPrice, order.auxPrice, "<account>",
    )  # fmt: skip
    assert (p.whatIf, p.transmit, p.outsideRth) == (order.whatIf, order.transmit, order.outsideRth)
    assert p.comboLegs == tuple(WireComboLeg(c, 1, a, "SMART") for c, a in CONDOR_LEGS)
    assert p.orderComboLegPrices == (1.5, None, -0.5, 2.0)
    assert p.smartComboRoutingParams == (("NonGuaranteed", "1"),)
    assert p.algoParams == (("maxPctVol", "0.1"), ("x", "y")) and p.algoStrategy == "<algoStrategy>"
    sent = tuple(tuple(client_fmt(v) for v in dataclasses.astuple(c)) for c in CONDITIONS)
    assert p.conditions == sent


async def test_place_order_each_bool_alone(h):
    bools = [f.name for f in dataclasses.fields(Order) if isinstance(f.default, bool)]
    for name in bools:
        h.client.placeOrder(41, condor(), sentinel_order(bools={name}))
        p = await h.request()
        on = {n for n in bools if p.raw.get(n) == "1"}
        assert on in ({name}, set()), f"{name} set, but {on} arrived"
        assert on or name not in p.raw  # a bool that was sent must arrive where it was sent


@pytest.mark.parametrize("version", [169, 170, 178])
@pytest.mark.parametrize(
    "order_type, exchange, compete",
    [
        ("PEG BENCH", "SMART", 1.0),
        ("PEG BEST", "SMART", 1.5),
        ("PEG BEST", "SMART", math.inf),
        ("PEG MID", "IBKRATS", 1.0),
        ("VOL", "IBKRATS", 1.0),
    ],
)
async def test_place_order_peg_and_ats_blocks(version, order_type, exchange, compete):
    h = await harness(version)
    order = sentinel_order(order_type)
    order.competeAgainstBestOffset = compete
    stock = Contract(conId=8, symbol="XYZ", secType="STK", exchange=exchange, currency="USD")
    h.client.placeOrder(5, stock, order)
    p = await h.request()
    check_slots(order, p)
    assert p.comboLegs == () and p.contract.exchange == exchange
    has_mid = version >= 170 and (order_type == "PEG MID" or compete == math.inf)
    assert ("midOffsetAtWhole" in p.raw) == has_mid
    assert ("minTradeQty" in p.raw) == (version >= 170 and exchange == "IBKRATS")
    assert ("referenceContractId" in p.raw) == (order_type == "PEG BENCH")
    assert (p.raw["volatility"] != "") == (order_type == "VOL")


# Fields openOrder does not carry back (so the echo cannot match the placed order).
NOT_ECHOED = {
    "transmit", "overridePercentageConstraints", "scaleTable", "activeStartTime",
    "activeStopTime", "algoId", "orderMiscOptions", "extOperator", "mifid2DecisionMaker",
    "mifid2DecisionAlgo", "mifid2ExecutionTrader", "mifid2ExecutionAlgo",
    "advancedErrorOverride", "manualOrderTime", "volatility",
}  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
async def test_open_order_echoes_the_placed_order(version, ib_errors):
    h = await harness(version)
    order, bag = sentinel_order(), condor()
    bag.conId, bag.localSymbol, bag.tradingClass, bag.multiplier = 28812380, "CONDOR", "COMB", "1"
    order.whatIf = False
    h.client.placeOrder(41, bag, order)
    p = await h.request()
    later = await harness(version)  # a later session learns of the order via reqOpenOrders
    future = later.ib.reqOpenOrdersAsync()
    assert await later.request() == NoArgRequest(InMsg.REQ_OPEN_ORDERS)
    state = OrderStateSpec("Submitted", commission=1.3, commissionCurrency="USD")
    msg = open_order(p, state, perm_id=9001, client_id=CLIENT_ID, version=version)
    later.feed(msg, open_order_end())
    (trade,) = await future
    o = trade.order
    assert (o.orderId, o.permId, o.clientId) == (41, 9001, CLIENT_ID)
    assert trade.orderStatus.status == "Submitted"
    compared = ORDER_ATTRS.intersection(p.raw) - {"orderId"}
    differ = {n for n in compared if getattr(o, n) != getattr(order, n)}
    lost = NOT_ECHOED | ({"duration"} if version == 158 else set())  # client >=158, openOrder >=159
    assert differ == {n for n in lost if n in p.raw and getattr(order, n) != getattr(Order(), n)}
    assert o.conditions == CONDITIONS and o.algoParams == order.algoParams
    assert o.smartComboRoutingParams == order.smartComboRoutingParams
    assert [x.price for x in o.orderComboLegs] == LEG_PRICES
    assert (o.softDollarTier.name, o.softDollarTier.val) == ("sdt", "v1")
    assert trade.contract.comboLegs == bag.comboLegs
    assert trade.contract.comboLegsDescrip == "5001|1,5002|-1,5003|-1,5004|1"
    assert_contract(trade.contract, p.contract)
    assert p.contract == wire(
        28812380, "SPX", "BAG", "", 0.0, "", "1", "SMART", "USD", "CONDOR", "COMB"
    )
    assert_minimal(msg, ib_errors, version)


async def test_open_order_from_a_hand_built_order(h, ib_errors):
    legs = tuple(WireComboLeg(c, 1, a, "SMART") for c, a in CONDOR_LEGS)
    bag = wire(0, "SPX", "BAG", exch="SMART", ccy="USD")
    order = ParsedOrder(7, bag, action="SELL", totalQuantity=2, orderType="LMT", lmtPrice=1.9,
                        tif="DAY", account=ACCT, orderRef="c2:roll", comboLegs=legs)  # fmt: skip
    future = h.ib.reqOpenOrdersAsync()
    msg = open_order(order, OrderStateSpec("Submitted"), perm_id=8, client_id=CLIENT_ID)
    h.feed(msg, open_order_end())
    (trade,) = await future
    o = trade.order
    assert (o.orderId, o.permId, o.action, o.totalQuantity, o.lmtPrice) == (7, 8, "SELL", 2, 1.9)
    assert (o.orderType, o.tif, o.account, o.orderRef) == ("LMT", "DAY", ACCT, "c2:roll")
    assert [(x.conId, x.action) for x in trade.contract.comboLegs] == CONDOR_LEGS
    assert_minimal(msg, ib_errors)


@given(
    legs=st.lists(
        st.tuples(st.integers(1, 2**31 - 2), st.integers(1, 3), st.sampled_from(["BUY", "SELL"])),
        max_size=4,
    ),
    qty=st.integers(1, 50),
    price=st.one_of(st.none(), st.integers(-50000, 50000).map(lambda c: c / 100)),
    tif=st.sampled_from(["DAY", "GTC", "IOC"]),
    ref=TEXT.filter(lambda s: len(s) <= 40),
    what_if=st.booleans(),
    version=st.sampled_from(VERSIONS),
)
def test_random_orders_round_trip(legs, qty, price, tif, ref, what_if, version):
    async def body() -> None:
        h = await harness(version)
        if legs:
            combo = [ComboLeg(conId=c, ratio=r, action=a, exchange="SMART") for c, r, a in legs]
            contract = Bag(symbol="SPX", exchange="SMART", currency="USD", comboLegs=combo)
        else:
            contract = spx_put(conId=5005)
        order = LimitOrder("SELL", qty, price, tif=tif, orderRef=ref, account=ACCT)
        future = h.ib.whatIfOrderAsync(contract, order) if what_if else None
        trade = None if what_if else h.ib.placeOrder(contract, order)
        p = await h.request()
        assert (p.action, p.totalQuantity, p.lmtPrice, p.tif) == ("SELL", qty, price, tif)
        assert (p.orderRef, p.whatIf) == (ref, what_if)
        assert p.comboLegs == tuple(WireComboLeg(c, r, a, "SMART") for c, r, a in legs)
        state = OrderStateSpec("PreSubmitted", initMarginChange=1234.5)
        h.feed(open_order(p, state, perm_id=31, client_id=CLIENT_ID, version=version))
        if future is not None:
            assert (await future).numeric().initMarginChange == 1234.5
        else:
            o = trade.order
            assert (o.permId, o.totalQuantity, o.orderRef, o.tif) == (31, qty, ref, tif)
            assert o.lmtPrice == (UNSET_DOUBLE if price is None else price)

    asyncio.run(body())



# ---------------------------------------------------------------- what-if and fills


async def test_what_if_margin(h):
    order = LimitOrder("BUY", 2, -1.85, orderRef="c1:entry", account=ACCT, tif="DAY")
    future = h.ib.whatIfOrderAsync(condor(), order)
    p = await h.request()
    assert isinstance(p, ParsedOrder) and p.whatIf and p.orderRef == "c1:entry"
    assert (p.action, p.totalQuantity, p.lmtPrice, p.tif) == ("BUY", 2.0, -1.85, "DAY")
    assert (p.account, p.contract.secType) == (ACCT, "BAG")
    h.feed(open_order(p, OrderStateSpec("PreSubmitted"), perm_id=0, client_id=CLIENT_ID))
    assert not future.done()  # ib_async waits until initMarginChange is set
    state = OrderStateSpec(
        "PreSubmitted", 10000.0, 9000.0, 100000.0, 9300.0, 9200.0, -50.0, 19300.0, 18200.0,
        99950.0, commission=5.2, minCommission=5.0, maxCommission=5.5, commissionCurrency="USD",
        warningText="close to limit",
    )  # fmt: skip
    h.feed(open_order(p, state, perm_id=0, client_id=CLIENT_ID))
    got = await future
    numeric = got.numeric()
    for f in dataclasses.fields(state):
        want = getattr(state, f.name)
        source = numeric if isinstance(want, float) else got  # margins arrive as strings
        assert getattr(source, f.name) == want, f.name


@pytest.mark.parametrize("version", [177, 178])
async def test_order_lifecycle_fill_and_commission(version, ib_errors):
    h = await harness(version)
    events = []
    h.ib.commissionReportEvent += lambda trade, fill, report: events.append(report)
    trade = h.ib.placeOrder(condor(), LimitOrder("BUY", 1, -1.5, orderRef="c1:entry", account=ACCT))
    p = await h.request()
    submitted = OrderStateSpec("Submitted")
    h.feed(
        open_order(p, submitted, perm_id=777, client_id=CLIENT_ID, version=version),
        order_status(1, "Submitted", 0, 1, 0, 777, 0, 0, CLIENT_ID),
    )
    assert trade.orderStatus.status == "Submitted" and trade.order.permId == 777
    at = datetime(2024, 1, 5, 15, 31, 2, tzinfo=UTC)
    ex = ExecutionSpec(
        FULL, "0001.01", at, ACCT, "BOT", 1, -1.5, 777, CLIENT_ID, 1, exchange="CBOE", cumQty=3,
        avgPrice=-1.25, orderRef="c1:entry", liquidation=4, evRule="ev", evMultiplier=2.5,
        modelCode="m1", lastLiquidity=2, pendingPriceRevision=True,
    )  # fmt: skip
    msg = exec_details(-1, ex, version=version)
    h.feed(
        msg,
        order_status(1, "Filled", 1, 0, -1.5, 777, 0, -1.5, CLIENT_ID),
        commission_report("0001.01", 5.2, "USD", 12.5, 0.25, 20250101),
    )
    assert trade.orderStatus.status == "Filled" and trade.isDone()
    (fill,) = trade.fills
    assert_contract(fill.contract, FULL, omit=("primaryExchange",))
    for f in dataclasses.fields(ex):
        if f.name != "contract":
            want = getattr(ex, f.name)
            if f.name == "pendingPriceRevision":
                want = want and version >= 178  # the field exists from v178 on
            assert getattr(fill.execution, f.name) == want, f.name
    report = fill.commissionReport
    assert (report.execId, report.commission, report.currency) == ("0001.01", 5.2, "USD")
    assert (report.realizedPNL, report.yield_, report.yieldRedemptionDate) == (12.5, 0.25, 20250101)
    assert events == [report]
    assert_minimal(msg, ib_errors, version)
    future = h.ib.reqExecutionsAsync()
    r = await h.request()
    h.feed(exec_details(r.reqId, ex, version=version), exec_details_end(r.reqId))
    assert [f.execution.execId for f in await future] == ["0001.01"]
