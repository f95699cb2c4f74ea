"""The same money rules for every column of a backtest (issue 11 item 3).

`money_rules` is the one place to change them: every column's cash earns the
scenario's short rate, in all columns (CASH_EARNS_RATE): the account's closing equity,
collateral and margin included (a broker pays interest on the cash that backs a margin
requirement), compounded per session over calendar days (`with_interest`); buy-and-hold
holds no cash and earns the dividend yield instead. The short rate is the scenario's
`short_rate` (else its `r`, the rate the option surface prices with); the dividend yield is
the scenario's `dividend_yield` (else its `q`, the yield the surface's forward uses; else
DIVIDEND_YIELD).

`frame` builds every column's daily closing equity under those rules; `comparison` gives the
report's figures per column: on the account (interest included) and on the capital the
column actually ties up (peak margin; CNDR: its largest collateral; buy-and-hold: the whole
account), where the P&L is taken before the account's interest, which is the same rate for
every column and no part of a strategy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

# SPX dividend yield a year, continuous, for scenarios that carry none (MARKET-FACTS: ~1.3-2%)
DIVIDEND_YIELD = 0.015
CASH_EARNS_RATE = True  # every column's cash earns the short rate (False: none does)


@dataclass(frozen=True)
class MoneyRules:
    short_rate: float
    dividend_yield: float
    rate_source: str
    dividend_source: str
    cash_earns_rate: bool = CASH_EARNS_RATE

    def describe(self) -> str:
        cash = (f"cash and collateral earn {self.short_rate:.2%} a year ({self.rate_source}) "
                "in every column" if self.cash_earns_rate else "no column earns interest")
        return (f"{cash}; buy-and-hold is total return with a {self.dividend_yield:.2%} "
                f"dividend yield ({self.dividend_source})")

    def summary(self) -> dict[str, Any]:
        return {"short_rate": self.short_rate, "rate_source": self.rate_source,
                "dividend_yield": self.dividend_yield, "dividend_source": self.dividend_source,
                "cash_earns_rate": self.cash_earns_rate,
                "interest_on": "every column's closing account equity (collateral and margin "
                               "included), compounded per session; buy-and-hold: none (no "
                               "cash), dividends reinvested" if self.cash_earns_rate else "none",
                "text": self.describe()}


def money_rules(scenario: Any) -> MoneyRules:
    """The short rate and dividend yield of a scenario, and where each came from."""
    rate, q = getattr(scenario, "short_rate", None), getattr(scenario, "dividend_yield", None)
    name = getattr(scenario, "name", "?")
    rsrc = f"scenario {name} short_rate"
    if rate is None:
        rate, rsrc = float(scenario.r), f"scenario {name} r (the surface's rate)"
    qsrc = f"scenario {name} dividend_yield"
    if q is None and getattr(scenario, "q", None) is not None:
        q, qsrc = scenario.q, f"scenario {name} q (the surface's dividend yield)"
    if q is None:
        q, qsrc = DIVIDEND_YIELD, "baselines.DIVIDEND_YIELD constant"
    return MoneyRules(float(rate), float(q), rsrc, qsrc)


def with_interest(daily: dict[date, float], rate: float
                  ) -> tuple[dict[date, float], dict[date, float]]:
    """(equity with interest, interest so far) per session: each session's closing equity,
    interest included, earns `rate` continuously over the calendar days to the next one."""
    total: dict[date, float] = {}
    earned: dict[date, float] = {}
    cum, prev = 0.0, None
    for d in sorted(daily):
        if prev is not None:
            cum += total[prev] * math.expm1(rate * (d - prev).days / 365.0)
        total[d], earned[d], prev = daily[d] + cum, cum, d
    return total, earned

def rules_of(scenario: str) -> MoneyRules:
    """The money rules of a scenario by name (`replay:FILE` too)."""
    from bot.sim import scenarios

    return money_rules(scenarios.get(scenario))


COLUMNS = ("method", "plain_condor", "cndr", "buy_and_hold")


def frame(rules: Any, daily: Any, runs: dict[str, dict[str, Any]], cndr: Any,
                initial: float) -> tuple[Any, dict[str, float]]:
    """Daily closing equity of every column under `rules` (bot.baselines.money_rules): the
    option columns' account equity plus the interest it earns, buy-and-hold's total return.
    Returns (frame, interest or dividends earned per column)."""
    import pandas as pd

    from bot import baselines
    from bot import report as rp

    raw = {"method": daily["equity"]}
    if "plain_condor" in runs:
        raw["plain_condor"] = rp.daily_frame(runs["plain_condor"]["ticks"])["equity"]
    raw["cndr"] = pd.Series(cndr.daily).reindex(daily.index).ffill()
    out = pd.DataFrame(index=daily.index)
    earned: dict[str, float] = {}
    rate = rules.short_rate if rules.cash_earns_rate else 0.0
    for k, ser in raw.items():
        total, interest = with_interest(ser.dropna().to_dict(), rate)
        out[k] = pd.Series(total)
        earned[k] = interest[max(interest)] if interest else 0.0
    s0 = daily["spx"].iloc[0] if len(daily) else None
    first = runs["method"]["ticks"]["spx"]
    bh = baselines.buy_and_hold(daily["spx"].to_dict(), initial, first[0] if first else s0,
                                rules.dividend_yield)
    price = baselines.buy_and_hold(daily["spx"].to_dict(), initial, first[0] if first else s0)
    out["buy_and_hold"] = pd.Series(bh)
    earned["buy_and_hold"] = bh[max(bh)] - price[max(price)] if bh else 0.0
    out["spx"], out["vix"] = daily["spx"], daily["vix"]
    out.index.name = "date"
    return out, earned


def comparison(table: Any, earned: dict[str, float], capital: dict[str, float | None],
               initial: float, rules: Any) -> dict[str, dict[str, Any]]:
    """Per column: the report's figures on the account, plus interest (dividends for
    buy-and-hold), peak margin and the returns on it (P&L before account interest)."""
    import numpy as np

    from bot import report as rp

    rf = rules.short_rate if rules.cash_earns_rate else 0.0
    out: dict[str, dict[str, Any]] = {}
    for k in COLUMNS:
        if k not in table:
            continue
        ser = table[k].dropna()
        gaps = np.r_[0.0, np.diff([d.toordinal() for d in ser.index])] if len(ser) else None
        m = rp.metrics(ser, initial, rf, gaps)
        cap = capital.get(k)
        got = earned.get(k, 0.0)
        interest = 0.0 if k == "buy_and_hold" else got
        m["interest"] = round(interest, 2)
        if k == "buy_and_hold":
            m["dividends"] = round(got, 2)
        m["peak_margin"] = cap
        m["return_on_account"] = m.get("total_return")
        trading = m["pnl"] - interest if "pnl" in m else None
        m["pnl_before_interest"] = None if trading is None else round(trading, 2)
        ron = trading / cap if cap and trading is not None else None
        m["return_on_peak_margin"] = ron
        m["return_on_peak_margin_annual"] = (
            (1.0 + ron) ** (rp.YEAR / m["days"]) - 1.0 if ron is not None and ron > -1
            and m["days"] else None)
        out[k] = m
    return out
