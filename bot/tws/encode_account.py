"""Server -> client, portfolio and account: positions, account values, portfolio lines,
account update time, account-updates-multi, account summary."""

from __future__ import annotations

from datetime import datetime

from bot.tws.framing import make_msg
from bot.tws.wire import WireContract, contract11


def position(account: str, contract: WireContract, pos: float, avg_cost: float) -> bytes:
    return make_msg(61, 3, account, *contract11(contract), pos, avg_cost)


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


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> bytes:
    """One reqAccountSummary row (e.g. BuyingPower, Cushion, or a $LEDGER row per currency)."""
    return make_msg(63, 1, req_id, account, tag, value, currency)


def account_summary_end(req_id: int) -> bytes:
    return make_msg(64, 1, req_id)
