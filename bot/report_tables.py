"""The report's tables, as plain data (summary.json) and as HTML: campaigns, monthly
returns, costs, and the verdict line that answers "did the method beat its baselines?".

Campaigns (`campaigns`) are rebuilt from a run's events in order:
  entry         campaign.entered: time, strikes, condors, credit
  steps         campaign.rolled count (each roll updates condors and strikes)
  max condors   largest quantity held; option contracts = 4 x that
  max loss      largest (wider wing - credit) x 100 x condors of any condor the campaign held:
                what it could lose at expiry on that condor, at the price it got
  hedge gains   the hedge layers' realized gains credited to the campaign (sum of gains;
                hedge P&L is the net including losses)
  fund drawn    roll costs paid out of the campaign's roll fund (ledger.debited, source roll)
  P&L           condor realized (net of commissions) + hedge P&L; a campaign still open when
                the run ends adds what its positions are worth then: the final equity less
                everything realized (so the campaigns' P&L sums to the run's P&L)
  ended         the close reason (take_profit, time_exit, plain_stop, steps_exhausted, ...)
                or "open at end"
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

NAMES = {"method": "method (rolls + hedges)", "plain_condor": "plain condor",
         "cndr": "Cboe CNDR rules", "buy_and_hold": "buy-and-hold SPX"}
ENDS = ("campaign.closed", "campaign.stopped")
HEDGE_ENDS = ("hedge.monetized", "hedge.closed")


def _max_loss(ev: dict[str, Any]) -> float:
    k = ev.get("strikes") or []
    if len(k) != 4:
        return math.nan
    width = float(max(k[1] - k[0], k[3] - k[2]))
    return (width - float(ev.get("credit", 0.0))) * 100.0 * float(ev.get("qty", 0))


def campaigns(run: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per campaign of a daemon run (see the module doc)."""
    rows: dict[str, dict[str, Any]] = {}
    for e in run["events"]:
        cid, name = e.get("campaign"), e.get("event")
        if name == "campaign.entered":
            rows[cid] = {"campaign": cid, "entry": e.get("market_time"),
                         "strikes": e.get("strikes"), "credit": e.get("credit"), "steps": 0,
                         "max_condors": e.get("qty", 0), "max_loss": _max_loss(e),
                         "hedge_gains": 0.0, "hedge_pnl": 0.0, "fund_drawn": 0.0,
                         "condor_pnl": 0.0, "pnl": 0.0, "ended": "open at end", "end": None}
            continue
        r = rows.get(cid)
        if r is None:
            continue
        if name == "campaign.rolled":
            r["steps"] += 1
            r["max_condors"] = max(r["max_condors"], e.get("qty", 0))
            r["max_loss"] = max(r["max_loss"], _max_loss(e))
        elif name in HEDGE_ENDS:
            pnl = float(e.get("pnl", 0.0))
            r["hedge_pnl"] += pnl
            r["hedge_gains"] += max(pnl, 0.0)
        elif name == "ledger.debited" and e.get("source") == "roll":
            r["fund_drawn"] += float(e.get("amount", 0.0))
        elif name in ENDS:
            r["condor_pnl"] += float(e.get("pnl", 0.0))
            r["ended"] = str(e.get("reason") or e.get("why") or name.split(".")[1])
            r["end"] = e.get("market_time")
    out = list(rows.values())
    for r in out:
        r["pnl"] = r["condor_pnl"] + r["hedge_pnl"]
    eq = run["ticks"]["equity"]
    if out and eq:  # what is still held at the end belongs to the last campaign
        rest = float(eq[-1]) - float(run["initial_cash"]) - sum(r["pnl"] for r in out)
        last = out[-1]
        if last["ended"] == "open at end" or abs(rest) >= 0.01:
            last["pnl"] += rest
            last["open_value"] = round(rest, 2)
    for r in out:
        r["max_contracts"] = 4 * int(r["max_condors"])
        for k in ("max_loss", "hedge_gains", "hedge_pnl", "fund_drawn", "condor_pnl", "pnl"):
            r[k] = round(r[k], 2) if math.isfinite(r[k]) else None
    return out


def worst(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The campaign with the lowest P&L, open ones included."""
    return min(rows, key=lambda r: r["pnl"], default=None)


def monthly_returns(frame: pd.DataFrame, initial: float, columns: tuple[str, ...]
                    ) -> list[dict[str, Any]]:
    """Per calendar month: each column's month-end equity / previous month-end - 1 (the
    first month from the initial cash)."""
    if not len(frame):
        return []
    idx = pd.DatetimeIndex(pd.to_datetime(frame.index))
    month = idx.to_period("M")
    out: list[dict[str, Any]] = []
    prev = {k: initial for k in columns}
    for m in sorted(set(month)):
        row: dict[str, Any] = {"month": str(m)}
        for k in columns:
            if k not in frame:
                continue
            ser = frame[k][month == m].dropna()
            if not len(ser):
                row[k] = None
                continue
            end = float(ser.iloc[-1])
            row[k] = end / prev[k] - 1.0
            prev[k] = end
        out.append(row)
    return out


# --- HTML ---------------------------------------------------------------------------------------
def fmt(v: Any, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if pct:
        return f"{v * 100:.2f}%"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return html.escape(str(v))


def table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """An HTML table of already-formatted (escaped) cells."""
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    b = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><tr>{h}</tr>{b}</table>'


def campaigns_html(rows: list[dict[str, Any]]) -> str:
    head = ["campaign", "entry", "steps", "max condors", "max contracts", "max loss at risk",
            "hedge gains received", "hedge P&L", "fund drawn", "P&L", "ended"]
    return table(head, [[fmt(r["campaign"]), fmt((r["entry"] or "")[:16]), fmt(r["steps"]),
                         fmt(r["max_condors"]), fmt(r["max_contracts"]), fmt(r["max_loss"]),
                         fmt(r["hedge_gains"]), fmt(r["hedge_pnl"]), fmt(r["fund_drawn"]),
                         fmt(r["pnl"]), fmt(r["ended"])] for r in rows], "campaigns")


def monthly_html(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    cols = [k for k in columns if any(k in r for r in rows)]
    return table(["month"] + [NAMES[k] for k in cols],
                 [[fmt(r["month"])] + [fmt(r.get(k), pct=True) for k in cols] for r in rows],
                 "monthly")


def costs_html(costs: dict[str, dict[str, Any]]) -> str:
    return table(["", "fills", "commissions, USD", "paid vs mid, USD", "total, USD"],
                 [[html.escape(NAMES.get(k, k)), fmt(c.get("fills")), fmt(c.get("commissions")),
                   fmt(c.get("vs_mid")), fmt(c.get("total"))] for k, c in costs.items()],
                 "costs")


def verdict(summary: dict[str, Any]) -> dict[str, Any]:
    """The figures that answer the question, per column, and one sentence."""
    comp = summary["comparison"]
    cols: dict[str, dict[str, Any]] = {}
    for k in ("method", "plain_condor", "cndr"):
        if k not in comp:
            continue
        m = comp[k]
        w = (summary.get(k) or {}).get("worst_campaign") if k != "cndr" else None
        if k == "cndr":
            w = (summary.get("cndr") or {}).get("worst_cycle")
        cols[k] = {"pnl": m.get("pnl"), "max_drawdown_usd": m.get("max_drawdown_usd"),
                   "worst_campaign": w.get("pnl") if isinstance(w, dict) else w,
                   "peak_margin": m.get("peak_margin"),
                   "return_on_peak_margin": m.get("return_on_peak_margin")}
    parts = [f"{NAMES[k]}: P&L {fmt(v['pnl'])}, max drawdown {fmt(v['max_drawdown_usd'])}, "
             f"worst campaign {fmt(v['worst_campaign'])}, peak margin {fmt(v['peak_margin'])}, "
             f"{fmt(v['return_on_peak_margin'], pct=True)} on it" for k, v in cols.items()]
    text = " | ".join(parts)
    me = cols.get("method")
    if me and me["pnl"] is not None:
        others = [(NAMES[k], v["pnl"]) for k, v in cols.items()
                  if k != "method" and v["pnl"] is not None]
        beat = " and ".join(n for n, p in others if me["pnl"] > p)
        trailed = " and ".join(n for n, p in others if me["pnl"] <= p)
        said = " and ".join(x for x in (beat and f"beat {beat}", trailed and f"trailed {trailed}")
                            if x)
        text = f"The method {said or 'had nothing to compare with'} on P&L. {text}"
    return {"columns": cols, "text": text}
