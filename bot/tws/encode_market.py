"""Server -> client, contracts and market data: contract details, option parameters, price,
size and option-computation ticks, snapshots, market data type, historical bars.

Counts (strikes, expirations, bars) are written by the encoder, never by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from bot.tws.framing import SERVER_VERSION, make_msg
from bot.tws.wire import WireContract


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
