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
from ib_async import IB, Bag, ComboLeg, Contract, ExecutionFilter, LimitOrder, Option, Order
from ib_async.contract import TagValue
from ib_async.objects import SoftDollarTier
from ib_async.order import (
    ExecutionCondition, MarginCondition, OrderComboLeg, PercentChangeCondition, PriceCondition,
    TimeCondition, VolumeCondition,
)  # fmt: skip
from ib_async.util import UNSET_DOUBLE

from bot.sim import tws_encode as enc
from bot.sim.tws_codec import (
    SERVER_VERSION, ClientHello, FrameBuffer, HandshakeError, InMsg, ParsedOrder, ProtocolError,
    WireComboLeg, WireContract, fmt_field, frame, handshake_reply, make_msg, negotiate_version,
    parse_frames, parse_hello, read_hello, read_message,
)  # fmt: skip
from bot.sim.tws_decode import (
    CancelById, CancelOrder, NoArgRequest, ReqAccountUpdates, ReqAccountUpdatesMulti,
    ReqAutoOpenOrders, ReqCompletedOrders, ReqContractDetails, ReqExecutions,
    ReqHistoricalData, ReqIds, ReqMarketDataType, ReqMktData, ReqSecDefOptParams, StartApi,
    UnknownRequest, decode_request,
)  # fmt: skip

ACCT = "DU1234567"
CLIENT_ID = 7
T0 = datetime(2024, 1, 5, 15, 30, tzinfo=UTC)
VERSIONS = range(157, SERVER_VERSION + 1)


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
        self.client.connState = self.client.CONNECTING
        self.feed(handshake_reply(version, T0) + enc.next_valid_id(1) + enc.managed_accounts([ACCT]))

    def feed(self, *messages: bytes) -> None:
        self.client._onSocketHasData(b"".join(messages))

    async def request(self):
        data = await asyncio.wait_for(self.sent.get(), 5)
        (fields,) = parse_frames(data)
        return decode_request(fields, self.version)


@pytest.fixture
async def h() -> Harness:
    harness = Harness()
    assert await harness.request() == StartApi(CLIENT_ID, "")
    return harness


SPX_PUT = WireContract(
    conId=5001, symbol="SPX", secType="OPT", lastTradeDateOrContractMonth="20240216",
    strike=4500.0, right="P", multiplier="100", exchange="SMART", currency="USD",
    localSymbol="SPX   240216P04500000", tradingClass="SPX",
)  # fmt: skip
CONDOR_LEGS = [(5001, "BUY"), (5002, "SELL"), (5003, "SELL"), (5004, "BUY")]


def condor() -> Bag:
    legs = [ComboLeg(conId=c, ratio=1, action=a, exchange="SMART") for c, a in CONDOR_LEGS]
    return Bag(symbol="SPX", exchange="SMART", currency="USD", comboLegs=legs)


def client_fmt(v: object) -> str:
    """How ib_async's Client.send writes a value (the reference for raw fields)."""
    if isinstance(v, bool):
        return "1" if v else "0"
    if v is None or v == UNSET_DOUBLE or v == 2**31 - 1:
        return ""
    return "Infinite" if v == math.inf else str(v)


# ---------------------------------------------------------------- framing and handshake


def test_field_rules():
    assert [fmt_field(v) for v in (True, False, None, 2**31 - 1, UNSET_DOUBLE, math.nan)] == [
        "1", "0", "", "", "", "",
    ]  # fmt: skip
    assert [fmt_field(v) for v in (math.inf, 4500.0, -1.25, 3, "x", InMsg.REQ_IDS)] == [
        "Infinite", "4500.0", "-1.25", "3", "x", "8",
    ]  # fmt: skip
    for bad in ("a\0b", -math.inf):
        with pytest.raises(ProtocolError):
            fmt_field(bad)


@given(st.lists(st.lists(st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",))), min_size=1), min_size=1),
       st.integers(1, 7))  # fmt: skip
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
    [("v157..178", ClientHello(157, 178), 178), ("v157..200 +PACEAPI", ClientHello(157, 200, "+PACEAPI"), 178),
     ("v100..170", ClientHello(100, 170), 170), ("v176", ClientHello(176, 176), 176),
     ("v100..150", ClientHello(100, 150), None), ("v179..190", ClientHello(179, 190), None)],
)  # fmt: skip
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
    ib.reqExecutionsAsync(ExecutionFilter(clientId=3, acctCode=ACCT, time="20240105 00:00:00", symbol="SPX", secType="BAG", exchange="SMART", side="BUY"))  # fmt: skip
    assert await h.request() == ReqExecutions(2, 3, ACCT, "20240105 00:00:00", "SPX", "BAG", "SMART", "BUY")  # fmt: skip
    for call, expected in [
        (lambda: h.client.reqIds(5), ReqIds(5)),
        (ib.reqCurrentTimeAsync, NoArgRequest(InMsg.REQ_CURRENT_TIME)),
        (ib.reqGlobalCancel, NoArgRequest(InMsg.REQ_GLOBAL_CANCEL)),
        (lambda: ib.reqMarketDataType(3), ReqMarketDataType(3)),
        (lambda: h.client.cancelMktData(9), CancelById(InMsg.CANCEL_MKT_DATA, 9)),
        (lambda: h.client.cancelHistoricalData(9), CancelById(InMsg.CANCEL_HISTORICAL_DATA, 9)),
        (lambda: h.client.startApi(), StartApi(CLIENT_ID, "")),
    ]:
        call()
        assert await h.request() == expected


@pytest.mark.parametrize("version", [175, 176, 178])
async def test_req_contract_details(version):
    h = Harness(version)
    await h.request()
    h.ib.reqContractDetailsAsync(Option("SPX", "20240216", 4500, "P", "SMART", tradingClass="SPX"))
    r = await h.request()
    assert isinstance(r, ReqContractDetails) and r.reqId == 1 and not r.includeExpired
    assert r.contract == WireContract(0, "SPX", "OPT", "20240216", 4500.0, "P", "", "SMART", "", "", "", "SPX")  # fmt: skip


async def test_req_sec_def_opt_params_and_market_data(h):
    h.ib.reqSecDefOptParamsAsync("SPX", "", "IND", 416904)
    assert await h.request() == ReqSecDefOptParams(1, "SPX", "", "IND", 416904)
    opt = Option("SPX", "20240216", 4500, "P", "SMART", tradingClass="SPX", conId=5001)
    h.ib.reqMktData(opt, "100,101,106", False, False, [TagValue("a", "b")])
    r = await h.request()
    assert r == ReqMktData(2, WireContract(5001, "SPX", "OPT", "20240216", 4500.0, "P", "", "SMART", "", "", "", "SPX"), (), None, "100,101,106", False, False, "a=b;")  # fmt: skip
    bag = condor()
    bag.deltaNeutralContract = __import__("ib_async").DeltaNeutralContract(77, 0.5, 4700.0)
    h.ib.reqMktData(bag, snapshot=True)
    r = await h.request()
    assert [(x.conId, x.action) for x in r.comboLegs] == CONDOR_LEGS
    assert r.deltaNeutralContract == (77, 0.5, 4700.0) and r.snapshot


async def test_req_historical_data(h):
    spx = Contract(conId=416904, symbol="SPX", secType="IND", exchange="CBOE", currency="USD")
    task = asyncio.ensure_future(h.ib.reqHistoricalDataAsync(spx, "", "60 D", "1 day", "TRADES", True))
    r = await h.request()
    assert r == ReqHistoricalData(1, WireContract(416904, "SPX", "IND", "", 0.0, "", "", "CBOE", "", "USD", "", ""), False, "", "1 day", "60 D", True, "TRADES", 1, (), False, "")  # fmt: skip
    h.feed(enc.historical_data(1, [enc.HistBar(date(2024, 1, 4), 4700, 4720.5, 4690, 4710.25, 0, 0, 0), enc.HistBar(date(2024, 1, 5), 4710.25, 4730, 4700, 4725, 1e6, 4715.5, 1234)], "20231101 00:00:00", "20240105 00:00:00"))  # fmt: skip
    bars = await task
    assert [(b.date, b.open, b.high, b.low, b.close) for b in bars] == [
        (date(2024, 1, 4), 4700, 4720.5, 4690, 4710.25), (date(2024, 1, 5), 4710.25, 4730, 4700, 4725)]  # fmt: skip
    assert (bars[1].volume, bars[1].average, bars[1].barCount) == (1e6, 4715.5, 1234)
    task = asyncio.ensure_future(h.ib.reqHistoricalDataAsync(condor(), "", "5 D", "1 day", "MIDPOINT", False))  # fmt: skip
    r = await h.request()
    assert [(x.conId, x.action) for x in r.comboLegs] == CONDOR_LEGS and r.whatToShow == "MIDPOINT"
    h.feed(enc.historical_data(2, []))
    assert list(await task) == []


@pytest.mark.parametrize("version", [168, 169, 178])
async def test_cancel_order(version):
    h = Harness(version)
    await h.request()
    h.client.cancelOrder(42, "20240105 10:00:00")
    assert await h.request() == CancelOrder(42, "20240105 10:00:00" if version >= 169 else "")


def test_malformed_requests_are_protocol_errors():
    with pytest.raises(ProtocolError):
        decode_request(["8", "1"])  # reqIds without numIds
    with pytest.raises(ProtocolError):
        decode_request(["8", "1", "5", "extra"])
    with pytest.raises(ProtocolError):
        decode_request(["x"])
    assert decode_request(["104", "3"]) == UnknownRequest(104, ("104", "3"))
