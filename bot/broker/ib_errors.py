"""IB error and info codes, mapped to what they mean for condorbot.

TWS sends everything through one `error` message: order rejections, connectivity news,
market-data problems and plain information. `meaning(code)` names the code and says how the
adapter treats it; `level` is the log level of the `broker.error` event it produces.
"""

from __future__ import annotations

from dataclasses import dataclass

INFO, WARNING, ERROR = "info", "warning", "error"


@dataclass(frozen=True)
class Meaning:
    code: int
    name: str
    level: str
    kind: str  # "order", "connectivity", "market_data", "contract", "session", "info", "other"


_TABLE: dict[int, tuple[str, str, str]] = {
    # orders
    103: ("duplicate_order_id", ERROR, "order"),
    104: ("cannot_modify_filled_order", ERROR, "order"),
    105: ("modify_does_not_match", WARNING, "order"),
    110: ("price_not_on_tick", ERROR, "order"),
    135: ("order_not_found", ERROR, "order"),
    161: ("cancel_not_possible", ERROR, "order"),
    201: ("order_rejected", ERROR, "order"),
    202: ("order_cancelled", INFO, "order"),
    203: ("security_not_allowed", ERROR, "order"),
    399: ("order_warning", WARNING, "order"),
    10147: ("cancel_unknown_order", ERROR, "order"),
    10148: ("cancel_not_possible", ERROR, "order"),
    # contracts
    200: ("no_security_definition", ERROR, "contract"),
    # market data
    162: ("historical_data_error", WARNING, "market_data"),
    354: ("market_data_not_subscribed", WARNING, "market_data"),
    10089: ("market_data_needs_subscription", WARNING, "market_data"),
    10090: ("market_data_partly_subscribed", WARNING, "market_data"),
    10167: ("delayed_market_data_shown", WARNING, "market_data"),
    10168: ("market_data_not_subscribed_delayed_off", WARNING, "market_data"),
    10197: ("competing_live_session", WARNING, "market_data"),
    # connectivity / session
    326: ("client_id_in_use", ERROR, "session"),
    502: ("cannot_connect", ERROR, "session"),
    504: ("not_connected", ERROR, "session"),
    1100: ("connectivity_lost", ERROR, "connectivity"),
    1101: ("connectivity_restored_data_lost", WARNING, "connectivity"),
    1102: ("connectivity_restored_data_maintained", INFO, "connectivity"),
    1300: ("socket_port_reset", WARNING, "connectivity"),
    2103: ("market_data_farm_broken", WARNING, "info"),
    2104: ("market_data_farm_ok", INFO, "info"),
    2105: ("historical_data_farm_broken", WARNING, "info"),
    2106: ("historical_data_farm_ok", INFO, "info"),
    2107: ("historical_data_farm_inactive", INFO, "info"),
    2108: ("market_data_farm_inactive", INFO, "info"),
    2109: ("outside_rth_ignored", WARNING, "order"),
    2119: ("market_data_farm_connecting", INFO, "info"),
    2157: ("sec_def_farm_broken", WARNING, "info"),
    2158: ("sec_def_farm_ok", INFO, "info"),
}

# Market data requests IB refused (the line carries no data); 10167 and 10090 still do.
LINE_REFUSED = frozenset({354, 10089, 10168})
# Codes that end a live order when they arrive for it (no modification pending).
ORDER_ENDING = frozenset({201, 202, 203})
# Codes that say nothing is wrong with an order (informational or a warning only).
ORDER_HARMLESS = frozenset({105, 399, 2109, 10167})


def meaning(code: int) -> Meaning:
    if code in _TABLE:
        name, level, kind = _TABLE[code]
        return Meaning(code, name, level, kind)
    if 2100 <= code < 2200:
        return Meaning(code, "info", INFO, "info")
    return Meaning(code, "error", ERROR, "other")


def is_order_failure(code: int) -> bool:
    """An error for an order id that means the request (place/modify/cancel) failed."""
    m = meaning(code)
    return code not in ORDER_HARMLESS and m.level != INFO and m.kind != "info"
