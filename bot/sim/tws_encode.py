"""Server -> client: build the messages the emulator sends, as framed bytes.

One pure function per message, named after the ib_async wrapper/decoder method that consumes
it. Layouts follow ib_async 2.1's ``Decoder`` at the negotiated server version (default 178);
functions whose layout depends on the version take ``version=``. Counts such as numbers of
legs, strikes and bars are written by the encoder, never by the caller.

Values: None means "not set" (written as "" or, inside string-typed margin fields, as TWS's
unset double); see `tws_codec.fmt_field` for the other rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from bot.sim.tws_codec import (
    INFINITE,
    SERVER_VERSION,
    UNSET_DOUBLE_STR,
    ParsedOrder,
    WireContract,
    fmt_field,
    make_msg,
)
from bot.sim.tws_decode import PO_DELTA_NEUTRAL, PO_PEG_BENCH, PO_SCALE, is_scale_increment


def _contract11(c: WireContract) -> tuple[object, ...]:
    """The contract without primaryExchange (openOrder, execDetails, position)."""
    return (
        c.conId, c.symbol, c.secType, c.lastTradeDateOrContractMonth, c.strike, c.right,
        c.multiplier, c.exchange, c.currency, c.localSymbol, c.tradingClass,
    )  # fmt: skip


def _ib_time(t: datetime) -> str:
    """Timezone-aware datetime -> ``YYYYmmdd HH:MM:SS UTC`` (ib_async parses the zone)."""
    if t.tzinfo is None:
        raise ValueError("IB timestamps need a time zone")
    return f"{t.astimezone(UTC):%Y%m%d %H:%M:%S} UTC"


# ---------------------------------------------------------------- session


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


# ---------------------------------------------------------------- contracts and chains


@dataclass(frozen=True)
class ContractDetailsSpec:
    contract: WireContract
    marketName: str = ""
    minTick: float = 0.01
    orderTypes: str = "LMT"
    validExchanges: str = ""
    priceMagnifier: int = 1
    underConId: int = 0
    longName: str = ""
    contractMonth: str = ""
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    timeZoneId: str = "US/Central"
    tradingHours: str = ""
    liquidHours: str = ""
    evRule: str = ""
    evMultiplier: int = 0
    secIdList: tuple[tuple[str, str], ...] = ()
    aggGroup: int = 0
    underSymbol: str = ""
    underSecType: str = ""
    marketRuleIds: str = ""
    realExpirationDate: str = ""
    lastTradeTime: str = ""
    stockType: str = ""
    minSize: float = 1.0
    sizeIncrement: float = 1.0
    suggestedSizeIncrement: float = 1.0


def contract_details(
    req_id: int, d: ContractDetailsSpec, *, version: int = SERVER_VERSION
) -> bytes:
    c = d.contract
    last = c.lastTradeDateOrContractMonth
    last_times = f"{last} {d.lastTradeTime}" if last and d.lastTradeTime else last
    head: tuple[object, ...] = (10,) if version >= 164 else (10, 8)
    sec_ids = [x for pair in d.secIdList for x in pair]
    long_name = d.longName.encode("unicode-escape").decode("ascii")  # ib_async un-escapes it
    fields = [
        *head, req_id, c.symbol, c.secType, last_times, c.strike, c.right, c.exchange,
        c.currency, c.localSymbol, d.marketName, c.tradingClass, c.conId, d.minTick,
        *(() if version >= 164 else (1,)),  # obsolete mdSizeMultiplier
        c.multiplier, d.orderTypes, d.validExchanges, d.priceMagnifier, d.underConId,
        long_name, c.primaryExchange, d.contractMonth, d.industry, d.category, d.subcategory,
        d.timeZoneId, d.tradingHours, d.liquidHours, d.evRule, d.evMultiplier,
        len(d.secIdList), *sec_ids,
        d.aggGroup, d.underSymbol, d.underSecType, d.marketRuleIds, d.realExpirationDate,
        d.stockType,
    ]  # fmt: skip
    if version == 163:
        fields.append(d.suggestedSizeIncrement)
    if version >= 164:
        fields += [d.minSize, d.sizeIncrement, d.suggestedSizeIncrement]
    return make_msg(*fields)


def contract_details_end(req_id: int) -> bytes:
    return make_msg(52, 1, req_id)


def security_definition_option_parameter(
    req_id: int, exchange: str, underlying_con_id: int, trading_class: str, multiplier: str,
    expirations: Iterable[str], strikes: Iterable[float],
) -> bytes:  # fmt: skip
    exps, ks = list(expirations), [float(k) for k in strikes]
    return make_msg(
        75, req_id, exchange, underlying_con_id, trading_class, multiplier,
        len(exps), *exps, len(ks), *ks,
    )  # fmt: skip


def security_definition_option_parameter_end(req_id: int) -> bytes:
    return make_msg(76, req_id)


# ---------------------------------------------------------------- market data


def tick_price(
    req_id: int, tick_type: int, price: float, size: float = 0.0, attr_mask: int = 0
) -> bytes:
    """Price tick (1 bid, 2 ask, 4 last, 6 high, 7 low, 9 close, 14 open; +65 delayed).
    ib_async drops a tick whose price is empty and treats a bid/ask with size 0 as no quote."""
    return make_msg(1, 6, req_id, tick_type, price, size, attr_mask)


def tick_size(req_id: int, tick_type: int, size: float) -> bytes:
    """Size tick (0 bid, 3 ask, 5 last, 8 volume, 22 open interest...)."""
    return make_msg(2, 6, req_id, tick_type, size)


def _avail(x: float | None, missing: float) -> float:
    return missing if x is None or math.isnan(x) else float(x)


def tick_option_computation(
    req_id: int, tick_type: int, *, implied_vol: float | None, delta: float | None,
    opt_price: float | None = None, pv_dividend: float | None = 0.0,
    gamma: float | None = None, vega: float | None = None, theta: float | None = None,
    und_price: float | None = None, tick_attrib: int = 1,
) -> bytes:  # fmt: skip
    """Greeks tick (10 bid, 11 ask, 12 last, 13 model; +70 delayed). None/NaN -> IB's
    "not available" (-1 for prices and vol, -2 for greeks); every field must be numeric.
    tick_attrib: 0 return-based, 1 price-based."""
    return make_msg(
        21, req_id, tick_type, tick_attrib, _avail(implied_vol, -1), _avail(delta, -2),
        _avail(opt_price, -1), _avail(pv_dividend, -1), _avail(gamma, -2), _avail(vega, -2),
        _avail(theta, -2), _avail(und_price, -1),
    )  # fmt: skip


def tick_snapshot_end(req_id: int) -> bytes:
    return make_msg(57, 1, req_id)


def market_data_type(req_id: int, data_type: int) -> bytes:
    """1 live, 2 frozen, 3 delayed, 4 delayed-frozen; sent before a subscription's ticks."""
    return make_msg(58, 1, req_id, data_type)


@dataclass(frozen=True)
class HistBar:
    date: date | datetime | str  # date -> YYYYMMDD (daily bars), datetime -> epoch seconds
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0
    wap: float = 0.0
    barCount: int = 0


def _bar_date(d: date | datetime | str) -> str:
    if isinstance(d, datetime):
        return str(int(d.timestamp()))
    return f"{d:%Y%m%d}" if isinstance(d, date) else d


def historical_data(req_id: int, bars: Sequence[HistBar], start: str = "", end: str = "") -> bytes:
    """All bars in one message, no version field; at v178 there is no separate end message
    (ib_async ends the request after the bars). start/end are echoed, ib_async ignores them."""
    fields: list[object] = [17, req_id, start, end, len(bars)]
    for b in bars:
        fields += [_bar_date(b.date), b.open, b.high, b.low, b.close, b.volume, b.wap, b.barCount]
    return make_msg(*fields)


# ---------------------------------------------------------------- orders and executions


def order_status(
    order_id: int, status: str, filled: float, remaining: float, avg_fill_price: float,
    perm_id: int, parent_id: int, last_fill_price: float, client_id: int,
    why_held: str = "", mkt_cap_price: float = 0.0,
) -> bytes:  # fmt: skip
    """Status: PendingSubmit, PreSubmitted, Submitted, Filled, Cancelled, Inactive..."""
    return make_msg(
        3, order_id, status, filled, remaining, avg_fill_price, perm_id, parent_id,
        last_fill_price, client_id, why_held, mkt_cap_price,
    )  # fmt: skip


@dataclass(frozen=True)
class OrderStateSpec:
    """The openOrder order-state block. A what-if answer carries the margin figures (ib_async
    resolves whatIfOrder only once initMarginChange is set); None -> TWS's unset double."""

    status: str
    initMarginBefore: float | None = None
    maintMarginBefore: float | None = None
    equityWithLoanBefore: float | None = None
    initMarginChange: float | None = None
    maintMarginChange: float | None = None
    equityWithLoanChange: float | None = None
    initMarginAfter: float | None = None
    maintMarginAfter: float | None = None
    equityWithLoanAfter: float | None = None
    commission: float | None = None
    minCommission: float | None = None
    maxCommission: float | None = None
    commissionCurrency: str = ""
    warningText: str = ""


_MARGINS = """initMarginBefore maintMarginBefore equityWithLoanBefore initMarginChange
    maintMarginChange equityWithLoanChange initMarginAfter maintMarginAfter equityWithLoanAfter"""
_OO_MID = """modelCode goodTillDate rule80A percentOffset settlingFirm shortSaleSlot
    designatedLocation exemptCode auctionStrategy startingPrice stockRefPrice delta
    stockRangeLower stockRangeUpper displaySize blockOrder sweepToFill allOrNone minQty ocaType
    eTradeOnly firmQuoteOnly nbboPriceCap parentId triggerMethod volatility volatilityType
    deltaNeutralOrderType deltaNeutralAuxPrice"""
_OO_TAIL = """adjustedOrderType triggerPrice trailStopPrice lmtPriceOffset adjustedStopPrice
    adjustedStopLimitPrice adjustedTrailingAmount adjustableTrailingUnit softDollarTier.name
    softDollarTier.val softDollarTier.displayName cashQty dontUseAutoPriceForHedge
    isOmsContainer discretionaryUpToLimitPrice usePriceMgmtAlgo"""
_OO_TYPED = """action totalQuantity orderType lmtPrice auxPrice tif ocaGroup account openClose
    origin orderRef transmit parentId outsideRth goodAfterTime goodTillDate whatIf algoStrategy"""


def open_order(
    order: ParsedOrder, state: OrderStateSpec, *, perm_id: int, client_id: int,
    version: int = SERVER_VERSION,
) -> bytes:  # fmt: skip
    """openOrder (no version field), in ib_async ``Decoder.openOrder`` order. Fields the
    order's typed attributes do not cover are echoed from `order.raw` (as the client sent
    them), so a placed order comes back as placed."""
    r = dict(order.raw)
    r.update({n: fmt_field(getattr(order, n)) for n in _OO_TYPED.split()})

    def g(names: str) -> list[object]:
        # Python's float() reads "Infinity", not the client's "Infinite"
        return [("Infinity" if r.get(n) == INFINITE else r.get(n, "")) for n in names.split()]

    legs = order.comboLegs
    descrip = ",".join(f"{x.conId}|{x.ratio if x.action == 'BUY' else -x.ratio}" for x in legs)
    f: list[object] = [5, order.orderId, *_contract11(order.contract)]
    f += g("action totalQuantity orderType lmtPrice auxPrice tif ocaGroup account openClose")
    f += [*g("origin orderRef"), client_id, perm_id]
    f += g("outsideRth hidden discretionaryAmt goodAfterTime _sharesAllocation faGroup faMethod")
    f += g("faPercentage faProfile" if version < 177 else "faPercentage") + g(_OO_MID)
    if r.get("deltaNeutralOrderType"):
        f += g(PO_DELTA_NEUTRAL)
    f += g("continuousUpdate referencePriceType trailStopPrice trailingPercent basisPoints")
    f += [*g("basisPointsType"), descrip, len(legs)]
    for x in legs:
        f += [x.conId, x.ratio, x.action, x.exchange, x.openClose, x.shortSaleSlot]
        f += [x.designatedLocation, x.exemptCode]
    f += [len(order.orderComboLegPrices), *order.orderComboLegPrices]
    routing = order.smartComboRoutingParams
    f += [len(routing), *(v for kv in routing for v in kv)]
    f += g("scaleInitLevelSize scaleSubsLevelSize scalePriceIncrement")
    if is_scale_increment(r.get("scalePriceIncrement", "")):
        f += g(PO_SCALE)
    f += g("hedgeType hedgeParam" if r.get("hedgeType") else "hedgeType")
    f += g("optOutSmartRouting clearingAccount clearingIntent notHeld")
    dnc = order.deltaNeutralContract
    f += [True, *dnc] if dnc else [False]
    f.append(order.algoStrategy)
    if order.algoStrategy:
        f += [len(order.algoParams), *(v for kv in order.algoParams for v in kv)]
    f += [*g("solicited whatIf"), state.status]
    for name in _MARGINS.split():
        value = getattr(state, name)
        f.append(UNSET_DOUBLE_STR if value is None else value)
    f += [state.commission, state.minCommission, state.maxCommission]
    f += [state.commissionCurrency, state.warningText, *g("randomizeSize randomizePrice")]
    if order.orderType in ("PEG BENCH", "PEGBENCH"):
        f += g(PO_PEG_BENCH)
    f += [len(order.conditions), *(v for cond in order.conditions for v in cond)]
    if order.conditions:
        f += g("conditionsIgnoreRth conditionsCancelOrder")
    f += g(_OO_TAIL)
    for min_version, names in _OO_VERSIONED:
        if version >= min_version:
            f += g(names)
    return make_msg(*f)


_OO_VERSIONED = (
    (159, "duration"),
    (160, "postToAts"),
    (162, "autoCancelParent"),
    (170, "minTradeQty minCompeteSize competeAgainstBestOffset midOffsetAtWhole midOffsetAtHalf"),
)


def open_order_end() -> bytes:
    return make_msg(53, 1)


def completed_orders_end() -> bytes:
    return make_msg(102)


@dataclass(frozen=True)
class ExecutionSpec:
    contract: WireContract
    execId: str
    time: datetime  # must carry a time zone
    acctNumber: str
    side: str  # "BOT" / "SLD"
    shares: float
    price: float
    permId: int
    clientId: int
    orderId: int
    exchange: str = "SMART"
    cumQty: float = 0.0
    avgPrice: float = 0.0
    orderRef: str = ""
    liquidation: int = 0
    evRule: str = ""
    evMultiplier: float | None = None
    modelCode: str = ""
    lastLiquidity: int = 0
    pendingPriceRevision: bool = False


def exec_details(req_id: int, e: ExecutionSpec, *, version: int = SERVER_VERSION) -> bytes:
    """One execution; req_id -1 for a live fill, the reqExecutions id when answering one.
    A combo fill is reported per leg (leg contract) plus one for the BAG itself."""
    fields: list[object] = [
        11, req_id, e.orderId, *_contract11(e.contract), e.execId, _ib_time(e.time),
        e.acctNumber, e.exchange, e.side, e.shares, e.price, e.permId, e.clientId,
        e.liquidation, e.cumQty, e.avgPrice, e.orderRef, e.evRule, e.evMultiplier,
        e.modelCode, e.lastLiquidity,
    ]  # fmt: skip
    if version >= 178:
        fields.append(e.pendingPriceRevision)
    return make_msg(*fields)


def exec_details_end(req_id: int) -> bytes:
    return make_msg(55, 1, req_id)


def commission_report(
    exec_id: str, commission: float, currency: str = "USD", realized_pnl: float | None = None,
    yield_: float | None = None, yield_redemption_date: int = 0,
) -> bytes:  # fmt: skip
    """Follows the execDetails with the same execId. None -> TWS's unset double (ib_async
    turns an unset realizedPNL/yield into 0.0)."""
    return make_msg(
        59, 1, exec_id, commission, currency,
        UNSET_DOUBLE_STR if realized_pnl is None else realized_pnl,
        UNSET_DOUBLE_STR if yield_ is None else yield_, yield_redemption_date or "",
    )  # fmt: skip


# ---------------------------------------------------------------- portfolio and account


def position(account: str, contract: WireContract, pos: float, avg_cost: float) -> bytes:
    return make_msg(61, 3, account, *_contract11(contract), pos, avg_cost)


def position_end() -> bytes:
    return make_msg(62, 1)


def update_account_value(key: str, value: str, currency: str, account: str) -> bytes:
    """e.g. NetLiquidation, ExcessLiquidity, InitMarginReq, MaintMarginReq, BuyingPower."""
    return make_msg(6, 2, key, value, currency, account)


def update_portfolio(
    contract: WireContract, pos: float, market_price: float, market_value: float,
    average_cost: float, unrealized_pnl: float, realized_pnl: float, account: str,
) -> bytes:  # fmt: skip
    """portfolioValue: here the contract carries primaryExchange but no exchange."""
    c = contract
    return make_msg(
        7, 8, c.conId, c.symbol, c.secType, c.lastTradeDateOrContractMonth, c.strike, c.right,
        c.multiplier, c.primaryExchange, c.currency, c.localSymbol, c.tradingClass,
        pos, market_price, market_value, average_cost, unrealized_pnl, realized_pnl, account,
    )  # fmt: skip


def update_account_time(t: datetime | str) -> bytes:
    """Account update time, ``HH:MM``."""
    return make_msg(8, 1, f"{t:%H:%M}" if isinstance(t, datetime) else t)


def account_download_end(account: str) -> bytes:
    return make_msg(54, 1, account)


def account_update_multi(
    req_id: int, account: str, model_code: str, key: str, value: str, currency: str
) -> bytes:
    return make_msg(73, 1, req_id, account, model_code, key, value, currency)


def account_update_multi_end(req_id: int) -> bytes:
    return make_msg(74, 1, req_id)
