"""IB account facts for IBBroker: which managed account ids are paper accounts, and our
`Account` from TWS's account values."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from strategies.types import Account

# IB paper account ids: "DU" and digits (e.g. DU1234567). Third-party code also names "DF"
# (advisor paper masters) but no IB documentation found here says so: refused until it does.
PAPER_ACCOUNT = re.compile(r"DU[0-9]+")


def is_paper(account: str) -> bool:
    """An IB paper account id, exactly (no prefix match: "DUX", "DU", " DU1" are refused)."""
    return PAPER_ACCOUNT.fullmatch(account) is not None


def not_paper(accounts: list[str]) -> list[str] | None:
    """The ids that make these managed accounts unsafe ([] = none reported); None if safe."""
    if not accounts:
        return []
    bad = [a for a in accounts if not is_paper(a)]
    return bad or None


def account_values(values: Iterable[Any]) -> Account:
    """`Account` from ib_async AccountValue rows (tag, value, currency) of one account."""
    vals = {(v.tag, v.currency): v.value for v in values}

    def num(tag: str, ccy: str = "USD", default: float = 0.0) -> float:
        try:
            return float(vals[(tag, ccy)])
        except (KeyError, ValueError):
            return default

    nl = num("NetLiquidation", default=math.nan)
    excess = num("ExcessLiquidity")
    cushion = num("Cushion", "", excess / nl if nl > 0 else 0.0)
    return Account(net_liquidation=nl, init_margin=num("InitMarginReq"),
                   maint_margin=num("MaintMarginReq"), excess_liquidity=excess,
                   cushion=cushion, realized_pnl_today=num("RealizedPnL"),
                   unrealized_pnl=num("UnrealizedPnL"))
