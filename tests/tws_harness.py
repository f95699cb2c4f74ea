"""Shared harness for the TWS wire-layer golden tests (tests/test_tws_codec_*.py) and the
ERROR guard on ib_async's loggers that every IB test uses.

Encoders: their bytes go through ib_async's real receive path (``Client._onSocketHasData`` ->
``Decoder`` -> ``Wrapper``) and must yield the expected ib_async objects. Decoders: the real
``Client`` request methods encode, we capture the bytes it writes and parse them. Import the
`ib_errors` fixture into a test module to make every test there fail on an ERROR record from
an ``ib_async`` logger it did not declare.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import re
from datetime import UTC, datetime

import pytest
from hypothesis import strategies as st
from ib_async import IB, Bag, ComboLeg, Contract, Option
from ib_async.util import UNSET_DOUBLE

from bot.tws.encode_session import managed_accounts, next_valid_id
from bot.tws.framing import SERVER_VERSION, handshake_reply, make_msg, parse_frames
from bot.tws.requests import StartApi, decode_request
from bot.tws.wire import WireContract

ACCT = "DU1234567"
CLIENT_ID = 7
T0 = datetime(2024, 1, 5, 15, 30, tzinfo=UTC)
VERSIONS = range(157, SERVER_VERSION + 1)
TEXT = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)))


class IbErrorGuard(logging.Handler):
    """Collects ERROR records from ib_async loggers: `expect` = must appear once, `allow` =
    may appear any number of times; anything else fails the test."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.expected: list[re.Pattern[str]] = []
        self.allowed: list[re.Pattern[str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def expect(self, pattern: str) -> None:
        self.expected.append(re.compile(pattern))

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def check(self) -> None:
        left = [r.getMessage() for r in self.records]
        for pattern in self.expected:
            hits = [m for m in left if pattern.search(m)]
            assert hits, f"expected an ib_async ERROR matching {pattern.pattern!r}"
            left.remove(hits[0])
        left = [m for m in left if not any(p.search(m) for p in self.allowed)]
        assert not left, f"ib_async logged errors: {left}"


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
        self.feed(hello, next_valid_id(1), managed_accounts([ACCT]))

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
