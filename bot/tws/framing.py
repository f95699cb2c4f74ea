"""TWS API wire layer: framing, handshake and field formatting.

The TWS socket protocol as ib_async 2.1 expects it at server version 178 (see
../shared/TWS-PROTOCOL.md). The client opens with ``b"API\\0"`` and one framed version string
(``"v157..178"``, optionally followed by connect options such as ``" +PACEAPI"``). Every later
message is a 4-byte big-endian length followed by NUL-terminated text fields. The server's
first message is exactly two fields: ``<serverVersion>`` and ``<connection time>``.

Field rules (the same as ib_async's ``Client.send``): booleans are "1"/"0", the "unset" int
(2**31-1) and double (sys.float_info.max) are "", positive infinity is "Infinite".

No ib_async import anywhere in bot.tws: the emulator must not share code with the client it
tests.
"""

from __future__ import annotations

import asyncio
import math
import struct
import sys
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

SERVER_VERSION = 178  # pinned: ib_async 2.1's max; above 200 IB switches to protobuf
MIN_SERVER_VERSION = 157  # the lowest version ib_async 2.1 accepts
MAX_MSG_LEN = 0xFFFFFF  # IB's limit on one message body (16 MiB)
API_SIGN = b"API\0"

UNSET_INTEGER = 2**31 - 1
UNSET_DOUBLE = sys.float_info.max
# How TWS (Java) prints an unset double inside string-typed fields (e.g. order-state margins).
UNSET_DOUBLE_STR = "1.7976931348623157E308"
INFINITE = "Infinite"


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
