"""IB error and info codes and order status names, mapped to the broker-neutral protocol.

TWS sends everything through one `error` message: order rejections, connectivity news,
market-data problems and plain information. `meaning(code)` names the code, says how the
adapter treats it (`level`: the log level of its `broker.error` event; `category`) and which
`ErrorKind` it is; `error_kind(code, message)` also reads the text where IB uses one code for
several reasons (201 for a margin refusal; 162 for a pacing violation). `order_status(name)`
maps IB's order status names to `OrderStatus`.

Codes and their texts: IB's "API Message Codes" table (TWS API documentation,
interactivebrokers.com/php/apiUsersGuide/apiguide/tables/api_message_codes.htm, and the
"Message Codes" page of the current TWS API docs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.broker.base import ErrorKind, OrderStatus

INFO, WARNING, ERROR = "info", "warning", "error"
K = ErrorKind


@dataclass(frozen=True)
class Meaning:
    code: int
    name: str
    level: str
    category: str  # "order", "connectivity", "market_data", "contract", "session", "info", "other"
    kind: ErrorKind


# THE table: IB code -> (name, log level, category, kind). IB's text is quoted where it is short.
_TABLE: dict[int, tuple[str, str, str, ErrorKind]] = {
    # orders
    # "Max rate of messages per second has been exceeded."
    100: ("max_message_rate_exceeded", ERROR, "session", K.PACING),
    103: ("duplicate_order_id", ERROR, "order", K.DUPLICATE),  # "Duplicate order ID."
    # "Can't modify a filled order."
    104: ("cannot_modify_filled_order", ERROR, "order", K.CANNOT_MODIFY),
    # "Order being modified does not match original order."
    105: ("modify_does_not_match", WARNING, "order", K.CANNOT_MODIFY),
    # "The price does not conform to the minimum price variation for this contract."
    110: ("price_not_on_tick", ERROR, "order", K.INVALID_PRICE),
    135: ("order_not_found", ERROR, "order", K.NOT_FOUND),  # "Can't find order with ID ="
    # "Cancel attempted when order is not in a cancellable state."
    161: ("cancel_not_possible", ERROR, "order", K.CANCEL_REFUSED),
    # "Order rejected - Reason:" (margin: see error_kind)
    201: ("order_rejected", ERROR, "order", K.REJECTED),
    202: ("order_cancelled", INFO, "order", K.OTHER),  # "Order cancelled - Reason:"
    # "The security is not available or allowed for this account."
    203: ("security_not_allowed", ERROR, "order", K.REJECTED),
    # "Order message:" (a warning, the order stands)
    399: ("order_warning", WARNING, "order", K.OTHER),
    # "OrderId that needs to be cancelled is not found."
    10147: ("cancel_unknown_order", ERROR, "order", K.NOT_FOUND),
    # "OrderId that needs to be cancelled can not be cancelled, state:"
    10148: ("cancel_not_possible", ERROR, "order", K.CANCEL_REFUSED),
    # contracts
    # "No security definition has been found for the request."
    200: ("no_security_definition", ERROR, "contract", K.NO_SECURITY_DEFINITION),
    # market data
    # "Historical market data Service error message:" (pacing: see error_kind)
    162: ("historical_data_error", WARNING, "market_data", K.MARKET_DATA),
    # "Requested market data is not subscribed."
    354: ("market_data_not_subscribed", WARNING, "market_data", K.MARKET_DATA),
    # "Invalid Real-time Query:" (pacing violation)
    420: ("invalid_realtime_query", WARNING, "market_data", K.PACING),
    10089: ("market_data_needs_subscription", WARNING, "market_data", K.MARKET_DATA),
    10090: ("market_data_partly_subscribed", WARNING, "market_data", K.MARKET_DATA),
    10167: ("delayed_market_data_shown", WARNING, "market_data", K.MARKET_DATA),
    10168: ("market_data_not_subscribed_delayed_off", WARNING, "market_data", K.MARKET_DATA),
    10197: ("competing_live_session", WARNING, "market_data", K.MARKET_DATA),
    # connectivity / session
    # "Unable to connect as the client id is already in use."
    326: ("client_id_in_use", ERROR, "session", K.DISCONNECTED),
    502: ("cannot_connect", ERROR, "session", K.DISCONNECTED),  # "Couldn't connect to TWS."
    504: ("not_connected", ERROR, "session", K.DISCONNECTED),  # "Not connected"
    # "Connectivity between IB and TWS has been lost."
    1100: ("connectivity_lost", ERROR, "connectivity", K.DISCONNECTED),
    1101: ("connectivity_restored_data_lost", WARNING, "connectivity", K.OTHER),
    1102: ("connectivity_restored_data_maintained", INFO, "connectivity", K.OTHER),
    1300: ("socket_port_reset", WARNING, "connectivity", K.DISCONNECTED),
    2103: ("market_data_farm_broken", WARNING, "info", K.MARKET_DATA),
    2104: ("market_data_farm_ok", INFO, "info", K.OTHER),
    2105: ("historical_data_farm_broken", WARNING, "info", K.MARKET_DATA),
    2106: ("historical_data_farm_ok", INFO, "info", K.OTHER),
    2107: ("historical_data_farm_inactive", INFO, "info", K.OTHER),
    2108: ("market_data_farm_inactive", INFO, "info", K.OTHER),
    2109: ("outside_rth_ignored", WARNING, "order", K.OTHER),
    2119: ("market_data_farm_connecting", INFO, "info", K.OTHER),
    2157: ("sec_def_farm_broken", WARNING, "info", K.OTHER),
    2158: ("sec_def_farm_ok", INFO, "info", K.OTHER),
}

# IB order status names (TWS API "Order Status": orderStatus / openOrder) -> OrderStatus.
# PendingCancel is still live at IB until Cancelled arrives; Inactive is IB's "rejected or
# cancelled by the system" (the adapter uses it for a refused new order).
_STATUS: dict[str, OrderStatus] = {
    "ApiPending": OrderStatus.PENDING,
    "PendingSubmit": OrderStatus.PENDING,
    "PreSubmitted": OrderStatus.WORKING,
    "Submitted": OrderStatus.WORKING,
    "PendingCancel": OrderStatus.WORKING,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELLED,
    "ApiCancelled": OrderStatus.CANCELLED,
    "Inactive": OrderStatus.REJECTED,
}
# Names IBBroker takes status from (others, e.g. PendingCancel, leave the order as it was).
WORKING = ("PendingSubmit", "PreSubmitted", "Submitted")
DONE = ("Filled", "Cancelled", "ApiCancelled", "Inactive")

# Market data requests IB refused (the line carries no data); 10167 and 10090 still do.
LINE_REFUSED = frozenset({354, 10089, 10168})
# Codes that end a live order when they arrive for it (no modification pending).
ORDER_ENDING = frozenset({201, 202, 203})
# Codes that say nothing is wrong with an order (informational or a warning only).
ORDER_HARMLESS = frozenset({105, 399, 2109, 10167})


def meaning(code: int) -> Meaning:
    if code in _TABLE:
        return Meaning(code, *_TABLE[code])
    if 2100 <= code < 2200:
        return Meaning(code, "info", INFO, "info", K.OTHER)
    return Meaning(code, "error", ERROR, "other", K.OTHER)


def error_kind(code: int, message: str = "") -> ErrorKind:
    """The kind of an IB error: by code, refined by IB's text where one code covers several."""
    text = message.upper()
    if code == 201 and ("MARGIN" in text or "EQUITY WITH LOAN" in text):
        # "... YOUR EQUITY WITH LOAN VALUE ... MUST EXCEED THE INITIAL MARGIN"
        return K.REJECTED_MARGIN
    if code == 162 and "PACING" in text:
        # "Historical Market Data Service error message:Historical data request pacing violation"
        return K.PACING
    return meaning(code).kind


def order_status(name: str) -> OrderStatus:
    """`OrderStatus` of an IB status name; ValueError for a name IB does not use."""
    try:
        return _STATUS[name]
    except KeyError:
        raise ValueError(f"not an IB order status: {name!r}") from None


# The IB name TWS uses for each OrderStatus (what an emulator writes on the wire).
IB_NAME: dict[OrderStatus, str] = {
    OrderStatus.PENDING: "PendingSubmit",
    OrderStatus.WORKING: "Submitted",
    OrderStatus.FILLED: "Filled",
    OrderStatus.CANCELLED: "Cancelled",
    OrderStatus.REJECTED: "Inactive",
}


def ib_status_name(status: OrderStatus | str) -> str:
    """IB's status name for an OrderStatus (or a legacy status string)."""
    return IB_NAME[OrderStatus.of(status)]


def is_order_failure(code: int) -> bool:
    """An error for an order id that means the request (place/modify/cancel) failed."""
    m = meaning(code)
    return code not in ORDER_HARMLESS and m.level != INFO and m.category != "info"


class _Echoes(logging.Filter):
    """Drops ib_async's own lines for order cancellations (code 202), which it logs as errors;
    IBBroker logs every code itself, with its meaning (`broker.error` / `broker.info`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("Error 202,") or
                    (msg.startswith("Canceled order:") and "Error 202," in msg))


def quiet_ib_async() -> None:
    """ib_async's loggers at WARNING (unless set), without its echoes of code 202."""
    ib_log = logging.getLogger("ib_async")
    if ib_log.level == logging.NOTSET:
        ib_log.setLevel(logging.WARNING)  # its INFO lines would flood our JSON log
    wrapper = logging.getLogger("ib_async.wrapper")
    if not any(isinstance(f, _Echoes) for f in wrapper.filters):
        wrapper.addFilter(_Echoes())
