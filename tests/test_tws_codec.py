"""Golden tests for the TWS wire layer (bot/sim/tws_codec, tws_encode, tws_decode).

Encoders: their bytes go through ib_async's real receive path (``Client._onSocketHasData`` ->
``Decoder`` -> ``Wrapper``) and must yield the expected ib_async objects. Decoders: the real
``Client`` request methods encode, we capture the bytes it writes and parse them. Any ERROR
record from an ``ib_async`` logger fails the test unless the test declared it expected.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import re
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ib_async import (
    IB,
    Bag,
    ComboLeg,
    Contract,
    DeltaNeutralContract,
    ExecutionFilter,
    LimitOrder,
    Option,
    Order,
)  # fmt: skip
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

from bot.sim import tws_encode as enc
from bot.sim.tws_codec import (
    SERVER_VERSION,
    ClientHello,
    FrameBuffer,
    HandshakeError,
    InMsg,
    ParsedOrder,
    ProtocolError,
    WireComboLeg,
    WireContract,
    fmt_field,
    frame,
    handshake_reply,
    make_msg,
    negotiate_version,
    parse_frames,
    parse_hello,
    read_hello,
    read_message,
)  # fmt: skip
from bot.sim.tws_decode import (
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
    StartApi,
    UnknownRequest,
    decode_request,
)  # fmt: skip

ACCT = "DU1234567"
CLIENT_ID = 7
T0 = datetime(2024, 1, 5, 15, 30, tzinfo=UTC)
VERSIONS = range(157, SERVER_VERSION + 1)
TEXT = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)))


# ---------------------------------------------------------------- fixtures


class IbErrorGuard(logging.Handler):
    """Collects ERROR records from ib_async loggers; `expect` whitelists one by regex."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.expected: list[re.Pattern[str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def expect(self, pattern: str) -> None:
        self.expected.append(re.compile(pattern))

    def check(self) -> None:
        unexpected = [r.getMessage() for r in self.records]
        for pattern in self.expected:
            hits = [m for m in unexpected if pattern.search(m)]
            assert hits, f"expected an ib_async ERROR matching {pattern.pattern!r}"
            unexpected.remove(hits[0])
        assert not unexpected, f"ib_async logged errors: {unexpected}"


@pytest.fixture(autouse=True)
def ib_errors():
    guard = IbErrorGuard()
    logger = logging.getLogger("ib_async")
    old_level = logger.level
    logger.addHandler(guard)
    logger.setLevel(logging.INFO)
    try:
        yield guard
    finally:
        logger.removeHandler(guard)
        logger.setLevel(old_level)
    guard.check()


class Harness:
    """A real ib_async IB object whose socket is us: `feed` bytes in, `request` reads what
    the Client wrote (awaiting it, no sleeping), parsed by our decoder."""

    def __init__(self, version: int = SERVER_VERSION) -> None:
        self.version = version
        self.ib = IB()
        self.client = self.ib.client
        self.sent: asyncio.Queue[bytes] = asyncio.Queue()
        self.client.MaxRequests = 0  # no client-side throttling in tests
        self.client.conn.sendMsg = self.sent.put_nowait
        self.client.clientId = self.ib.wrapper.clientId = CLIENT_ID
        hello = handshake_reply(version, T0)
        self.feed(hello, enc.next_valid_id(1), enc.managed_accounts([ACCT]))

    def feed(self, *messages: bytes) -> None:
        self.client._onSocketHasData(b"".join(messages))

    async def request(self):
        data = await asyncio.wait_for(self.sent.get(), 5)
        (fields,) = parse_frames(data)
        return decode_request(fields, self.version)


async def harness(version: int = SERVER_VERSION) -> Harness:
    h = Harness(version)
    assert await h.request() == StartApi(CLIENT_ID, "")  # sent by the Client on the handshake
    return h


@pytest.fixture
async def h() -> Harness:
    return await harness()


def wire(con_id=0, symbol="", sec_type="", expiry="", strike=0.0, right="", mult="", exch="",
         ccy="", local="", tclass="") -> WireContract:  # fmt: skip
    return WireContract(con_id, symbol, sec_type, expiry, strike, right, mult, exch, "", ccy, local,
                        tclass)  # fmt: skip


SPX_PUT = wire(5001, "SPX", "OPT", "20240216", 4500.0, "P", "100", "SMART", "USD",
               "SPX   240216P04500000", "SPX")  # fmt: skip
SPX_IND = Contract(conId=416904, symbol="SPX", secType="IND", exchange="CBOE", currency="USD")
CONDOR_LEGS = [(5001, "BUY"), (5002, "SELL"), (5003, "SELL"), (5004, "BUY")]


def spx_put(**kw) -> Option:
    return Option("SPX", "20240216", 4500, "P", "SMART", tradingClass="SPX", **kw)


def condor() -> Bag:
    legs = [ComboLeg(conId=c, ratio=1, action=a, exchange="SMART") for c, a in CONDOR_LEGS]
    return Bag(symbol="SPX", exchange="SMART", currency="USD", comboLegs=legs)


def client_fmt(v: object) -> str:
    """How ib_async's Client.send writes a value (the reference for raw fields)."""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, list):
        return "".join(f"{t.tag}={t.value};" for t in v)
    if v is None or v == UNSET_DOUBLE or v == 2**31 - 1:
        return ""
    return "Infinite" if v == math.inf else str(v)


# All 12 fields distinct, so a swapped contract field cannot go unnoticed.
FULL = WireContract(5001, "SPX", "OPT", "20240216", 4500.0, "P", "100", "SMART", "CBOE", "USD",
                    "SPX   240216P04500000", "SPX")  # fmt: skip


def assert_contract(c: Contract, expected: WireContract, omit: tuple[str, ...] = ()) -> None:
    for f in dataclasses.fields(WireContract):
        want = getattr(WireContract(), f.name) if f.name in omit else getattr(expected, f.name)
        assert getattr(c, f.name) == want, f"contract.{f.name}"


def assert_minimal(msg: bytes, ib_errors: IbErrorGuard, version: int = SERVER_VERSION) -> None:
    """No trailing junk: ib_async ignores extra fields, so check that dropping the last field
    makes its decoder fail (an ERROR record, which this check consumes)."""
    (fields,) = parse_frames(msg)
    before = len(ib_errors.records)
    Harness(version).feed(make_msg(*fields[:-1]))
    assert len(ib_errors.records) > before, f"msg {fields[0]} decodes without its last field"
    del ib_errors.records[before:]


# ---------------------------------------------------------------- framing and handshake


def test_field_rules():
    values = (True, False, None, 2**31 - 1, UNSET_DOUBLE, math.nan, math.inf, -1.25, 3, "x")
    expected = ["1", "0", "", "", "", "", "Infinite", "-1.25", "3", "x"]
    assert [fmt_field(v) for v in values] == expected
    assert fmt_field(InMsg.REQ_IDS) == "8"
    for bad in ("a\0b", -math.inf):
        with pytest.raises(ProtocolError):
            fmt_field(bad)


@given(st.lists(st.lists(TEXT, min_size=1), min_size=1), st.integers(1, 7))
def test_frames_survive_any_chunking(messages, chunk):
    data = b"".join(make_msg(*m) for m in messages)
    buf, out = FrameBuffer(), []
    for i in range(0, len(data), chunk):
        out += buf.feed(data[i : i + chunk])
    assert out == messages and buf.pending == 0


def test_server_side_buffer_reads_hello_then_messages():
    buf = FrameBuffer(expect_hello=True)
    data = b"API\0" + frame(b"v157..178 +PACEAPI") + make_msg(71, 2, 3, "")
    out = [m for i in range(len(data)) for m in buf.feed(data[i : i + 1])]
    assert buf.hello == ClientHello(157, 178, "+PACEAPI") and out == [["71", "2", "3", ""]]
    with pytest.raises(HandshakeError):
        FrameBuffer(expect_hello=True).feed(b"GET / HTTP/1.1")
    with pytest.raises(ProtocolError):
        FrameBuffer().feed(b"\xff\xff\xff\xff")
    with pytest.raises(ProtocolError):
        parse_frames(make_msg("a")[:-1])


@pytest.mark.parametrize(
    "text, hello, version",
    [
        ("v157..178", ClientHello(157, 178), 178),
        ("v157..200 +PACEAPI", ClientHello(157, 200, "+PACEAPI"), 178),
        ("v100..170", ClientHello(100, 170), 170),
        ("v176", ClientHello(176, 176), 176),
        ("v100..150", ClientHello(100, 150), None),
        ("v179..190", ClientHello(179, 190), None),
    ],
)
def test_version_negotiation_never_exceeds_client_max(text, hello, version):
    assert parse_hello(text.encode()) == hello
    if version is None:
        with pytest.raises(HandshakeError):
            negotiate_version(hello)
    else:
        assert negotiate_version(hello) == version
    for bad in (b"157..178", b"vX..Y", b"v178..157"):
        with pytest.raises(HandshakeError):
            parse_hello(bad)


async def test_handshake_reply_is_two_fields_and_client_goes_ready(h):
    assert parse_frames(handshake_reply(178, T0)) == [["178", "20240105 15:30:00 UTC"]]
    assert h.client.serverVersion() == 178 and h.client.isReady()
    assert h.client.getAccounts() == [ACCT] and h.client.getReqId() == 1


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
        enc.HistBar(date(2024, 1, 4), 4700, 4720.5, 4690, 4710.25),
        enc.HistBar(date(2024, 1, 5), 4710.25, 4730, 4700, 4725, 1e6, 4715.5, 1234),
    ]
    h.feed(enc.historical_data(1, bars, "20231101 00:00:00", "20240105 00:00:00"))
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
    h.feed(enc.historical_data(2, []))
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
    state = enc.OrderStateSpec("Submitted", commission=1.3, commissionCurrency="USD")
    msg = enc.open_order(p, state, perm_id=9001, client_id=CLIENT_ID, version=version)
    later.feed(msg, enc.open_order_end())
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
    assert p.contract == wire(28812380, "SPX", "BAG", "", 0.0, "", "1", "SMART", "USD", "CONDOR", "COMB")  # fmt: skip
    assert_minimal(msg, ib_errors, version)


async def test_open_order_from_a_hand_built_order(h, ib_errors):
    legs = tuple(WireComboLeg(c, 1, a, "SMART") for c, a in CONDOR_LEGS)
    bag = wire(0, "SPX", "BAG", exch="SMART", ccy="USD")
    order = ParsedOrder(7, bag, action="SELL", totalQuantity=2, orderType="LMT", lmtPrice=1.9,
                        tif="DAY", account=ACCT, orderRef="c2:roll", comboLegs=legs)  # fmt: skip
    future = h.ib.reqOpenOrdersAsync()
    msg = enc.open_order(order, enc.OrderStateSpec("Submitted"), perm_id=8, client_id=CLIENT_ID)
    h.feed(msg, enc.open_order_end())
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
        state = enc.OrderStateSpec("PreSubmitted", initMarginChange=1234.5)
        h.feed(enc.open_order(p, state, perm_id=31, client_id=CLIENT_ID, version=version))
        if future is not None:
            assert (await future).numeric().initMarginChange == 1234.5
        else:
            o = trade.order
            assert (o.permId, o.totalQuantity, o.orderRef, o.tif) == (31, qty, ref, tif)
            assert o.lmtPrice == (UNSET_DOUBLE if price is None else price)

    asyncio.run(body())


# ---------------------------------------------------------------- replies (server -> client)


async def test_error_info_unknown_contract_and_rejected_order(h, ib_errors):
    seen = []
    h.ib.errorEvent += lambda *args: seen.append(args[:3])
    farm_ok = "Market data farm connection is OK:usfarm"
    h.feed(enc.error_msg(-1, 2104, farm_ok))
    future = h.ib.reqContractDetailsAsync(Contract(symbol="NOPE", secType="IND", exchange="CBOE"))
    await h.request()
    ib_errors.expect(r"Error 200, reqId 1: No security definition")
    no_def = "No security definition has been found for the request"
    h.feed(enc.error_msg(1, 200, no_def))
    assert await future == []
    trade = h.ib.placeOrder(condor(), LimitOrder("BUY", 1, -1.5))
    await h.request()
    ib_errors.expect(r"Error 201, reqId 2: Order rejected")
    h.feed(enc.error_msg(2, 201, "Order rejected - reason:margin", '{"reason": "margin"}'))
    assert trade.orderStatus.status == "Cancelled"
    assert trade.advancedError == '{"reason": "margin"}'
    rejected = (2, 201, "Order rejected - reason:margin")
    assert seen == [(-1, 2104, farm_ok), (1, 200, no_def), rejected]


async def test_error_before_v166_has_no_json_field():
    h = await harness(165)
    seen = []
    h.ib.errorEvent += lambda *args: seen.append(args[:3])
    msg = enc.error_msg(-1, 2158, "Sec-def data farm connection is OK", "{}", version=165)
    assert parse_frames(msg) == [["4", "2", "-1", "2158", "Sec-def data farm connection is OK"]]
    h.feed(msg)
    assert seen == [(-1, 2158, "Sec-def data farm connection is OK")]


async def test_fixed_layout_messages_carry_no_trailing_fields(h, ib_errors):
    for msg in [
        enc.next_valid_id(5), enc.managed_accounts([ACCT]), enc.current_time(T0),
        enc.error_msg(-1, 2104, "ok"), enc.contract_details_end(1),
        enc.security_definition_option_parameter_end(1), enc.tick_price(1, 1, 1.0, 1),
        enc.tick_size(1, 0, 1), enc.tick_option_computation(1, 13, implied_vol=0.2, delta=0.5),
        enc.tick_snapshot_end(1), enc.market_data_type(1, 1),
        enc.historical_data(1, [enc.HistBar(date(2024, 1, 5), 1, 2, 0.5, 1.5)]),
        enc.exec_details_end(1), enc.commission_report("e", 1.0), enc.position(ACCT, FULL, 1, 2),
        enc.update_account_value("k", "v", "USD", ACCT),
        enc.update_portfolio(FULL, 1, 2, 3, 4, 5, 6, ACCT),
        enc.update_account_time(T0), enc.account_download_end(ACCT),
        enc.account_update_multi(1, ACCT, "", "k", "v", "USD"), enc.account_update_multi_end(1),
    ]:  # fmt: skip
        assert_minimal(msg, ib_errors)
    for version in (165, 166):
        assert_minimal(enc.error_msg(1, 201, "rejected", "{}", version=version), ib_errors, version)


async def test_decoder_failures_fail_the_guard(h, ib_errors):
    ib_errors.expect(r"Error handling fields")  # proves a malformed message cannot pass silently
    h.feed(make_msg(1, 6, 1, 1, "4500.0"))  # tickPrice missing size and mask


async def test_current_time(h):
    future = h.ib.reqCurrentTimeAsync()
    assert await h.request() == NoArgRequest(InMsg.REQ_CURRENT_TIME)
    h.feed(enc.current_time(T0))
    assert await future == T0


def sentinel_details() -> enc.ContractDetailsSpec:
    """Every ContractDetails field distinct from every other."""
    values: dict[str, object] = {}
    for i, f in enumerate(dataclasses.fields(enc.ContractDetailsSpec)):
        if isinstance(f.default, str):
            values[f.name] = f"<{f.name}>"
        elif isinstance(f.default, float):
            values[f.name] = 0.5 + i
        elif isinstance(f.default, int):
            values[f.name] = 100 + i
    values["secIdList"] = (("OCC", "SPX 240216P4500"), ("ISIN", "US0000000000"))
    values["longName"] = "Índice S&P 500 \\ <longName>"  # ib_async un-escapes longName
    return enc.ContractDetailsSpec(FULL, **values)


@pytest.mark.parametrize("version", [157, 163, 164, 178])
async def test_contract_details(version, ib_errors):
    h = await harness(version)
    future = h.ib.reqContractDetailsAsync(spx_put())
    await h.request()
    spec = sentinel_details()
    msg = enc.contract_details(1, spec, version=version)
    h.feed(msg, enc.contract_details_end(1))
    (cd,) = await future
    assert_contract(cd.contract, FULL)
    assert cd.secIdList == [TagValue(t, v) for t, v in spec.secIdList]
    absent = {157: {"minSize", "sizeIncrement", "suggestedSizeIncrement"}, 163: {"minSize", "sizeIncrement"}}  # fmt: skip
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
        enc.security_definition_option_parameter(1, "SMART", 416904, "SPX", "100", monthly, [4500, 4550.0]),  # fmt: skip
        enc.security_definition_option_parameter(1, "SMART", 416904, "SPXW", "100", ["20240112"], []),  # fmt: skip
        enc.security_definition_option_parameter_end(1),
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
        enc.market_data_type(1, 3),
        enc.tick_price(1, 66, 12.3, 10),  # delayed bid
        enc.tick_price(1, 67, 12.9, 7),  # delayed ask
        enc.tick_price(1, 68, 12.5, 1),  # delayed last
        enc.tick_price(1, 9, 11.0),
        enc.tick_size(1, 8, 1500),
        enc.tick_size(1, 22, 32000),
        enc.tick_option_computation(1, 83, **greeks, und_price=4720.5),
        enc.tick_option_computation(1, 80, implied_vol=None, delta=math.nan),
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
    (fields,) = parse_frames(enc.tick_option_computation(1, 80, implied_vol=None, delta=None))
    assert [float(x) for x in fields[4:]] == [-1, -2, -1, 0, -2, -2, -2, -1]
    h.feed(enc.tick_price(1, 66, 0.0, 0))  # bid withdrawn: size 0 -> ib_async's "empty" price
    assert (ticker.bid, ticker.bidSize) == (h.ib.wrapper.defaultEmptyPrice, 0)
    h.ib.cancelMktData(opt)
    assert await h.request() == CancelById(InMsg.CANCEL_MKT_DATA, 1)


async def test_snapshot_ends_with_tick_snapshot_end(h):
    task = asyncio.ensure_future(h.ib.reqTickersAsync(SPX_IND))
    r = await h.request()
    assert isinstance(r, ReqMktData) and r.snapshot and r.contract.conId == 416904
    h.feed(enc.tick_price(1, 4, 4720.5, 0), enc.tick_snapshot_end(1))
    (ticker,) = await task
    assert ticker.last == 4720.5


async def test_what_if_margin(h):
    order = LimitOrder("BUY", 2, -1.85, orderRef="c1:entry", account=ACCT, tif="DAY")
    future = h.ib.whatIfOrderAsync(condor(), order)
    p = await h.request()
    assert isinstance(p, ParsedOrder) and p.whatIf and p.orderRef == "c1:entry"
    assert (p.action, p.totalQuantity, p.lmtPrice, p.tif) == ("BUY", 2.0, -1.85, "DAY")
    assert (p.account, p.contract.secType) == (ACCT, "BAG")
    h.feed(enc.open_order(p, enc.OrderStateSpec("PreSubmitted"), perm_id=0, client_id=CLIENT_ID))
    assert not future.done()  # ib_async waits until initMarginChange is set
    state = enc.OrderStateSpec(
        "PreSubmitted", 10000.0, 9000.0, 100000.0, 9300.0, 9200.0, -50.0, 19300.0, 18200.0,
        99950.0, commission=5.2, minCommission=5.0, maxCommission=5.5, commissionCurrency="USD",
        warningText="close to limit",
    )  # fmt: skip
    h.feed(enc.open_order(p, state, perm_id=0, client_id=CLIENT_ID))
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
    submitted = enc.OrderStateSpec("Submitted")
    h.feed(
        enc.open_order(p, submitted, perm_id=777, client_id=CLIENT_ID, version=version),
        enc.order_status(1, "Submitted", 0, 1, 0, 777, 0, 0, CLIENT_ID),
    )
    assert trade.orderStatus.status == "Submitted" and trade.order.permId == 777
    at = datetime(2024, 1, 5, 15, 31, 2, tzinfo=UTC)
    ex = enc.ExecutionSpec(
        FULL, "0001.01", at, ACCT, "BOT", 1, -1.5, 777, CLIENT_ID, 1, exchange="CBOE", cumQty=3,
        avgPrice=-1.25, orderRef="c1:entry", liquidation=4, evRule="ev", evMultiplier=2.5,
        modelCode="m1", lastLiquidity=2, pendingPriceRevision=True,
    )  # fmt: skip
    msg = enc.exec_details(-1, ex, version=version)
    h.feed(
        msg,
        enc.order_status(1, "Filled", 1, 0, -1.5, 777, 0, -1.5, CLIENT_ID),
        enc.commission_report("0001.01", 5.2, "USD", 12.5, 0.25, 20250101),
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
    h.feed(enc.exec_details(r.reqId, ex, version=version), enc.exec_details_end(r.reqId))
    assert [f.execution.execId for f in await future] == ["0001.01"]


async def test_positions_account_and_portfolio(h):
    positions = h.ib.reqPositionsAsync()
    await h.request()
    h.feed(enc.position(ACCT, FULL, -2, 1250.0), enc.position_end())
    (pos,) = await positions
    assert_contract(pos.contract, FULL, omit=("primaryExchange",))
    assert (pos.account, pos.position, pos.avgCost) == (ACCT, -2.0, 1250.0)
    updates = h.ib.reqAccountUpdatesAsync(ACCT)
    await h.request()
    h.feed(
        enc.update_account_value("NetLiquidation", "100000.00", "USD", ACCT),
        enc.update_account_value("ExcessLiquidity", "80000.00", "USD", ACCT),
        enc.update_portfolio(FULL, -2, 11.5, -2300.0, 1250.0, 200.0, 30.0, ACCT),
        enc.update_account_time(T0),
        enc.account_download_end(ACCT),
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
        enc.account_update_multi(r.reqId, ACCT, "", "MaintMarginReq", "9300.00", "USD"),
        enc.account_update_multi_end(r.reqId),
    )
    await multi
    maint = [v.value for v in h.ib.accountValues(ACCT) if v.tag == "MaintMarginReq"]
    assert maint == ["9300.00"]


async def test_empty_open_and_completed_orders(h):
    opened, completed = h.ib.reqOpenOrdersAsync(), h.ib.reqCompletedOrdersAsync(False)
    h.feed(enc.open_order_end(), enc.completed_orders_end())
    assert (await opened, await completed) == ([], [])


# ---------------------------------------------------------------- over a real socket


class MiniTws:
    """The smallest server built on the codec that ib_async's IB can connect to and trade
    with: proves handshake, framing and the connect-time sequence over 127.0.0.1."""

    def __init__(self) -> None:
        self.hello: ClientHello | None = None
        self.requests: list[object] = []
        self.client_id = -1

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.hello = await read_hello(reader)
        version = negotiate_version(self.hello)
        writer.write(handshake_reply(version, T0))
        while (fields := await read_message(reader)) is not None:
            request = decode_request(fields, version)
            self.requests.append(request)
            writer.write(b"".join(self.answer(request)))
        writer.close()

    def answer(self, r: object) -> list[bytes]:
        match r:
            case StartApi(clientId=client_id):
                self.client_id = client_id
                farm_ok = enc.error_msg(-1, 2104, "Market data farm connection is OK:usfarm")
                return [enc.next_valid_id(100), enc.managed_accounts([ACCT]), farm_ok]
            case NoArgRequest(msgId=InMsg.REQ_POSITIONS):
                return [enc.position(ACCT, SPX_PUT, -2, 1250.0), enc.position_end()]
            case NoArgRequest(msgId=InMsg.REQ_OPEN_ORDERS):
                return [enc.open_order_end()]
            case NoArgRequest(msgId=InMsg.REQ_CURRENT_TIME):
                return [enc.current_time(T0)]
            case ReqCompletedOrders():
                return [enc.completed_orders_end()]
            case ReqAccountUpdates(account=acct):
                value = enc.update_account_value("NetLiquidation", "100000.00", "USD", acct)
                return [value, enc.update_account_time(T0), enc.account_download_end(acct)]
            case ReqExecutions(reqId=req_id):
                return [enc.exec_details_end(req_id)]
            case ReqAccountUpdatesMulti(reqId=req_id):
                return [enc.account_update_multi_end(req_id)]
            case ReqContractDetails(reqId=req_id, contract=c) if c.symbol == "SPX":
                details = enc.contract_details(req_id, enc.ContractDetailsSpec(SPX_PUT))
                return [details, enc.contract_details_end(req_id)]
            case ReqContractDetails(reqId=req_id):
                return [enc.error_msg(req_id, 200, "No security definition has been found")]
            case ParsedOrder(whatIf=True) as p:
                margins = (0.0, 0.0, 1e5, 9300.0, 9300.0, 0.0, 9300.0, 9300.0, 1e5)
                state = enc.OrderStateSpec("PreSubmitted", *margins)
                return [enc.open_order(p, state, perm_id=0, client_id=self.client_id)]
            case ParsedOrder() as p:
                return self.fill(p)
        return []

    def fill(self, p: ParsedOrder) -> list[bytes]:
        qty, price, cid = p.totalQuantity, p.lmtPrice or 0.0, self.client_id
        bag = wire(99, "SPX", "BAG")
        ex = enc.ExecutionSpec(bag, "e1", T0, ACCT, "BOT", qty, price, 555, cid, p.orderId,
                               orderRef=p.orderRef)  # fmt: skip
        return [
            enc.open_order(p, enc.OrderStateSpec("Submitted"), perm_id=555, client_id=cid),
            enc.order_status(p.orderId, "Submitted", 0, qty, 0, 555, 0, 0, cid),
            enc.exec_details(-1, ex),
            enc.commission_report("e1", 5.2),
            enc.order_status(p.orderId, "Filled", qty, 0, price, 555, 0, price, cid),
        ]


@pytest.mark.parametrize("options", ["", "+PACEAPI"])
async def test_ib_connects_and_trades_over_loopback(options, ib_errors):
    mini = MiniTws()
    server = await asyncio.start_server(mini.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ib = IB()
    ib.client.setConnectOptions(options)
    try:
        await ib.connectAsync("127.0.0.1", port, clientId=3, timeout=5)  # timeouts log ERRORs
        assert mini.hello == ClientHello(157, 178, options) and ib.client.serverVersion() == 178
        assert ib.managedAccounts() == [ACCT] and [p.position for p in ib.positions()] == [-2.0]
        kinds = {type(r).__name__ for r in mini.requests}
        assert kinds >= {"StartApi", "ReqCompletedOrders", "ReqExecutions", "ReqAccountUpdates"}
        ib_errors.expect(r"Error 200, reqId \d+: No security definition")
        nope = Contract(symbol="NOPE", secType="IND")
        spx, unknown = await ib.qualifyContractsAsync(Option("SPX", "20240216", 4500, "P"), nope)
        assert spx.conId == 5001 and spx.tradingClass == "SPX" and unknown is None
        state = await ib.whatIfOrderAsync(condor(), LimitOrder("BUY", 1, -1.85))
        assert state.numeric().initMarginChange == 9300.0
        order = LimitOrder("BUY", 1, -1.85, orderRef="c1:entry", account=ACCT)
        trade = ib.placeOrder(condor(), order)
        assert await ib.reqCurrentTimeAsync() == T0  # replies come in order: a barrier, no sleep
        assert trade.orderStatus.status == "Filled"
        (fill,) = trade.fills
        assert fill.commissionReport.commission == 5.2 and fill.execution.orderRef == "c1:entry"
    finally:
        ib.disconnect()
        server.close()
        await server.wait_closed()


async def test_stream_readers_tell_clean_eof_from_a_cut_frame():
    async def read_all(data: bytes) -> list[list[str]]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        assert await read_hello(reader) == ClientHello(157, 178)
        out = []
        while (msg := await read_message(reader)) is not None:
            out.append(msg)
        return out

    hello = b"API\0" + frame(b"v157..178")
    body = make_msg(61, 1) + make_msg(8, 1, 5)
    assert await read_all(hello + body) == [["61", "1"], ["8", "1", "5"]]
    for cut in (body[:-1], body + b"\0\0", body + b"\0\0\0\4"):  # in a body / header / after one
        with pytest.raises(ProtocolError):
            await read_all(hello + cut)
