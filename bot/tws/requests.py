"""Client -> server: parse the requests ib_async 2.1's ``Client`` sends (placeOrder's long
layout lives in `bot.tws.place_order`).

`decode_request(fields, version)` turns one message's fields into a frozen dataclass. Each
parser walks a cursor that mirrors the matching ``Client`` method field by field (including its
server-version branches) and insists every field is consumed, so a layout mistake raises
`ProtocolError` instead of misreading data. Unknown message ids give `UnknownRequest`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.tws.framing import SERVER_VERSION, ProtocolError
from bot.tws.place_order import parse_place_order
from bot.tws.wire import Cursor, InMsg, ParsedOrder, WireComboLeg, WireContract

# ---------------------------------------------------------------- request types


@dataclass(frozen=True)
class StartApi:
    clientId: int
    optionalCapabilities: str


@dataclass(frozen=True)
class ReqIds:
    numIds: int


@dataclass(frozen=True)
class NoArgRequest:
    """reqPositions, reqOpenOrders, reqAllOpenOrders, reqManagedAccts, reqCurrentTime,
    reqGlobalCancel, cancelPositions: told apart by `msgId`."""

    msgId: InMsg


@dataclass(frozen=True)
class ReqAutoOpenOrders:
    autoBind: bool


@dataclass(frozen=True)
class ReqCompletedOrders:
    apiOnly: bool


@dataclass(frozen=True)
class ReqAccountUpdates:
    subscribe: bool
    account: str


@dataclass(frozen=True)
class ReqAccountSummary:
    reqId: int
    groupName: str  # "All", or an FA group
    tags: str  # comma-separated AccountSummaryTags, "$LEDGER", "$LEDGER:USD", "$LEDGER:ALL"


@dataclass(frozen=True)
class ReqAccountUpdatesMulti:
    reqId: int
    account: str
    modelCode: str
    ledgerAndNLV: bool


@dataclass(frozen=True)
class ReqExecutions:
    reqId: int
    clientId: int
    acctCode: str
    time: str
    symbol: str
    secType: str
    exchange: str
    side: str


@dataclass(frozen=True)
class ReqContractDetails:
    reqId: int
    contract: WireContract
    includeExpired: bool
    secIdType: str
    secId: str
    issuerId: str = ""


@dataclass(frozen=True)
class ReqSecDefOptParams:
    reqId: int
    underlyingSymbol: str
    futFopExchange: str
    underlyingSecType: str
    underlyingConId: int


@dataclass(frozen=True)
class ReqMktData:
    reqId: int
    contract: WireContract
    comboLegs: tuple[WireComboLeg, ...]
    deltaNeutralContract: tuple[int, float, float] | None
    genericTickList: str
    snapshot: bool
    regulatorySnapshot: bool
    mktDataOptions: str


@dataclass(frozen=True)
class ReqMarketDataType:
    marketDataType: int  # 1 live, 2 frozen, 3 delayed, 4 delayed-frozen


@dataclass(frozen=True)
class ReqHistoricalData:
    reqId: int
    contract: WireContract
    includeExpired: bool
    endDateTime: str
    barSizeSetting: str
    durationStr: str
    useRTH: bool
    whatToShow: str
    formatDate: int
    comboLegs: tuple[WireComboLeg, ...]
    keepUpToDate: bool
    chartOptions: str


@dataclass(frozen=True)
class CancelById:
    """cancelMktData, cancelHistoricalData, cancelAccountSummary, cancelAccountUpdatesMulti:
    told apart by `msgId`."""

    msgId: InMsg
    reqId: int


@dataclass(frozen=True)
class CancelOrder:
    orderId: int
    manualCancelOrderTime: str = ""


@dataclass(frozen=True)
class UnknownRequest:
    """A message this parser does not model; `name` and `reqId` come from `UNSUPPORTED` when
    the message is a known TWS API request (reqId -1 when it carries none)."""

    msgId: int
    fields: tuple[str, ...]

    @property
    def name(self) -> str:
        return UNSUPPORTED.get(self.msgId, (f"message {self.msgId}", None))[0]

    @property
    def reqId(self) -> int:
        pos = UNSUPPORTED.get(self.msgId, ("", None))[1]
        try:
            return int(self.fields[pos]) if pos is not None else -1
        except (IndexError, ValueError):
            return -1


# TWS API requests the parser leaves unmodelled: msgId -> (what, position of its reqId field),
# from ib_async 2.1's Client (a leading version field puts the reqId at 2, none at 1).
UNSUPPORTED: dict[int, tuple[str, int | None]] = {
    10: ("market depth", 2), 11: ("cancel market depth", 2), 12: ("news bulletins", None),
    13: ("cancel news bulletins", None), 18: ("FA", None), 19: ("replace FA", 4),
    21: ("exercise options", 2), 22: ("scanner subscription", 1),
    23: ("cancel scanner subscription", 2), 24: ("scanner parameters", None),
    50: ("real time bars", 2), 51: ("cancel real time bars", 2), 52: ("fundamental data", 2),
    53: ("cancel fundamental data", 2), 54: ("calculate implied volatility", 2),
    55: ("calculate option price", 2), 56: ("cancel calculate implied volatility", 2),
    57: ("cancel calculate option price", 2), 65: ("verify", None), 66: ("verify", None),
    67: ("query display groups", 2), 68: ("subscribe to group events", 2),
    69: ("update display group", 2), 70: ("unsubscribe from group events", 2),
    72: ("verify and auth", None), 73: ("verify and auth", None), 74: ("positions multi", 2),
    75: ("cancel positions multi", 2), 79: ("soft dollar tiers", 1), 80: ("family codes", None),
    81: ("matching symbols", 1), 82: ("market depth exchanges", None),
    83: ("smart components", 1), 84: ("news article", 1), 85: ("news providers", None),
    86: ("historical news", 1), 87: ("head time stamp", 1), 88: ("histogram data", 1),
    89: ("cancel histogram data", 1), 90: ("cancel head time stamp", 1),
    91: ("market rule", None), 92: ("PnL", 1), 93: ("cancel PnL", 1), 94: ("PnL single", 1),
    95: ("cancel PnL single", 1), 96: ("historical ticks", 1), 97: ("tick-by-tick data", 1),
    98: ("cancel tick-by-tick data", 1), 100: ("WSH meta data", 1),
    101: ("cancel WSH meta data", 1), 102: ("WSH event data", 1),
    103: ("cancel WSH event data", 1), 104: ("user info", 1),
}  # fmt: skip


Request = (
    StartApi | ReqIds | NoArgRequest | ReqAutoOpenOrders | ReqCompletedOrders | ReqAccountUpdates
    | ReqAccountSummary | ReqAccountUpdatesMulti | ReqExecutions | ReqContractDetails
    | ReqSecDefOptParams | ReqMktData | ReqMarketDataType | ReqHistoricalData | CancelById
    | CancelOrder | ParsedOrder | UnknownRequest
)


# ---------------------------------------------------------------- parsers


def _versioned(c: Cursor) -> Cursor:
    c.take("version")  # the request's own message version; ignored like TWS does
    return c


def _no_arg(msg_id: InMsg) -> Callable[[Cursor, int], Request]:
    def parse(c: Cursor, v: int) -> Request:
        _versioned(c)
        return NoArgRequest(msg_id)

    return parse


def _cancel(msg_id: InMsg) -> Callable[[Cursor, int], Request]:
    return lambda c, v: CancelById(msg_id, _versioned(c).int("reqId"))


def _req_mkt_data(c: Cursor, v: int) -> Request:
    req_id = _versioned(c).int("reqId")
    contract = c.contract()
    legs = c.short_legs() if contract.secType == "BAG" else ()
    return ReqMktData(
        req_id, contract, legs, c.delta_neutral(), c.take("genericTickList"),
        c.bool("snapshot"), c.bool("regulatorySnapshot"), c.take("mktDataOptions"),
    )  # fmt: skip


def _req_executions(c: Cursor, v: int) -> Request:
    _versioned(c)
    return ReqExecutions(
        c.int("reqId"), c.int("clientId"), c.take("acctCode"), c.take("time"),
        c.take("symbol"), c.take("secType"), c.take("exchange"), c.take("side"),
    )  # fmt: skip


def _req_contract_details(c: Cursor, v: int) -> Request:
    req_id = _versioned(c).int("reqId")
    contract = c.contract()
    expired, id_type, sec_id = c.bool("includeExpired"), c.take("secIdType"), c.take("secId")
    issuer = c.take("issuerId") if v >= 176 else ""
    return ReqContractDetails(req_id, contract, expired, id_type, sec_id, issuer)


def _req_historical_data(c: Cursor, v: int) -> Request:
    req_id, contract = c.int("reqId"), c.contract()
    head = (
        c.bool("includeExpired"), c.take("endDateTime"), c.take("barSizeSetting"),
        c.take("durationStr"), c.bool("useRTH"), c.take("whatToShow"), c.int("formatDate"),
    )  # fmt: skip
    legs = c.short_legs() if contract.secType == "BAG" else ()
    return ReqHistoricalData(
        req_id, contract, *head, legs, c.bool("keepUpToDate"), c.take("chartOptions")
    )


def _req_sec_def_opt_params(c: Cursor, v: int) -> Request:
    return ReqSecDefOptParams(
        c.int("reqId"), c.take("underlyingSymbol"), c.take("futFopExchange"),
        c.take("underlyingSecType"), c.int("underlyingConId"),
    )  # fmt: skip


def _cancel_order(c: Cursor, v: int) -> Request:
    order_id = _versioned(c).int("orderId")
    return CancelOrder(order_id, c.take("manualCancelOrderTime") if v >= 169 else "")


def _start_api(c: Cursor, v: int) -> Request:
    return StartApi(_versioned(c).int("clientId"), c.take("optCapab"))


def _req_account_updates_multi(c: Cursor, v: int) -> Request:
    req_id = _versioned(c).int("reqId")
    account, model = c.take("account"), c.take("modelCode")
    return ReqAccountUpdatesMulti(req_id, account, model, c.bool("ledgerAndNLV"))


_PARSERS: dict[int, Callable[[Cursor, int], Request]] = {
    InMsg.REQ_MKT_DATA: _req_mkt_data,
    InMsg.CANCEL_MKT_DATA: _cancel(InMsg.CANCEL_MKT_DATA),
    InMsg.CANCEL_ORDER: _cancel_order,
    InMsg.REQ_OPEN_ORDERS: _no_arg(InMsg.REQ_OPEN_ORDERS),
    InMsg.REQ_ACCT_DATA: lambda c, v: ReqAccountUpdates(
        _versioned(c).bool("subscribe"), c.take("account")
    ),
    InMsg.REQ_EXECUTIONS: _req_executions,
    InMsg.REQ_IDS: lambda c, v: ReqIds(_versioned(c).int("numIds")),
    InMsg.REQ_CONTRACT_DATA: _req_contract_details,
    InMsg.REQ_AUTO_OPEN_ORDERS: lambda c, v: ReqAutoOpenOrders(_versioned(c).bool("autoBind")),
    InMsg.REQ_ALL_OPEN_ORDERS: _no_arg(InMsg.REQ_ALL_OPEN_ORDERS),
    InMsg.REQ_MANAGED_ACCTS: _no_arg(InMsg.REQ_MANAGED_ACCTS),
    InMsg.REQ_HISTORICAL_DATA: _req_historical_data,
    InMsg.CANCEL_HISTORICAL_DATA: _cancel(InMsg.CANCEL_HISTORICAL_DATA),
    InMsg.REQ_CURRENT_TIME: _no_arg(InMsg.REQ_CURRENT_TIME),
    InMsg.REQ_GLOBAL_CANCEL: _no_arg(InMsg.REQ_GLOBAL_CANCEL),
    InMsg.REQ_MARKET_DATA_TYPE: lambda c, v: ReqMarketDataType(_versioned(c).int("marketDataType")),
    InMsg.REQ_POSITIONS: _no_arg(InMsg.REQ_POSITIONS),
    InMsg.CANCEL_POSITIONS: _no_arg(InMsg.CANCEL_POSITIONS),
    InMsg.START_API: _start_api,
    InMsg.REQ_ACCOUNT_SUMMARY: lambda c, v: ReqAccountSummary(
        _versioned(c).int("reqId"), c.take("groupName"), c.take("tags")
    ),
    InMsg.CANCEL_ACCOUNT_SUMMARY: _cancel(InMsg.CANCEL_ACCOUNT_SUMMARY),
    InMsg.REQ_ACCOUNT_UPDATES_MULTI: _req_account_updates_multi,
    InMsg.CANCEL_ACCOUNT_UPDATES_MULTI: _cancel(InMsg.CANCEL_ACCOUNT_UPDATES_MULTI),
    InMsg.REQ_SEC_DEF_OPT_PARAMS: _req_sec_def_opt_params,
    InMsg.REQ_COMPLETED_ORDERS: lambda c, v: ReqCompletedOrders(c.bool("apiOnly")),
}


def decode_request(fields: list[str], version: int = SERVER_VERSION) -> Request:
    """Parse one client message (its fields) as sent at the negotiated server `version`."""
    try:
        msg_id = int(fields[0])
    except (IndexError, ValueError):
        raise ProtocolError(f"message without a numeric id: {fields[:3]!r}") from None
    if msg_id == InMsg.PLACE_ORDER:
        return parse_place_order(fields, version)
    parser = _PARSERS.get(msg_id)
    if parser is None:
        return UnknownRequest(msg_id, tuple(fields))
    cursor = Cursor(fields)
    request = parser(cursor, version)
    cursor.done()
    return request
