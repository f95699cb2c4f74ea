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

YEAR = 252
NAMES = {"method": "method (rolls + hedges)", "plain_condor": "plain condor",
         "cndr": "Cboe CNDR rules", "buy_and_hold": "buy-and-hold SPX"}
COLORS = {"method": "tab:blue", "plain_condor": "tab:orange", "cndr": "tab:green",
          "buy_and_hold": "tab:gray"}
LAYER_COLORS = {"event": "tab:purple", "fomc": "tab:brown", "tail": "tab:red"}
SEVERITY = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}
CHARTS = ("equity.png", "spx_strikes.png", "vix_hedges.png", "roll_fund.png")


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
def daily_frame(ticks: dict[str, list]) -> Any:
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
    camp: dict[str, dict[str, float]] = {}
    for e in ev:
        c = e.get("campaign")
        if e["event"] in ("campaign.closed", "campaign.stopped"):
            camp.setdefault(c, {"condor": 0.0, "hedges": 0.0})["condor"] += float(e.get("pnl", 0))
        elif e["event"] in ("hedge.monetized", "hedge.closed"):
            camp.setdefault(c, {"condor": 0.0, "hedges": 0.0})["hedges"] += float(e.get("pnl", 0))
    worst = None
    if camp:
        cid, v = min(camp.items(), key=lambda kv: kv[1]["condor"] + kv[1]["hedges"])
        worst = {"campaign": cid, "condor_pnl": round(v["condor"], 2),
                 "hedge_pnl": round(v["hedges"], 2), "total": round(v["condor"] + v["hedges"], 2)}
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
        "campaign_pnl": {k: round(v["condor"] + v["hedges"], 2) for k, v in camp.items()},
        "worst_campaign": worst,
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


# --- charts --------------------------------------------------------------------------------------
def _ny(times: list | pd.Index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(pd.to_datetime(list(times), utc=True))
    return idx.tz_convert("America/New_York").tz_localize(None)


def _ev_times(events: list[dict], *names: str) -> list[tuple[pd.Timestamp, dict]]:
    return [(_ny([e["market_time"]])[0], e) for e in events if e.get("event") in names]


def charts(out: Path, daily: pd.DataFrame, runs: dict[str, dict[str, Any]], initial: float
           ) -> list[str]:
    """Write the four PNGs into `out`; return their file names."""
    from bot.plotting import pyplot

    plt = pyplot()

    plt.rcParams.update({"figure.dpi": 100, "font.size": 9, "axes.grid": True,
                         "grid.alpha": 0.3})
    m = runs["method"]
    tk = m["ticks"]
    t = _ny(tk["time"])
    dix = pd.DatetimeIndex(pd.to_datetime(daily.index)) + pd.Timedelta(hours=16)

    # 1. equity (P&L) and drawdown, baselines side by side; buy-and-hold as % on its own panel
    fig, (a1, a2, a3) = plt.subplots(3, 1, figsize=(11, 8.5), sharex=True,
                                     gridspec_kw={"height_ratios": [3, 2, 1.5]})
    for name in ("method", "plain_condor"):
        if name in runs:
            r = runs[name]
            eq = np.asarray(r["ticks"]["equity"], dtype=float) - initial
            tt = _ny(r["ticks"]["time"])
            a1.plot(tt, eq, color=COLORS[name], lw=1.1, label=NAMES[name])
            a2.plot(tt, eq - np.maximum.accumulate(np.r_[0.0, eq])[1:], color=COLORS[name],
                    lw=1.0, label=NAMES[name])
    if "cndr" in daily:
        c = daily["cndr"].to_numpy() - initial
        a1.step(dix, c, where="post", color=COLORS["cndr"], lw=1.1, label=NAMES["cndr"])
        a2.step(dix, c - np.maximum.accumulate(np.r_[0.0, c])[1:], where="post",
                color=COLORS["cndr"], lw=1.0, label=NAMES["cndr"])
    a1.axhline(0, color="k", lw=0.6)
    a1.set_ylabel("P&L, USD")
    a1.set_title("Equity: P&L on the same account and market (tick data; CNDR at daily closes)")
    a1.legend(loc="upper left")
    a2.set_ylabel("drawdown, USD")
    a2.set_title("Drawdown from the running peak")
    if "buy_and_hold" in daily:
        a3.plot(dix, (daily["buy_and_hold"].to_numpy() / initial - 1) * 100,
                color=COLORS["buy_and_hold"], lw=1.1, label=NAMES["buy_and_hold"])
    a3.axhline(0, color="k", lw=0.6)
    a3.set_ylabel("return, %")
    a3.set_title("Buy-and-hold SPX (whole account in SPX)")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out / CHARTS[0])
    plt.close(fig)

    # 2. SPX with the condor strikes held
    fig, ax = plt.subplots(figsize=(11, 5.5))
    ax.plot(t, tk["spx"], color="k", lw=0.9, label="SPX")
    sp, sc = np.asarray(tk["short_put"], float), np.asarray(tk["short_call"], float)
    lp, lc = np.asarray(tk["long_put"], float), np.asarray(tk["long_call"], float)
    ax.fill_between(t, sp, sc, where=np.isfinite(sp), color="tab:blue", alpha=0.08, step="post",
                    label="profit zone (shorts)")
    ax.step(t, sp, where="post", color="tab:red", lw=1.2, label="short put")
    ax.step(t, sc, where="post", color="tab:green", lw=1.2, label="short call")
    ax.step(t, lp, where="post", color="tab:red", lw=0.8, ls="--", label="long put")
    ax.step(t, lc, where="post", color="tab:green", lw=0.8, ls="--", label="long call")
    spx_at = pd.Series(np.asarray(tk["spx"], float), index=t)
    for names, mk, col, lab in ((("campaign.entered",), "^", "tab:blue", "entered"),
                                (("campaign.rolled",), "o", "tab:orange", "roll step"),
                                (("campaign.closed",), "s", "tab:gray", "closed"),
                                (("campaign.stopped",), "X", "tab:red", "stopped")):
        pts = _ev_times(m["events"], *names)
        if pts:
            xs = [p[0] for p in pts]
            ys = [float(spx_at.asof(x)) if x >= t[0] else np.nan for x in xs]
            ax.scatter(xs, ys, marker=mk, s=60, color=col, zorder=5, label=lab,
                       edgecolors="k", linewidths=0.5)
    ax.set_ylabel("SPX")
    ax.set_title("SPX and the method's condor strikes (step = roll step; markers: campaign events)")
    ax.legend(loc="upper left", ncol=4, fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out / CHARTS[1])
    plt.close(fig)

    # 3. VIX with hedge layers opened / closed
    fig, ax = plt.subplots(figsize=(11, 4.8))
    ax.plot(t, tk["vix"], color="k", lw=0.9, label="VIX")
    vix_at = pd.Series(np.asarray(tk["vix"], float), index=t)
    opened: dict[str, list] = {}
    for x, e in _ev_times(m["events"], "hedge.opened"):
        opened.setdefault(e.get("layer"), []).append(x)
    closes = _ev_times(m["events"], "hedge.monetized", "hedge.closed")
    seen: set[str] = set()
    for x, e in closes:
        layer = e.get("layer")
        starts = [s for s in opened.get(layer, []) if s <= x]
        if starts:
            ax.axvspan(starts[-1], x, color=LAYER_COLORS.get(layer, "c"), alpha=0.18, lw=0)
    for layer, xs in opened.items():
        col = LAYER_COLORS.get(layer, "c")
        ax.scatter(xs, [float(vix_at.asof(x)) for x in xs], marker="^", s=55, color=col,
                   edgecolors="k", linewidths=0.5, zorder=5, label=f"{layer} opened")
        seen.add(layer)
    for x, e in closes:
        layer = e.get("layer")
        col = LAYER_COLORS.get(layer, "c")
        won = e.get("event") == "hedge.monetized"
        ax.scatter([x], [float(vix_at.asof(x))], marker="v", s=55, zorder=5,
                   color=col if won else "white", edgecolors=col, linewidths=1.2,
                   label=f"{layer} closed (filled = gain)" if layer + "c" not in seen else None)
        seen.add(layer + "c")
    ax.set_ylabel("VIX")
    ax.set_title("VIX and the hedge layers (shaded: layer held)")
    ax.legend(loc="upper left", ncol=3, fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out / CHARTS[2])
    plt.close(fig)

    # 4. roll fund
    fig, ax = plt.subplots(figsize=(11, 4.2))
    ax.step(t, tk["fund"], where="post", color="tab:blue", lw=1.2,
            label="roll fund balance (open funds + carried)")
    ax.step(t, tk["campaign_fund"], where="post", color="tab:orange", lw=0.9, ls="--",
            label="current campaign's fund")
    fund_at = pd.Series(np.asarray(tk["fund"], float), index=t)
    rolls = _ev_times(m["events"], "campaign.rolled")
    if rolls:
        ax.scatter([x for x, _ in rolls], [float(fund_at.asof(x)) for x, _ in rolls],
                   marker="o", color="tab:red", zorder=5, label="roll step")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel("USD")
    ax.set_title("Roll fund: hedge gains in, roll costs out, remainder carried to the next "
                 "campaign")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out / CHARTS[3])
    plt.close(fig)
    return list(CHARTS)


# --- HTML --------------------------------------------------------------------------------------
def _fmt(v: Any, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if pct:
        return f"{v * 100:.2f}%"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return html.escape(str(v))


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


def write_html(out: Path, summary: dict[str, Any], pngs: list[str],
               trades: list[dict[str, Any]], max_rows: int = 300) -> Path:
    run = summary["run"]
    cols = [("total_return", "total return", True), ("cagr", "CAGR", True),
            ("max_drawdown", "max drawdown", True), ("max_drawdown_usd", "max DD, USD", False),
            ("sharpe", "Sharpe", False), ("sortino", "Sortino", False),
            ("pnl", "P&L, USD", False), ("interest", "of it interest", False),
            ("dividends", "of it dividends", False), ("peak_margin", "peak margin", False),
            ("return_on_peak_margin", "P&L before interest / peak margin", True),
            ("final_equity", "final equity", False)]
    head = "".join(f"<th>{h}</th>" for _, h, _ in cols)
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f"<td>{_fmt(row.get(k), pct)}</td>" for k, _, pct in cols) + "</tr>"
        for name, row in comparison_rows(summary))
    facts = (("campaigns", "campaigns"), ("closed / stopped", None),
             ("roll steps taken", "roll_steps"), ("worst campaign", "worst_campaign"),
             ("peak margin use", "peak_margin"), ("roll fund", "roll_fund"),
             ("hedge layers (P&L USD; IRR annualized, 1.0 = 100%)", "hedges"),
             ("hedge P&L total", "hedge_pnl_total"),
             ("days in each trading state", "trading_state_days"),
             ("max intraday drawdown", "max_intraday_drawdown"),
             ("orders / fills / risk rejections", None), ("ERROR events", "errors"))
    variants = [k for k in ("method", "plain_condor") if k in summary]

    def cell(d: dict, label: str, key: str | None) -> str:
        if label.startswith("closed"):
            return f"{d.get('campaigns_closed')} / {d.get('campaigns_stopped')}"
        if label.startswith("orders"):
            return f"{d.get('orders')} / {d.get('fills')} / {d.get('risk_rejections')}"
        v = d.get(key or "")
        if key == "max_intraday_drawdown":
            return _fmt(v, pct=True)
        return _kv(v)

    facts_html = "<tr><th></th>" + "".join(f"<th>{NAMES[k]}</th>" for k in variants) + "</tr>"
    facts_html += "".join(
        f"<tr><th>{html.escape(label)}</th>"
        + "".join(f"<td class=l>{cell(summary[k], label, key)}</td>" for k in variants) + "</tr>"
        for label, key in facts)
    imgs = "".join(f'<h3>{html.escape(p)}</h3><img src="{html.escape(p)}" alt="{p}">' for p in pngs)
    tcols = ("time", "kind", "campaign", "step", "layer", "action", "qty", "price",
             "commission", "reason")
    shown = [r for r in trades if r["kind"] in ("fill", "risk_reject", "reject")][:max_rows]
    trows = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in tcols)
                    + "</tr>" for r in shown)
    doc = f"""<!doctype html><html><head><meta charset="utf-8">
<title>condorbot backtest: {html.escape(str(run.get('scenario')))}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;
text-align:right;font-size:13px}}th{{background:#f4f4f4}}img{{max-width:100%}}
td.l{{text-align:left;vertical-align:top}}</style></head><body>
<h1>Backtest: {html.escape(str(run.get('scenario')))}, seed {run.get('seed')}</h1>
<p>Capital at risk: peak initial margin for the method and the plain condor, the largest
collateral (wing width x 100) for CNDR, the whole account for buy-and-hold; the P&amp;L columns
are on the same account, so compare them with the risk each took.</p>
<p>{run.get('sessions')} sessions from {run.get('start')} to {run.get('end')}, decision tick
{run.get('tick_seconds')} s, {run.get('steps')} daemon steps in {run.get('wall_seconds')} s
(method run). Same simulated market for every column.</p>
<h2>Method against its baselines</h2><table><tr><th></th>{head}</tr>{body}</table>
<h2>The method and the plain condor in detail</h2><table>{facts_html}</table>
<h2>Charts</h2>{imgs}
<h2>Fills and rejections</h2><p>All orders, walks and fills: <a href="trades.csv">trades.csv</a>;
daily equity of every column: <a href="equity.csv">equity.csv</a>;
figures: <a href="summary.json">summary.json</a>.</p>
<table><tr>{''.join(f'<th>{c}</th>' for c in tcols)}</tr>{trows}</table>
</body></html>"""
    path = out / "report.html"
    path.write_text(doc, encoding="utf-8")
    return path
