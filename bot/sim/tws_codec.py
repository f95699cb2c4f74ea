"""TWS API wire layer, shared part: framing, handshake, field formatting, wire types.

The emulator (bot/sim/gateway.py) speaks the TWS socket protocol as ib_async 2.1 expects it at
server version 178. This module holds what both directions share; `tws_encode` builds the
server -> client messages and `tws_decode` parses the client -> server requests.

Wire format: the client opens with ``b"API\\0"`` and one framed version string
(``"v157..178"``, optionally followed by connect options such as ``" +PACEAPI"``). Every later
message is a 4-byte big-endian length followed by NUL-terminated text fields. The server's
first message is exactly two fields: ``<serverVersion>`` and ``<connection time>``.

Field rules (the same as ib_async's ``Client.send``): booleans are "1"/"0", the "unset" int
(2**31-1) and double (sys.float_info.max) are "", positive infinity is "Infinite".

No ib_async import here: the emulator must not share code with the client it tests.
"""

from __future__ import annotations

import asyncio
import math
import struct
import sys
from dataclasses import dataclass, field
from dataclasses import fields as dc_fields
from datetime import datetime
from decimal import Decimal
from enum import IntEnum

SERVER_VERSION = 178  # pinned: ib_async 2.1's max; above 200 IB switches to protobuf
MIN_SERVER_VERSION = 157  # the lowest version ib_async 2.1 accepts
MAX_MSG_LEN = 0xFFFFFF  # IB's limit on one message body (16 MiB)
API_SIGN = b"API\0"

UNSET_INTEGER = 2**31 - 1
UNSET_DOUBLE = sys.float_info.max
# How TWS (Java) prints an unset double inside string-typed fields (e.g. order-state margins).
UNSET_DOUBLE_STR = "1.7976931348623157E308"
INFINITE = "Infinite"


class InMsg(IntEnum):
    """Message ids the client sends (first field)."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCT_DATA = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DATA = 9
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_HISTORICAL_DATA = 20
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_SEC_DEF_OPT_PARAMS = 78
    REQ_COMPLETED_ORDERS = 99


class ProtocolError(ValueError):
    """A message that does not follow the wire protocol (bad frame, wrong field count...)."""


class HandshakeError(ProtocolError):
    """The client's opening (``API\\0`` + version range) is missing or incompatible."""


# ---------------------------------------------------------------- fields and frames


def fmt_field(value: object) -> str:
    """One field as TWS writes it: bool "1"/"0", unset/None/NaN "", +inf "Infinite"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return "" if value == UNSET_INTEGER else str(int(value))
    if isinstance(value, float):
        if math.isnan(value) or value == UNSET_DOUBLE:
            return ""
        if value == math.inf:
            return INFINITE
        if value == -math.inf:
            raise ProtocolError("-inf has no wire form")
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        if "\0" in value:
            raise ProtocolError(f"NUL inside a field: {value!r}")
        return value
    raise TypeError(f"no wire form for {type(value).__name__}: {value!r}")


def frame(payload: bytes) -> bytes:
    """Length-prefix one message body."""
    if len(payload) > MAX_MSG_LEN:
        raise ProtocolError(f"message of {len(payload)} bytes exceeds {MAX_MSG_LEN}")
    return struct.pack(">I", len(payload)) + payload


def make_msg(*values: object) -> bytes:
    """Format the fields (see `fmt_field`), NUL-terminate each, and frame the message."""
    return frame("".join(fmt_field(v) + "\0" for v in values).encode("utf-8"))


def split_fields(payload: bytes) -> list[str]:
    """Message body -> its fields (every field must be NUL-terminated)."""
    text = payload.decode("utf-8", errors="backslashreplace")
    if not text.endswith("\0"):
        raise ProtocolError(f"message body not NUL-terminated: {text[:80]!r}")
    return text[:-1].split("\0")


def parse_frames(data: bytes) -> list[list[str]]:
    """Split bytes holding whole frames (e.g. an encoder's output) into field lists."""
    buf = FrameBuffer()
    msgs = buf.feed(data)
    if buf.pending:
        raise ProtocolError(f"{buf.pending} trailing bytes do not form a whole frame")
    return msgs


@dataclass(frozen=True)
class ClientHello:
    """The client's opening: supported version range and connect options."""

    min_version: int
    max_version: int
    options: str = ""


def parse_hello(payload: bytes) -> ClientHello:
    """Parse ``v157..178`` / ``v157..178 +PACEAPI`` / legacy ``v100`` version strings."""
    text = payload.decode("ascii", errors="replace").rstrip("\0")
    versions, _, options = text.partition(" ")
    if not versions.startswith("v"):
        raise HandshakeError(f"bad version string {text!r}")
    lo, sep, hi = versions[1:].partition("..")
    try:
        low = int(lo)
        high = int(hi) if sep else low
    except ValueError:
        raise HandshakeError(f"bad version string {text!r}") from None
    if low > high:
        raise HandshakeError(f"empty version range {text!r}")
    return ClientHello(low, high, options.strip())


def negotiate_version(hello: ClientHello, server_max: int = SERVER_VERSION) -> int:
    """min(server max, client max); never above what the client said it speaks."""
    version = min(server_max, hello.max_version)
    if version < hello.min_version or version < MIN_SERVER_VERSION:
        raise HandshakeError(
            f"no common version: client {hello.min_version}..{hello.max_version}, "
            f"server {MIN_SERVER_VERSION}..{server_max}"
        )
    return version


def handshake_reply(version: int, conn_time: datetime | str) -> bytes:
    """The server's first message: exactly two fields, version and connection time."""
    if isinstance(conn_time, datetime):
        zone = conn_time.tzname() or "UTC"
        conn_time = f"{conn_time:%Y%m%d %H:%M:%S} {zone}"
    return make_msg(version, conn_time)


class FrameBuffer:
    """Incremental reader: feed raw bytes, get whole messages (field lists) back.

    With ``expect_hello`` (server side) the stream must start with ``API\\0`` and one framed
    version string; it is parsed into `hello` and not returned as a message.
    """

    def __init__(self, expect_hello: bool = False) -> None:
        self._buf = b""
        self._want_sign = expect_hello
        self._want_hello = expect_hello
        self.hello: ClientHello | None = None

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[list[str]]:
        self._buf += data
        out: list[list[str]] = []
        if self._want_sign:
            if len(self._buf) < len(API_SIGN):
                if not API_SIGN.startswith(self._buf):
                    raise HandshakeError(f"stream does not start with API\\0: {self._buf!r}")
                return out
            if not self._buf.startswith(API_SIGN):
                raise HandshakeError(f"stream does not start with API\\0: {self._buf[:8]!r}")
            self._buf = self._buf[len(API_SIGN) :]
            self._want_sign = False
        pos, buf = 0, self._buf
        while len(buf) - pos >= 4:
            (size,) = struct.unpack_from(">I", buf, pos)
            if size > MAX_MSG_LEN:
                raise ProtocolError(f"frame length {size} exceeds {MAX_MSG_LEN}")
            if len(buf) - pos - 4 < size:
                break
            payload, pos = buf[pos + 4 : pos + 4 + size], pos + 4 + size
            if self._want_hello:
                self.hello = parse_hello(payload)
                self._want_hello = False
            else:
                out.append(split_fields(payload))
        self._buf = buf[pos:]
        return out


async def _read_frame(reader: asyncio.StreamReader, header: bytes | None = None) -> bytes:
    (size,) = struct.unpack(">I", header or await reader.readexactly(4))
    if size > MAX_MSG_LEN:
        raise ProtocolError(f"frame length {size} exceeds {MAX_MSG_LEN}")
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError("connection closed inside a frame") from exc


async def read_hello(reader: asyncio.StreamReader) -> ClientHello:
    """Read ``API\\0`` and the framed version string from a fresh connection."""
    sign = await reader.readexactly(len(API_SIGN))
    if sign != API_SIGN:
        raise HandshakeError(f"stream does not start with API\\0: {sign!r}")
    return parse_hello(await _read_frame(reader))


async def read_message(reader: asyncio.StreamReader) -> list[str] | None:
    """Next message's fields, or None on a clean EOF between messages."""
    try:
        header = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("connection closed inside a frame header") from exc
        return None
    return split_fields(await _read_frame(reader, header))


# ---------------------------------------------------------------- wire types


@dataclass(frozen=True)
class WireContract:
    """A contract as the wire carries it (IB's field names, in wire order)."""

    conId: int = 0
    symbol: str = ""
    secType: str = ""
    lastTradeDateOrContractMonth: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primaryExchange: str = ""
    currency: str = ""
    localSymbol: str = ""
    tradingClass: str = ""


@dataclass(frozen=True)
class WireComboLeg:
    """One leg of a BAG contract."""

    conId: int
    ratio: int
    action: str  # "BUY" / "SELL"
    exchange: str = ""
    openClose: int = 0
    shortSaleSlot: int = 0
    designatedLocation: str = ""
    exemptCode: int = -1


@dataclass(frozen=True)
class ParsedOrder:
    """A placeOrder request: the fields that matter typed, every field in `raw`.

    `raw` maps ib_async ``Order`` attribute names (``softDollarTier.name`` etc. for nested
    ones, ``secIdType``/``secId`` for the contract's) to the text sent, exactly as received.
    Built by `tws_decode.decode_request`; `tws_encode.open_order` echoes it back.
    """

    orderId: int
    contract: WireContract
    action: str = ""
    totalQuantity: float = 0.0
    orderType: str = ""
    lmtPrice: float | None = None
    auxPrice: float | None = None
    tif: str = ""
    ocaGroup: str = ""
    account: str = ""
    openClose: str = ""
    origin: int = 0
    orderRef: str = ""
    transmit: bool = True
    parentId: int = 0
    outsideRth: bool = False
    goodAfterTime: str = ""
    goodTillDate: str = ""
    whatIf: bool = False
    comboLegs: tuple[WireComboLeg, ...] = ()
    orderComboLegPrices: tuple[float | None, ...] = ()
    smartComboRoutingParams: tuple[tuple[str, str], ...] = ()
    algoStrategy: str = ""
    algoParams: tuple[tuple[str, str], ...] = ()
    deltaNeutralContract: tuple[int, float, float] | None = None  # (conId, delta, price)
    conditions: tuple[tuple[str, ...], ...] = ()  # each: (condType, *its fields) as sent
    raw: dict[str, str] = field(default_factory=dict, compare=False)


def parse_num(text: str, name: str = "") -> float | None:
    """A double field: unset ("") -> None, "Infinite" -> inf."""
    if text == "":
        return None
    if text == INFINITE:
        return math.inf
    try:
        return float(text)
    except ValueError:
        raise ProtocolError(f"field {name!r}: not a number: {text!r}") from None


# Order conditions: condType -> number of fields including condType (ib_async order.py).
CONDITION_FIELD_COUNTS = {1: 7, 3: 4, 4: 4, 5: 5, 6: 6, 7: 6}


class Cursor:
    """Reads fields in order; `take` records each into `raw` under the given name."""

    def __init__(self, fields: list[str], start: int = 1) -> None:
        self.fields = fields
        self.pos = start
        self.raw: dict[str, str] = {}

    def take(self, name: str) -> str:
        if self.pos >= len(self.fields):
            raise ProtocolError(f"msg {self.fields[0]}: ends before field {name!r}")
        value = self.fields[self.pos]
        self.pos += 1
        self.raw[name] = value
        return value

    def int(self, name: str, default: int = 0) -> int:
        text = self.take(name)
        try:
            return int(text) if text else default
        except ValueError:
            raise ProtocolError(f"field {name!r}: not an int: {text!r}") from None

    def float(self, name: str) -> float | None:
        return parse_num(self.take(name), name)

    def bool(self, name: str) -> bool:
        text = self.take(name)
        if text not in ("0", "1", ""):
            raise ProtocolError(f"field {name!r}: not a bool: {text!r}")
        return text == "1"

    def contract(self, prefix: str = "contract.") -> WireContract:
        """The 12 contract fields, in WireContract (= ib_async Client.send) order."""
        v = [self.take(prefix + f.name) for f in dc_fields(WireContract)]
        try:
            return WireContract(int(v[0] or 0), v[1], v[2], v[3], float(v[4] or 0), *v[5:])
        except ValueError:
            raise ProtocolError(f"bad contract conId/strike: {v[0]!r}, {v[4]!r}") from None

    def short_legs(self) -> tuple[WireComboLeg, ...]:
        """Combo legs as reqMktData / reqHistoricalData send them (4 fields each)."""
        legs = []
        for i in range(self.int("comboLegs.count")):
            p = f"comboLegs.{i}."
            con_id, ratio = self.int(p + "conId"), self.int(p + "ratio")
            action, exchange = self.take(p + "action"), self.take(p + "exchange")
            legs.append(WireComboLeg(con_id, ratio, action, exchange))
        return tuple(legs)

    def tag_values(self, name: str) -> tuple[tuple[str, str], ...]:
        pairs = []
        for i in range(self.int(f"{name}.count")):
            pairs.append((self.take(f"{name}.{i}.tag"), self.take(f"{name}.{i}.value")))
        return tuple(pairs)

    def delta_neutral(self) -> tuple[int, float, float] | None:
        if not self.bool("deltaNeutralContract.present"):
            return None
        con_id = self.int("deltaNeutralContract.conId")
        delta = self.float("deltaNeutralContract.delta") or 0.0
        return con_id, delta, self.float("deltaNeutralContract.price") or 0.0

    def done(self) -> None:
        extra = len(self.fields) - self.pos
        if extra:
            raise ProtocolError(f"msg {self.fields[0]}: {extra} unexpected trailing field(s)")
