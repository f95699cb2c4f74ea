"""Backtest figures, charts (matplotlib Agg, PNG) and the HTML report.

Figures (`metrics`) come from the daily closing equity, with the initial cash as the value
before day 0:
  total_return  final / initial - 1
  cagr          (final / initial) ** (252 / sessions) - 1   (trading years of 252 sessions)
  max_drawdown  min over days of equity / running peak - 1 (and in dollars)
  sharpe        mean / stdev (ddof 1) of daily excess returns x sqrt(252): each day's return
                less the short rate over its calendar days (`rf`; every column's cash earns
                it, see bot.baselines.money_rules, so the interest is not skill)
  sortino       mean daily excess return / downside deviation (root mean square of
                min(excess, 0)) x sqrt(252)
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bot import report_tables as tb
from bot.report_charts import CHARTS, charts  # noqa: F401 (the report's charts)
from bot.report_tables import NAMES

YEAR = 252
SEVERITY = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def metrics(equity: pd.Series | np.ndarray, initial: float, rf: float = 0.0,
            gaps: np.ndarray | None = None) -> dict[str, Any]:
    """Return, CAGR, drawdown, Sharpe and Sortino of a daily closing equity series; `rf` the
    annual short rate over `gaps` (calendar days before each close; default 1)."""
    eq = np.asarray(equity, dtype=float)
    out: dict[str, Any] = {"days": int(eq.size)}
    if eq.size == 0:
        return out
    x = np.r_[initial, eq]
    days = np.ones(eq.size) if gaps is None else np.asarray(gaps, dtype=float)
    ret = x[1:] / x[:-1] - 1.0 - np.expm1(rf * days / 365.0)
    peak = np.maximum.accumulate(x)
    dd = x / peak - 1.0
    growth = x[-1] / initial
    sd = ret.std(ddof=1) if ret.size > 1 else 0.0
    down = math.sqrt(float(np.mean(np.minimum(ret, 0.0) ** 2)))
    out.update({
        "final_equity": round(float(x[-1]), 2),
        "pnl": round(float(x[-1] - initial), 2),
        "total_return": float(growth - 1.0),
        "cagr": _finite(growth ** (YEAR / eq.size) - 1.0) if growth > 0 else -1.0,
        "max_drawdown": float(dd.min()),
        "max_drawdown_usd": round(float((x - peak).min()), 2),
        "sharpe": _finite(ret.mean() / sd * math.sqrt(YEAR)) if sd > 0 else None,
        "sortino": _finite(ret.mean() / down * math.sqrt(YEAR)) if down > 0 else None,
    })
    return out


# --- what a daemon run did ------------------------------------------------------------------
def daily_frame(ticks: dict[str, list[Any]]) -> Any:
    """Per session (New York date): closing equity, SPX, VIX; peak margin; worst state."""
    idx = pd.to_datetime(ticks["time"], utc=True).tz_convert("America/New_York")
    df = pd.DataFrame({k: ticks[k] for k in ("equity", "margin", "spx", "vix")}, index=idx)
    df["severity"] = [SEVERITY.get(s, 0) for s in ticks["state"]]
    df["date"] = idx.date
    g = df.groupby("date")
    out = g[["equity", "spx", "vix"]].last()
    out["margin_peak"] = g["margin"].max()
    out["severity"] = g["severity"].max()
    return out


def details(run: dict[str, Any]) -> dict[str, Any]:
    """What a daemon run did: campaigns, roll steps, hedges, roll fund, margin, states."""
    ev = run["events"]
    tk = run["ticks"]
    names = [e["event"] for e in ev]
    rows = tb.campaigns(run)
    w = tb.worst(rows)
    worst = None if w is None else {
        "campaign": w["campaign"], "condor_pnl": w["condor_pnl"], "hedge_pnl": w["hedge_pnl"],
        "open_value": w.get("open_value", 0.0), "total": w["pnl"], "pnl": w["pnl"],
        "ended": w["ended"]}
    c = dict(run.get("costs") or {})
    c["total"] = round(c.get("commissions", 0.0) + c.get("vs_mid", 0.0), 2)
    c = {k: round(v, 2) if isinstance(v, float) else v for k, v in c.items()}
    eq = [e for e in tk["equity"]]
    ratios = [m / q for m, q in zip(tk["margin"], eq) if q > 0]
    states: dict[str, int] = {}
    df = daily_frame(tk) if tk["time"] else None
    inv = {v: k for k, v in SEVERITY.items()}
    if df is not None:
        for s in df["severity"]:
            states[inv[int(s)]] = states.get(inv[int(s)], 0) + 1
    led = run["ledger"]
    peak_intraday = None
    if eq:
        x = np.r_[run["initial_cash"], np.asarray(eq, dtype=float)]
        peak_intraday = float((x / np.maximum.accumulate(x) - 1).min())
    return {
        "campaigns": names.count("campaign.entered"),
        "campaigns_closed": names.count("campaign.closed"),
        "campaigns_stopped": names.count("campaign.stopped"),
        "roll_steps": names.count("campaign.rolled"),
        "roll_steps_decided": names.count("roll.step"),
        "campaign_pnl": {r["campaign"]: r["pnl"] for r in rows},
        "worst_campaign": worst,
        "campaign_table": rows,
        "costs": c,
        "hedges": led["layers"],
        "hedge_pnl_total": round(sum(v["pnl"] for v in led["layers"].values()), 2),
        "roll_fund": {"drawn": led["drawn"], "carried": led["carried"],
                      "credits": led["credits"], "debits": led["debits"],
                      "open_funds": led["funds"],
                      "balance_end": round(tk["fund"][-1], 2) if tk["fund"] else 0.0},
        "peak_margin": {"usd": round(max(tk["margin"], default=0.0), 2),
                        "share_of_net_liq": round(max(ratios, default=0.0), 4)},
        "trading_state_days": states,
        "max_intraday_drawdown": peak_intraday,
        "orders": sum(1 for t in run["trades"] if t["kind"] == "order"),
        "fills": sum(1 for t in run["trades"] if t["kind"] == "fill"),
        "risk_rejections": sum(1 for t in run["trades"] if t["kind"] == "risk_reject"),
        "errors": len(run["errors"]),
        "status_at_end": run["status"],
    }


# --- HTML --------------------------------------------------------------------------------------
_fmt = tb.fmt


def _kv(v: Any) -> str:
    """A summary value as readable HTML: dicts as key: value lines, numbers formatted."""
    if isinstance(v, dict):
        if not v:
            return "-"
        return "<br>".join(f"{html.escape(str(k))}: {_kv(x)}" for k, x in v.items())
    if isinstance(v, float):
        return _fmt(v)
    return html.escape("-" if v is None else str(v))


def comparison_rows(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(NAMES.get(k, k), v) for k, v in summary["comparison"].items()]


COMPARISON = (("total_return", "return on the account", True), ("cagr", "CAGR", True),
              ("max_drawdown", "max drawdown", True), ("max_drawdown_usd", "max DD, USD", False),
              ("sharpe", "Sharpe", False), ("sortino", "Sortino", False),
              ("pnl", "P&L, USD", False), ("interest", "of it interest", False),
              ("dividends", "of it dividends", False), ("peak_margin", "peak margin", False),
              ("return_on_peak_margin", "P&L before interest / peak margin", True),
              ("return_on_peak_margin_annual", "the same, annualized", True),
              ("final_equity", "final equity", False))
FACTS = (("campaigns", "campaigns"), ("closed / stopped", None),
         ("roll steps taken", "roll_steps"), ("worst campaign (open ones included)",
                                              "worst_campaign"),
         ("peak margin use", "peak_margin"), ("roll fund", "roll_fund"),
         ("hedge layers (P&L USD; HPR; IRR annualized, 1.0 = 100%)", "hedges"),
         ("hedge P&L total", "hedge_pnl_total"),
         ("days in each trading state", "trading_state_days"),
         ("max intraday drawdown", "max_intraday_drawdown"),
         ("orders / fills / risk rejections", None), ("ERROR events", "errors"))


def _facts(summary: dict[str, Any]) -> str:
    variants = [k for k in ("method", "plain_condor") if k in summary]

    def cell(d: dict[str, Any], label: str, key: str | None) -> str:
        if label.startswith("closed"):
            return f"{d.get('campaigns_closed')} / {d.get('campaigns_stopped')}"
        if label.startswith("orders"):
            return f"{d.get('orders')} / {d.get('fills')} / {d.get('risk_rejections')}"
        v = d.get(key or "")
        if key == "max_intraday_drawdown":
            return _fmt(v, pct=True)
        return _kv(v)

    head = "<tr><th></th>" + "".join(f"<th>{NAMES[k]}</th>" for k in variants) + "</tr>"
    return "<table>" + head + "".join(
        f"<tr><th>{html.escape(label)}</th>"
        + "".join(f"<td class=l>{cell(summary[k], label, key)}</td>" for k in variants) + "</tr>"
        for label, key in FACTS) + "</table>"


def write_html(out: Path, summary: dict[str, Any], pngs: list[str],
               trades: list[dict[str, Any]], max_rows: int = 300) -> Path:
    run = summary["run"]
    head = "".join(f"<th>{h}</th>" for _, h, _ in COMPARISON)
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f"<td>{_fmt(row.get(k), pct)}</td>" for k, _, pct in COMPARISON) + "</tr>"
        for name, row in comparison_rows(summary))
    verdict = (summary.get("verdict") or {}).get("text") or "-"
    money = (summary.get("money_rules") or {}).get("text") or "-"
    fills = run.get("fill_model") or "-"
    camps = "".join(
        f"<h3>{NAMES[k]}</h3>" + tb.campaigns_html(summary[k].get("campaign_table") or [])
        for k in ("method", "plain_condor") if k in summary)
    columns = tuple(summary["comparison"])
    imgs = "".join(f'<h3>{html.escape(p)}</h3><img src="{html.escape(p)}" alt="{p}">'
                   for p in pngs)
    tcols = ("time", "kind", "campaign", "step", "layer", "action", "qty", "price",
             "commission", "reason")
    shown = [r for r in trades if r["kind"] in ("fill", "risk_reject", "reject")][:max_rows]
    trows = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in tcols)
                    + "</tr>" for r in shown)
    doc = f"""<!doctype html><html><head><meta charset="utf-8">
<title>condorbot backtest: {html.escape(str(run.get('scenario')))}</title>
<link rel="icon" href="data:,">
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;
text-align:right;font-size:13px}}th{{background:#f4f4f4}}img{{max-width:100%}}
td.l{{text-align:left;vertical-align:top}}
p.verdict{{font-size:15px;border-left:4px solid #36c;padding:6px 10px;background:#f6f8fc}}
</style></head><body>
<h1>Backtest: {html.escape(str(run.get('scenario')))}, seed {run.get('seed')}</h1>
<p class="verdict" id="verdict"><b>Verdict.</b> {html.escape(verdict)}</p>
<p>Money: {html.escape(money)}.</p>
<p id="fill-model">One fill model for every column (method, plain condor, CNDR rules):
{html.escape(str(fills))}.</p>
<p>{run.get('sessions')} sessions from {run.get('start')} to {run.get('end')}, decision tick
{run.get('tick_seconds')} s, {run.get('steps')} daemon steps in {run.get('wall_seconds')} s
(method run). Same simulated market for every column. Peak margin: the largest initial
margin for the method and the plain condor, the largest collateral (wing width x 100) for
CNDR, the whole account for buy-and-hold.</p>
<h2>Method against its baselines</h2><table><tr><th></th>{head}</tr>{body}</table>
<h2>Campaigns</h2><p>Max loss at risk: the wider wing less the credit, x 100 x condors, of
the largest condor held. A campaign open at the end is marked at the last tick.</p>{camps}
<h2>Monthly returns (on the account)</h2>{tb.monthly_html(summary.get('monthly_returns')
                                                           or [], columns)}
<h2>Costs</h2><p>Commissions, and what fills paid beyond the combo's mid at decision time
(positive = paid).</p>{tb.costs_html(summary.get('costs') or {})}
<h2>The method and the plain condor in detail</h2>{_facts(summary)}
<h2>Charts</h2><div id="charts">{imgs}</div>
<h2>Fills and rejections</h2><p>All orders, walks and fills: <a href="trades.csv">trades.csv</a>;
daily equity of every column: <a href="equity.csv">equity.csv</a>;
figures: <a href="summary.json">summary.json</a>.</p>
<table><tr>{''.join(f'<th>{c}</th>' for c in tcols)}</tr>{trows}</table>
</body></html>"""
    path = out / "report.html"
    path.write_text(doc, encoding="utf-8")
    return path
