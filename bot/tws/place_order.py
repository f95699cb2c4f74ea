"""Client -> server placeOrder: ~110 positional fields with conditional blocks, parsed by a
cursor that mirrors ib_async 2.1 ``Client.placeOrder`` field by field (including its
server-version branches). The named field runs are shared with `encode_orders.open_order`,
which echoes a placed order back."""

from __future__ import annotations

from bot.tws.framing import INFINITE, SERVER_VERSION, UNSET_DOUBLE, ProtocolError
from bot.tws.wire import (
    CONDITION_FIELD_COUNTS,
    Cursor,
    ParsedOrder,
    WireComboLeg,
    parse_num,
)

# Runs of plain fields, named after ib_async Order attributes, in Client.placeOrder's order.

_PO_HEAD = """secIdType secId action totalQuantity orderType lmtPrice auxPrice tif ocaGroup
    account openClose origin orderRef transmit parentId blockOrder sweepToFill displaySize
    triggerMethod outsideRth hidden"""
_PO_FA = """_sharesAllocation discretionaryAmt goodAfterTime goodTillDate faGroup faMethod
    faPercentage"""
_PO_MID = """modelCode shortSaleSlot designatedLocation exemptCode ocaType rule80A settlingFirm
    allOrNone minQty percentOffset eTradeOnly firmQuoteOnly nbboPriceCap auctionStrategy
    startingPrice stockRefPrice delta stockRangeLower stockRangeUpper
    overridePercentageConstraints volatility volatilityType deltaNeutralOrderType
    deltaNeutralAuxPrice"""
PO_DELTA_NEUTRAL = """deltaNeutralConId deltaNeutralSettlingFirm deltaNeutralClearingAccount
    deltaNeutralClearingIntent deltaNeutralOpenClose deltaNeutralShortSale
    deltaNeutralShortSaleSlot deltaNeutralDesignatedLocation"""
_PO_SCALE_HEAD = """continuousUpdate referencePriceType trailStopPrice trailingPercent
    scaleInitLevelSize scaleSubsLevelSize scalePriceIncrement"""
PO_SCALE = """scalePriceAdjustValue scalePriceAdjustInterval scaleProfitOffset scaleAutoReset
    scaleInitPosition scaleInitFillQty scaleRandomPercent"""
_PO_HEDGE = "scaleTable activeStartTime activeStopTime hedgeType"
_PO_CLEARING = "optOutSmartRouting clearingAccount clearingIntent notHeld"
_PO_WHAT_IF = "algoId whatIf orderMiscOptions solicited randomizeSize randomizePrice"
PO_PEG_BENCH = """referenceContractId isPeggedChangeAmountDecrease peggedChangeAmount
    referenceChangeAmount referenceExchangeId"""
_PO_TAIL = """adjustedOrderType triggerPrice lmtPriceOffset adjustedStopPrice
    adjustedStopLimitPrice adjustedTrailingAmount adjustableTrailingUnit extOperator
    softDollarTier.name softDollarTier.val cashQty mifid2DecisionMaker mifid2DecisionAlgo
    mifid2ExecutionTrader mifid2ExecutionAlgo dontUseAutoPriceForHedge isOmsContainer
    discretionaryUpToLimitPrice usePriceMgmtAlgo"""


def _run(c: Cursor, names: str) -> None:
    for name in names.split():
        c.take(name)


def _long_legs(c: Cursor) -> tuple[WireComboLeg, ...]:
    legs = []
    for i in range(c.int("comboLegs.count")):
        p = f"comboLegs.{i}."
        legs.append(
            WireComboLeg(
                c.int(p + "conId"), c.int(p + "ratio"), c.take(p + "action"),
                c.take(p + "exchange"), c.int(p + "openClose"), c.int(p + "shortSaleSlot"),
                c.take(p + "designatedLocation"), c.int(p + "exemptCode", -1),
            )  # fmt: skip
        )
    return tuple(legs)


def is_scale_increment(text: str) -> bool:
    """Whether a scalePriceIncrement field turns on the 7-field scale block."""
    try:
        return 0 < float(text) < UNSET_DOUBLE
    except ValueError:
        return False


def parse_place_order(fields: list[str], version: int = SERVER_VERSION) -> ParsedOrder:
    """placeOrder, mirroring ib_async 2.1 ``Client.placeOrder`` field by field."""
    c = Cursor(fields)
    order_id = c.int("orderId")
    contract = c.contract()
    _run(c, _PO_HEAD)
    legs: tuple[WireComboLeg, ...] = ()
    leg_prices: tuple[float | None, ...] = ()
    routing: tuple[tuple[str, str], ...] = ()
    if contract.secType == "BAG":
        legs = _long_legs(c)
        n_prices = c.int("orderComboLegs.count")
        leg_prices = tuple(c.float(f"orderComboLegs.{i}.price") for i in range(n_prices))
        routing = c.tag_values("smartComboRoutingParams")
    _run(c, _PO_FA)
    if version < 177:
        c.take("faProfile")
    _run(c, _PO_MID)
    if c.raw["deltaNeutralOrderType"]:
        _run(c, PO_DELTA_NEUTRAL)
    _run(c, _PO_SCALE_HEAD)
    if is_scale_increment(c.raw["scalePriceIncrement"]):
        _run(c, PO_SCALE)
    _run(c, _PO_HEDGE)
    if c.raw["hedgeType"]:
        c.take("hedgeParam")
    _run(c, _PO_CLEARING)
    dnc = c.delta_neutral()
    algo = c.take("algoStrategy")
    algo_params = c.tag_values("algoParams") if algo else ()
    _run(c, _PO_WHAT_IF)
    order_type = c.raw["orderType"]
    if order_type in ("PEG BENCH", "PEGBENCH"):
        _run(c, PO_PEG_BENCH)
    conditions = []
    for i in range(c.int("conditions.count")):
        cond_type = c.int(f"conditions.{i}.condType")
        if cond_type not in CONDITION_FIELD_COUNTS:
            raise ProtocolError(f"placeOrder: unknown condition type {cond_type}")
        n = CONDITION_FIELD_COUNTS[cond_type] - 1
        conditions.append((str(cond_type), *(c.take(f"conditions.{i}.{k}") for k in range(n))))
    if conditions:
        _run(c, "conditionsIgnoreRth conditionsCancelOrder")
    _run(c, _PO_TAIL)
    for min_version, name in _PO_VERSIONED:
        if version >= min_version:
            c.take(name)
    if version >= 170:
        if contract.exchange == "IBKRATS":
            c.take("minTradeQty")
        if order_type in ("PEG BEST", "PEGBEST"):
            _run(c, "minCompeteSize competeAgainstBestOffset")
            if c.raw["competeAgainstBestOffset"] == INFINITE:
                _run(c, "midOffsetAtWhole midOffsetAtHalf")
        elif order_type in ("PEG MID", "PEGMID"):
            _run(c, "midOffsetAtWhole midOffsetAtHalf")
    c.done()
    r = c.raw
    try:
        origin, parent_id = int(r["origin"] or 0), int(r["parentId"] or 0)
    except ValueError:
        raise ProtocolError(f"placeOrder: bad origin/parentId {r['origin']!r}") from None
    return ParsedOrder(
        orderId=order_id, contract=contract, action=r["action"],
        totalQuantity=parse_num(r["totalQuantity"], "totalQuantity") or 0.0,
        orderType=order_type, lmtPrice=parse_num(r["lmtPrice"], "lmtPrice"),
        auxPrice=parse_num(r["auxPrice"], "auxPrice"), tif=r["tif"],
        ocaGroup=r["ocaGroup"], account=r["account"], openClose=r["openClose"],
        origin=origin, orderRef=r["orderRef"], transmit=r["transmit"] == "1",
        parentId=parent_id, outsideRth=r["outsideRth"] == "1",
        goodAfterTime=r["goodAfterTime"], goodTillDate=r["goodTillDate"],
        whatIf=r["whatIf"] == "1", comboLegs=legs, orderComboLegPrices=leg_prices,
        smartComboRoutingParams=routing, algoStrategy=algo, algoParams=algo_params,
        deltaNeutralContract=dnc, conditions=tuple(conditions), raw=dict(r),
    )  # fmt: skip


_PO_VERSIONED = (
    (158, "duration"),
    (160, "postToAts"),
    (162, "autoCancelParent"),
    (166, "advancedErrorOverride"),
    (169, "manualOrderTime"),
)
