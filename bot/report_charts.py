"""The backtest report's charts (matplotlib Agg, PNG), one file each (CHARTS):
equity and drawdown of every column; SPX with the method's strikes; VIX with the hedge
layers held; the roll fund; each hedge layer's realized P&L over time; margin and option
contracts held over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bot.report_tables import NAMES

COLORS = {"method": "tab:blue", "plain_condor": "tab:orange", "cndr": "tab:green",
          "buy_and_hold": "tab:gray"}
LAYER_COLORS = {"event": "tab:purple", "fomc": "tab:brown", "tail": "tab:red"}
CHARTS = ("equity.png", "spx_strikes.png", "vix_hedges.png", "roll_fund.png",
          "hedge_layers.png", "margin_contracts.png")


def _ny(times: list[Any] | pd.Index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(pd.to_datetime(list(times), utc=True))
    return idx.tz_convert("America/New_York").tz_localize(None)


def _ev_times(events: list[dict[str, Any]], *names: str
              ) -> list[tuple[pd.Timestamp, dict[str, Any]]]:
    return [(_ny([e["market_time"]])[0], e) for e in events if e.get("event") in names]


def charts(out: Path, daily: pd.DataFrame, runs: dict[str, dict[str, Any]], initial: float
           ) -> list[str]:
    """Write the PNGs of CHARTS into `out`; return their file names."""
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
    _save(fig, out / CHARTS[0])

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
    _save(fig, out / CHARTS[1])

    # 3. VIX with hedge layers opened / closed
    fig, ax = plt.subplots(figsize=(11, 4.8))
    ax.plot(t, tk["vix"], color="k", lw=0.9, label="VIX")
    vix_at = pd.Series(np.asarray(tk["vix"], float), index=t)
    # every hedge.* event names its layer (strategies.alvh emits it with each one)
    opened: dict[str, list[pd.Timestamp]] = {}
    for x, e in _ev_times(m["events"], "hedge.opened"):
        opened.setdefault(e["layer"], []).append(x)
    closes = _ev_times(m["events"], "hedge.monetized", "hedge.closed")
    seen: set[str] = set()
    for x, e in closes:
        layer: str = e["layer"]
        starts = [s for s in opened.get(layer, []) if s <= x]
        if starts:
            ax.axvspan(starts[-1], x, color=LAYER_COLORS.get(layer, "c"), alpha=0.18, lw=0)
    for layer, xs in opened.items():
        col = LAYER_COLORS.get(layer, "c")
        ax.scatter(xs, [float(vix_at.asof(x)) for x in xs], marker="^", s=55, color=col,
                   edgecolors="k", linewidths=0.5, zorder=5, label=f"{layer} opened")
        seen.add(layer)
    for x, e in closes:
        layer = e["layer"]
        col = LAYER_COLORS.get(layer, "c")
        won = e.get("event") == "hedge.monetized"
        ax.scatter([x], [float(vix_at.asof(x))], marker="v", s=55, zorder=5,
                   color=col if won else "white", edgecolors=col, linewidths=1.2,
                   label=f"{layer} closed (filled = gain)" if layer + "c" not in seen else None)
        seen.add(layer + "c")
    ax.set_ylabel("VIX")
    ax.set_title("VIX and the hedge layers (shaded: layer held)")
    ax.legend(loc="upper left", ncol=3, fontsize=8)
    _save(fig, out / CHARTS[2])

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
    _save(fig, out / CHARTS[3])
    _layers(plt, out / CHARTS[4], m["events"], t)
    _margin(plt, out / CHARTS[5], runs)
    return list(CHARTS)


def _save(fig: Any, path: Path) -> None:
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    from bot.plotting import pyplot

    pyplot().close(fig)


def _layers(plt: Any, path: Path, events: list[dict[str, Any]], t: pd.DatetimeIndex) -> None:
    """5. each hedge layer's realized P&L, cumulative, over time (one step per close)."""
    fig, ax = plt.subplots(figsize=(11, 4.2))
    per: dict[str, list[tuple[pd.Timestamp, float]]] = {}
    for x, e in _ev_times(events, "hedge.monetized", "hedge.closed"):
        per.setdefault(str(e.get("layer")), []).append((x, float(e.get("pnl", 0.0))))
    total: list[tuple[pd.Timestamp, float]] = []
    for layer, pts in sorted(per.items()):
        xs = [t[0]] + [x for x, _ in pts] + [t[-1]]
        ys = np.cumsum([0.0] + [v for _, v in pts] + [0.0])
        ax.step(xs, ys, where="post", color=LAYER_COLORS.get(layer, "c"), lw=1.2,
                label=f"{layer}: {ys[-1]:,.0f} USD")
        total += pts
    if total:
        total.sort(key=lambda p: p[0])
        ys = np.cumsum([0.0] + [v for _, v in total] + [0.0])
        ax.step([t[0]] + [x for x, _ in total] + [t[-1]], ys, where="post", color="k", lw=1.0,
                ls="--", label=f"all layers: {ys[-1]:,.0f} USD")
    else:
        ax.text(0.5, 0.5, "no hedge layer closed in this run", transform=ax.transAxes,
                ha="center")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlim(t[0], t[-1])
    ax.set_ylabel("realized P&L, USD")
    ax.set_title("Hedge layers: cumulative realized P&L (what they paid into the roll fund)")
    if total:
        ax.legend(loc="upper left", fontsize=8)
    _save(fig, path)


def _margin(plt: Any, path: Path, runs: dict[str, dict[str, Any]]) -> None:
    """6. initial margin and option contracts held over time, method and plain condor."""
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for name in ("method", "plain_condor"):
        if name in runs:
            tk = runs[name]["ticks"]
            tt = _ny(tk["time"])
            a1.step(tt, tk["margin"], where="post", color=COLORS[name], lw=1.1,
                    label=NAMES[name])
            a2.step(tt, tk.get("contracts") or [0] * len(tt), where="post", color=COLORS[name],
                    lw=1.1, label=NAMES[name])
    a1.set_ylabel("initial margin, USD")
    a1.set_title("Margin used (the capital each strategy ties up)")
    a1.legend(loc="upper left", fontsize=8)
    a2.set_ylabel("option contracts")
    a2.set_title("Option contracts held (condor legs + hedge legs)")
    _save(fig, path)
