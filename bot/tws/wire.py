"""TWS API wire types: message ids, contracts and combo legs as the wire carries them, the
parsed placeOrder, and the field cursor the request parsers walk."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from dataclasses import fields as dc_fields
from datetime import UTC, datetime
from enum import IntEnum

from bot.tws.framing import INFINITE, ProtocolError


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
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_SEC_DEF_OPT_PARAMS = 78
    REQ_COMPLETED_ORDERS = 99



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
    Built by `bot.tws.place_order.parse_place_order`; `encode_orders.open_order` echoes it
    back.
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


DeltaNeutral = tuple[int, float, float]  # (conId, delta, price); named here: Cursor.int shadows int


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

    def delta_neutral(self) -> DeltaNeutral | None:
        if not self.bool("deltaNeutralContract.present"):
            return None
        con_id = self.int("deltaNeutralContract.conId")
        delta = self.float("deltaNeutralContract.delta") or 0.0
        return con_id, delta, self.float("deltaNeutralContract.price") or 0.0

    def done(self) -> None:
        extra = len(self.fields) - self.pos
        if extra:
            raise ProtocolError(f"msg {self.fields[0]}: {extra} unexpected trailing field(s)")


def contract11(c: WireContract) -> tuple[object, ...]:
    """The contract without primaryExchange (openOrder, execDetails, position)."""
    return (
        c.conId, c.symbol, c.secType, c.lastTradeDateOrContractMonth, c.strike, c.right,
        c.multiplier, c.exchange, c.currency, c.localSymbol, c.tradingClass,
    )  # fmt: skip


def ib_time(t: datetime) -> str:
    """Timezone-aware datetime -> ``YYYYmmdd HH:MM:SS UTC`` (ib_async parses the zone)."""
    if t.tzinfo is None:
        raise ValueError("IB timestamps need a time zone")
    return f"{t.astimezone(UTC):%Y%m%d %H:%M:%S} UTC"
