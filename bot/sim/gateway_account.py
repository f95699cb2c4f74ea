"""The emulator's account values: what `reqAccountUpdates`, `reqAccountUpdatesMulti` and
`reqAccountSummary` report for the one (Reg-T margin) paper account, from the SimBroker's
snapshot and cash.

Definitions follow IB's account-window/AccountSummaryTags descriptions for a Reg-T margin
account with options only (no stock, no loan): Equity with Loan Value = net liquidation (as
this emulator has always reported it), AvailableFunds = ELV - initial margin,
ExcessLiquidity = ELV - maintenance margin, Cushion = excess liquidity / net liquidation,
BuyingPower = 4 x (min(ELV, previous-day ELV) - initial margin), the "Full" requirements are
the current ones (no look-ahead change is modelled), and TotalCashValue is the cash balance.

`summary_rows` answers a reqAccountSummary tag list the way TWS does: only the tags asked for,
unknown tags silently skipped; ``$LEDGER`` adds the ledger rows in the BASE currency,
``$LEDGER:USD`` in USD, ``$LEDGER:ALL`` both.
"""

from __future__ import annotations

from strategies.types import Snapshot

SUMMARY_GROUP = "All"  # the only account group a single (non-FA) account has
LEDGER_TAGS = ("CashBalance", "TotalCashBalance", "NetLiquidationByCurrency", "RealizedPnL",
               "UnrealizedPnL", "OptionMarketValue", "StockMarketValue", "FuturesPNL",
               "ExchangeRate")


def account_values(snap: Snapshot, cash: float, gross: float) -> list[tuple[str, str, str]]:
    """(tag, value, currency) for every account tag the emulator knows. `gross` is the gross
    position value (sum of |market value| of the positions)."""
    a = snap.account
    nl = a.net_liquidation
    prev_elv = nl - a.realized_pnl_today
    avail = nl - a.init_margin
    buying_power = max(0.0, 4.0 * (min(nl, prev_elv) - a.init_margin))
    usd = [
        ("NetLiquidation", nl), ("EquityWithLoanValue", nl),
        ("PreviousDayEquityWithLoanValue", prev_elv), ("TotalCashValue", cash),
        ("SettledCash", cash), ("AccruedCash", 0.0), ("BuyingPower", buying_power),
        ("GrossPositionValue", gross), ("RegTEquity", nl), ("RegTMargin", a.init_margin),
        ("SMA", max(0.0, avail)),
        ("InitMarginReq", a.init_margin), ("MaintMarginReq", a.maint_margin),
        ("FullInitMarginReq", a.init_margin), ("FullMaintMarginReq", a.maint_margin),
        ("AvailableFunds", avail), ("FullAvailableFunds", avail),
        ("ExcessLiquidity", a.excess_liquidity), ("FullExcessLiquidity", a.excess_liquidity),
        ("LookAheadInitMarginReq", a.init_margin), ("LookAheadMaintMarginReq", a.maint_margin),
        ("LookAheadAvailableFunds", avail), ("LookAheadExcessLiquidity", a.excess_liquidity),
        ("RealizedPnL", a.realized_pnl_today), ("UnrealizedPnL", a.unrealized_pnl),
    ]  # fmt: skip
    plain = [("AccountType", "INDIVIDUAL"), ("Cushion", f"{a.cushion:.4f}"),
             ("LookAheadNextChange", "0"), ("HighestSeverity", "0"),
             ("DayTradesRemaining", "-1"), ("Leverage", f"{gross / nl if nl > 0 else 0.0:.2f}")]
    return [(k, f"{v:.2f}", "USD") for k, v in usd] + [(k, v, "") for k, v in plain]


def ledger_rows(snap: Snapshot, cash: float, option_value: float,
                currency: str) -> list[tuple[str, str, str]]:
    a = snap.account
    values = (cash, cash, a.net_liquidation, a.realized_pnl_today, a.unrealized_pnl,
              option_value, 0.0, 0.0, 1.0)
    return [(k, f"{v:.2f}", currency) for k, v in zip(LEDGER_TAGS, values)]


def summary_rows(tags: str, values: list[tuple[str, str, str]],
                 ledger: dict[str, list[tuple[str, str, str]]]) -> list[tuple[str, str, str]]:
    """The rows a reqAccountSummary with this comma-separated tag list gets, in its order."""
    by_tag = {k: (k, v, c) for k, v, c in values}
    out: list[tuple[str, str, str]] = []
    for tag in (t.strip() for t in tags.split(",")):
        if tag in by_tag:
            out.append(by_tag[tag])
        elif tag.upper() == "$LEDGER":
            out += ledger["BASE"]
        elif tag.upper().startswith("$LEDGER:"):
            which = tag.upper().split(":", 1)[1]
            out += [row for ccy in ("BASE", "USD") if which in (ccy, "ALL")
                    for row in ledger[ccy]]
    return out
