"""Server -> client, session messages: next order id, managed accounts, errors and info,
server time.

Each encoder is one pure function returning framed bytes, named after the ib_async
wrapper/decoder method that consumes it; layouts follow ib_async 2.1's ``Decoder`` at the
negotiated server version (default 178).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.tws.framing import SERVER_VERSION, make_msg


def next_valid_id(order_id: int) -> bytes:
    return make_msg(9, 1, order_id)


def managed_accounts(accounts: Sequence[str]) -> bytes:
    return make_msg(15, 1, ",".join(accounts))


def error_msg(
    req_id: int, code: int, message: str, advanced_order_reject_json: str = "",
    *, version: int = SERVER_VERSION,
) -> bytes:  # fmt: skip
    """Error / info message; reqId -1 for ones tied to no request (2104, 2106, 2158...)."""
    tail = (advanced_order_reject_json,) if version >= 166 else ()
    return make_msg(4, 2, req_id, code, message, *tail)


def current_time(t: datetime | int) -> bytes:
    epoch = int(t.timestamp()) if isinstance(t, datetime) else int(t)
    return make_msg(49, 1, epoch)
