"""Server -> client, orders and executions: openOrder and completedOrder (echoing a placed
order field by field), orderStatus, the list ends, execDetails and commissionReport.

Values: None means "not set" (written as "" or, inside string-typed margin fields, as TWS's
unset double); see `bot.tws.framing.fmt_field` for the other rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.tws.framing import INFINITE, SERVER_VERSION, UNSET_DOUBLE_STR, fmt_field, make_msg
from bot.tws.place_order import PO_DELTA_NEUTRAL, PO_PEG_BENCH, PO_SCALE, is_scale_increment
from bot.tws.wire import ParsedOrder, WireContract, contract11, ib_time


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
    r, g = _echo(order)
    f: list[object] = [5, order.orderId, *contract11(order.contract)]
    f += g("action totalQuantity orderType lmtPrice auxPrice tif ocaGroup account openClose")
    f += [*g("origin orderRef"), client_id, perm_id]
    f += g("outsideRth hidden discretionaryAmt goodAfterTime _sharesAllocation faGroup faMethod")
    f += g("faPercentage faProfile" if version < 177 else "faPercentage") + g(_OO_MID)
    if r.get("deltaNeutralOrderType"):
        f += g(PO_DELTA_NEUTRAL)
    f += g("continuousUpdate referencePriceType trailStopPrice trailingPercent basisPoints")
    f += [*g("basisPointsType"), *_legs_block(order, r, g)]
    f += g("optOutSmartRouting clearingAccount clearingIntent notHeld")
    f += _algo_block(order)
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


def _echo(order: ParsedOrder) -> tuple[dict[str, str], Callable[[str], list[object]]]:
    """The order's fields as sent (typed attributes win) and a getter for runs of them."""
    r = dict(order.raw)
    r.update({n: fmt_field(getattr(order, n)) for n in _OO_TYPED.split()})

    def g(names: str) -> list[object]:
        # Python's float() reads "Infinity", not the client's "Infinite"
        return [("Infinity" if r.get(n) == INFINITE else r.get(n, "")) for n in names.split()]

    return r, g


def _legs_block(
    order: ParsedOrder, r: dict[str, str], g: Callable[[str], list[object]]
) -> list[object]:
    """comboLegsDescrip, the legs, leg prices, routing params, scale and hedge fields: the
    same run in openOrder and completedOrder."""
    legs = order.comboLegs
    descrip = ",".join(f"{x.conId}|{x.ratio if x.action == 'BUY' else -x.ratio}" for x in legs)
    f: list[object] = [descrip, len(legs)]
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
    return f


def _algo_block(order: ParsedOrder) -> list[object]:
    dnc = order.deltaNeutralContract
    f: list[object] = [True, *dnc] if dnc else [False]
    f.append(order.algoStrategy)
    if order.algoStrategy:
        f += [len(order.algoParams), *(v for kv in order.algoParams for v in kv)]
    return f


_OO_VERSIONED = (
    (159, "duration"),
    (160, "postToAts"),
    (162, "autoCancelParent"),
    (170, "minTradeQty minCompeteSize competeAgainstBestOffset midOffsetAtWhole midOffsetAtHalf"),
)


def open_order_end() -> bytes:
    return make_msg(53, 1)


_CO_MID = """modelCode goodTillDate rule80A percentOffset settlingFirm shortSaleSlot
    designatedLocation exemptCode startingPrice stockRefPrice delta stockRangeLower
    stockRangeUpper displaySize sweepToFill allOrNone minQty ocaType triggerMethod volatility
    volatilityType deltaNeutralOrderType deltaNeutralAuxPrice"""
_CO_DELTA_NEUTRAL = """deltaNeutralConId deltaNeutralShortSale deltaNeutralShortSaleSlot
    deltaNeutralDesignatedLocation"""


def completed_order(
    order: ParsedOrder, status: str, *, perm_id: int, filled: float, completed_time: datetime,
    completed_status: str = "", version: int = SERVER_VERSION,
) -> bytes:  # fmt: skip
    """completedOrder (101, no version field, no orderId or clientId: TWS keys a completed
    order by permId), in ib_async ``Decoder.completedOrder`` order; the order is echoed as
    placed, like `open_order`. `completed_status` is TWS's text, e.g. "Filled" or
    "Cancelled by Trader"; it defaults to `status`."""
    r, g = _echo(order)
    f: list[object] = [101, *contract11(order.contract)]
    f += g("action totalQuantity orderType lmtPrice auxPrice tif ocaGroup account openClose")
    f += [*g("origin orderRef"), perm_id]
    f += g("outsideRth hidden discretionaryAmt goodAfterTime faGroup faMethod faPercentage")
    f += (g("faProfile") if version < 177 else []) + g(_CO_MID)
    if r.get("deltaNeutralOrderType"):
        f += g(_CO_DELTA_NEUTRAL)
    f += g("continuousUpdate referencePriceType trailStopPrice trailingPercent")
    f += _legs_block(order, r, g)
    f += g("clearingAccount clearingIntent notHeld") + _algo_block(order)
    f += [*g("solicited"), status, *g("randomizeSize randomizePrice")]
    if order.orderType in ("PEG BENCH", "PEGBENCH"):
        f += g(PO_PEG_BENCH)
    f += [len(order.conditions), *(v for cond in order.conditions for v in cond)]
    if order.conditions:
        f += g("conditionsIgnoreRth conditionsCancelOrder")
    f += g("trailStopPrice lmtPriceOffset cashQty dontUseAutoPriceForHedge isOmsContainer")
    f += ["", filled, "", *g("autoCancelParent"), "", "", "", 0]  # autoCancelDate..parentPermId
    f += [ib_time(completed_time), completed_status or status]
    if version >= 170:
        f += g("minTradeQty minCompeteSize competeAgainstBestOffset midOffsetAtWhole")
        f += g("midOffsetAtHalf")
    return make_msg(*f)


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
        11, req_id, e.orderId, *contract11(e.contract), e.execId, ib_time(e.time),
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
