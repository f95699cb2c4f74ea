"""Framing, handshake and the stream readers of bot.tws.framing, and a minimal server built on
the codec that ib_async connects to and trades with over 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ib_async import IB, Contract, LimitOrder, Option
from ib_async.util import UNSET_DOUBLE
from tws_harness import ACCT, SPX_PUT, T0, TEXT, condor, h, ib_errors, wire  # noqa: F401 (fixtures)

from bot.tws.encode_account import (
    account_download_end,
    account_update_multi_end,
    position,
    position_end,
    update_account_time,
    update_account_value,
)
from bot.tws.encode_market import ContractDetailsSpec, contract_details, contract_details_end
from bot.tws.encode_orders import (
    ExecutionSpec,
    OrderStateSpec,
    commission_report,
    completed_orders_end,
    exec_details,
    exec_details_end,
    open_order,
    open_order_end,
    order_status,
)
from bot.tws.encode_session import current_time, error_msg, managed_accounts, next_valid_id
from bot.tws.framing import (
    ClientHello,
    FrameBuffer,
    HandshakeError,
    ProtocolError,
    fmt_field,
    frame,
    handshake_reply,
    make_msg,
    negotiate_version,
    parse_frames,
    parse_hello,
    read_hello,
    read_message,
)
from bot.tws.requests import (
    NoArgRequest,
    ReqAccountUpdates,
    ReqAccountUpdatesMulti,
    ReqCompletedOrders,
    ReqContractDetails,
    ReqExecutions,
    StartApi,
    decode_request,
)
from bot.tws.wire import InMsg, ParsedOrder

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
                farm_ok = error_msg(-1, 2104, "Market data farm connection is OK:usfarm")
                return [next_valid_id(100), managed_accounts([ACCT]), farm_ok]
            case NoArgRequest(msgId=InMsg.REQ_POSITIONS):
                return [position(ACCT, SPX_PUT, -2, 1250.0), position_end()]
            case NoArgRequest(msgId=InMsg.REQ_OPEN_ORDERS):
                return [open_order_end()]
            case NoArgRequest(msgId=InMsg.REQ_CURRENT_TIME):
                return [current_time(T0)]
            case ReqCompletedOrders():
                return [completed_orders_end()]
            case ReqAccountUpdates(account=acct):
                value = update_account_value("NetLiquidation", "100000.00", "USD", acct)
                return [value, update_account_time(T0), account_download_end(acct)]
            case ReqExecutions(reqId=req_id):
                return [exec_details_end(req_id)]
            case ReqAccountUpdatesMulti(reqId=req_id):
                return [account_update_multi_end(req_id)]
            case ReqContractDetails(reqId=req_id, contract=c) if c.symbol == "SPX":
                details = contract_details(req_id, ContractDetailsSpec(SPX_PUT))
                return [details, contract_details_end(req_id)]
            case ReqContractDetails(reqId=req_id):
                return [error_msg(req_id, 200, "No security definition has been found")]
            case ParsedOrder(whatIf=True) as p:
                margins = (0.0, 0.0, 1e5, 9300.0, 9300.0, 0.0, 9300.0, 9300.0, 1e5)
                state = OrderStateSpec("PreSubmitted", *margins)
                return [open_order(p, state, perm_id=0, client_id=self.client_id)]
            case ParsedOrder() as p:
                return self.fill(p)
        return []

    def fill(self, p: ParsedOrder) -> list[bytes]:
        qty, price, cid = p.totalQuantity, p.lmtPrice or 0.0, self.client_id
        bag = wire(99, "SPX", "BAG")
        ex = ExecutionSpec(bag, "e1", T0, ACCT, "BOT", qty, price, 555, cid, p.orderId,
                               orderRef=p.orderRef)  # fmt: skip
        return [
            open_order(p, OrderStateSpec("Submitted"), perm_id=555, client_id=cid),
            order_status(p.orderId, "Submitted", 0, qty, 0, 555, 0, 0, cid),
            exec_details(-1, ex),
            commission_report("e1", 5.2),
            order_status(p.orderId, "Filled", qty, 0, price, 555, 0, price, cid),
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
