"""The distribution report of a Monte Carlo / sweep run: DIR/montecarlo.json + .html (+ the
fan chart montecarlo_fan.png, every path's daily equity in equity_paths.csv).

Per column (method, plain condor, CNDR, buy-and-hold) and per grid point: the 5/25/50/75/95th
percentiles over paths of
  pnl             final equity - initial cash (USD)
  max_drawdown    worst close-to-peak drawdown of the daily equity (fraction; and USD)
  worst_campaign  P&L of the path's worst campaign incl. its hedges (method, plain condor);
                  CNDR: its worst monthly cycle; buy-and-hold: n/a (no campaigns)
  peak_margin     peak initial margin (method, plain); CNDR: its peak collateral;
                  buy-and-hold: n/a (no margin)
and, over all campaigns of all paths (method, plain condor; n/a for the baselines):
  reached_max_steps  a campaign ordered its `max_steps`-th roll step (plain condor, and
                     grid points with max_steps 0: n/a)
  stopped            a campaign ended in campaign.stopped (steps exhausted, unfunded roll,
                     failed roll open, expired)
  loss_cap_refused   the risk guard refused a campaign's order for the campaign loss cap
  loss_cap_breached  a campaign's realized loss (incl. hedges) passed max_campaign_loss_pct x
                     the initial cash
Each probability is also given per path (share of paths with at least one such campaign).
In a sweep the per-column figures pool every grid point's paths; `points` has them per
point. The fan chart is the daily equity's 5-95 / 25-75 percentile bands and median per column
(of the first grid point in a sweep); the sweep table has one sortable row per grid point.
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS = ("method", "plain_condor", "cndr", "buy_and_hold")
QS = (5, 25, 50, 75, 95)
METRICS = ("pnl", "max_drawdown", "max_drawdown_usd", "worst_campaign", "peak_margin")
PROBS = ("reached_max_steps", "stopped", "loss_cap_refused", "loss_cap_breached")
NA = "n/a"


def _value(s: dict[str, Any], col: str, metric: str) -> Any:
    comp = s["comparison"].get(col)
    if comp is None:
        return None
    if metric in ("pnl", "max_drawdown", "max_drawdown_usd"):
        return comp.get(metric)
    if col in ("method", "plain_condor"):
        d = s.get(col, {})
        if metric == "worst_campaign":
            return (d.get("worst_campaign") or {}).get("total")
        return (d.get("peak_margin") or {}).get("usd")
    if col == "cndr":
        return s["cndr"].get("worst_cycle") if metric == "worst_campaign" \
            else comp.get("capital_at_risk")
    return NA  # buy-and-hold has no campaigns and no margin


def percentiles(values: list[Any]) -> dict[str, Any] | str:
    if any(v == NA for v in values):
        return NA
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return NA
    ps = np.percentile(np.asarray(xs), QS)
    return {**{f"p{q}": round(float(p), 4) for q, p in zip(QS, ps)}, "n": len(xs)}


def probabilities(results: list[dict[str, Any]], col: str) -> dict[str, Any]:
    """Shares of campaigns (and of paths) with each outcome; reached_max_steps counts only
    paths whose max_steps is above 0 (with 0 every campaign would have 'reached' it)."""
    if col not in ("method", "plain_condor") or not any(col in r["summary"] for r in results):
        return {k: NA for k in PROBS}
    hits, paths, camps, runs = ({k: 0 for k in PROBS} for _ in range(4))
    for r in results:
        lim, d = r["limits"], r["summary"][col]
        facts = r["campaigns"].get(col, {})
        cap = lim["max_campaign_loss_pct"] * lim["initial_cash"]
        per = {"stopped": d.get("campaigns_stopped", 0),
               "loss_cap_refused": sum(1 for c in facts.values() if c["loss_cap_refusals"]),
               "loss_cap_breached": sum(1 for v in d.get("campaign_pnl", {}).values()
                                        if v < -cap)}
        if col == "method" and lim["max_steps"] > 0:
            per["reached_max_steps"] = sum(1 for c in facts.values()
                                           if c["max_step"] >= lim["max_steps"])
        for k, n in per.items():
            hits[k] += n
            paths[k] += n > 0
            camps[k] += d.get("campaigns", 0)
            runs[k] += 1
    out: dict[str, Any] = {"campaigns": sum(r["summary"][col].get("campaigns", 0)
                                            for r in results)}
    for k in PROBS:
        out[k] = NA if not runs[k] else {
            "per_campaign": round(hits[k] / camps[k], 4) if camps[k] else None,
            "per_path": round(paths[k] / runs[k], 4), "campaigns": hits[k]}
    return out


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    cols: dict[str, Any] = {}
    for col in COLUMNS:
        if not any(col in r["summary"]["comparison"] for r in results):
            continue
        cols[col] = {m: percentiles([_value(r["summary"], col, m) for r in results])
                     for m in METRICS}
        cols[col]["probabilities"] = probabilities(results, col)
    return cols


def _groups(results: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    from bot.montecarlo import point_name

    out: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        out.setdefault(point_name(r["point"]), []).append(r)
    return list(out.items())


def fan(out: Path, results: list[dict[str, Any]]) -> str | None:
    from bot.plotting import pyplot
    from bot.report_charts import COLORS, NAMES

    cols = [c for c in COLUMNS if results and all(c in r["equity"] for r in results)]
    n = min((len(r["equity"]["date"]) for r in results), default=0)
    if not cols or n == 0:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(len(cols), 1, figsize=(10, 2.6 * len(cols)), sharex=True,
                             squeeze=False)
    days = np.arange(1, n + 1)
    for ax, col in zip(axes[:, 0], cols):
        eq = np.array([[np.nan if v is None else v for v in r["equity"][col][:n]]
                       for r in results], dtype=float)
        p = np.nanpercentile(eq, QS, axis=0)
        c = COLORS.get(col, "tab:blue")
        ax.fill_between(days, p[0], p[4], color=c, alpha=0.15, label="5-95%")
        ax.fill_between(days, p[1], p[3], color=c, alpha=0.35, label="25-75%")
        ax.plot(days, p[2], color=c, lw=1.5, label="median")
        ax.set_title(f"{NAMES.get(col, col)}: equity over {len(results)} paths", fontsize=10)
        ax.set_ylabel("USD")
        ax.legend(loc="upper left", fontsize=8)
    axes[-1, 0].set_xlabel("session")
    fig.tight_layout()
    fig.savefig(out / "montecarlo_fan.png", dpi=90)
    plt.close(fig)
    return "montecarlo_fan.png"


def write(out: Path, meta: dict[str, Any], results: list[dict[str, Any]],
          failed: list[dict[str, Any]]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    groups = _groups(results)
    doc = {"run": meta, "columns": aggregate(results),
           "points": [{"point": name, "paths": len(rs), "columns": aggregate(rs)}
                      for name, rs in groups] if meta.get("grid") else [],
           "failed": failed,
           "tasks": [{k: r[k] for k in ("point", "seed", "summary", "campaigns", "timing")}
                     for r in results]}
    (out / "montecarlo.json").write_text(json.dumps(doc, indent=1) + "\n")
    write_equity_csv(out / "equity_paths.csv", results)
    png = fan(out, groups[0][1]) if groups else None
    path = out / "montecarlo.html"
    path.write_text(page(doc, png))
    return path


def write_equity_csv(path: Path, results: list[dict[str, Any]]) -> None:
    """Every task's daily closing equity, long format: point, seed, date, one column each."""
    from bot.montecarlo import point_name

    cols = [c for c in COLUMNS if any(c in r["equity"] for r in results)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["point", "seed", "date", *cols])
        for r in results:
            eq = r["equity"]
            for i, day in enumerate(eq.get("date", [])):
                w.writerow([point_name(r["point"]), r["seed"], day,
                            *("" if c not in eq or eq[c][i] is None else eq[c][i]
                              for c in cols)])


def load(out: Path) -> dict[str, Any]:
    return json.loads((out / "montecarlo.json").read_text())


# --- text and HTML -------------------------------------------------------------------------------
def _f(v: Any, metric: str = "") -> str:
    if v is None:
        return "-"
    if v == NA:
        return NA
    if metric == "max_drawdown" or (isinstance(v, float) and metric == "p"):
        return f"{v * 100:.2f}%"
    return f"{v:,.0f}"


def _pcts(d: Any, metric: str) -> list[str]:
    return [NA] * len(QS) if d == NA else [_f(d[f"p{q}"], metric) for q in QS]


def text(doc: dict[str, Any]) -> str:
    from bot.report import NAMES

    r = doc["run"]
    lines = [f"Monte Carlo: {r['tasks']} tasks ({r['paths']} paths from seed {r['first_seed']}"
             f"{', grid ' + ' x '.join(r['grid']) if r['grid'] else ''}), {r['failed']} failed"]
    for col, d in doc["columns"].items():
        lines.append(f"{NAMES.get(col, col)}:  " + "   ".join(
            f"{m} " + "/".join(_pcts(d[m], m)) for m in ("pnl", "max_drawdown")))
    lines.append("(percentiles 5/25/50/75/95)")
    for p in doc["points"]:
        m = p["columns"].get("method", {})
        lines.append(f"  {p['point']} ({p['paths']} paths): method " + "   ".join(
            f"{k} " + "/".join(_pcts(m.get(k, NA), k)) for k in ("pnl", "max_drawdown")))
    return "\n".join(lines)


SORT_JS = """<script>
document.querySelectorAll('table.sortable th').forEach((th, i) => th.onclick = () => {
  const t = th.closest('table'), rows = [...t.tBodies[0].rows];
  const dir = th.dataset.dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
  const key = r => { const c = r.cells[i], v = parseFloat(c.dataset.v);
                     return isNaN(v) ? c.textContent : v; };
  rows.sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (dir === 'asc' ? 1 : -1); });
  rows.forEach(r => t.tBodies[0].appendChild(r));
});
</script>"""


def _cell(v: Any, metric: str) -> str:
    dv = "" if v in (None, NA) else f' data-v="{v}"'
    return f"<td{dv}>{html.escape(_f(v, metric))}</td>"


def _prob(p: Any) -> str:
    if p == NA or p is None:
        return NA
    pc = p["per_campaign"]
    return (f"{'-' if pc is None else f'{pc * 100:.1f}%'} of campaigns, "
            f"{p['per_path'] * 100:.1f}% of paths")


SWEEP = (("pnl", "P&L"), ("max_drawdown", "max DD"), ("worst_campaign", "worst campaign"),
         ("peak_margin", "peak margin"))


def page(doc: dict[str, Any], png: str | None) -> str:
    from bot.report import NAMES

    r = doc["run"]
    head = "".join(f"<th>p{q}</th>" for q in QS)
    rows = []
    for col, d in doc["columns"].items():
        for m in METRICS:
            rows.append(f"<tr><th>{html.escape(NAMES.get(col, col))}</th><td>{m}</td>"
                        + "".join(f"<td>{html.escape(v)}</td>" for v in _pcts(d[m], m))
                        + "</tr>")
    probs = "".join(
        f"<tr><th>{html.escape(NAMES.get(col, col))}</th>"
        + "".join(f"<td>{html.escape(_prob(d['probabilities'][k]))}</td>" for k in PROBS)
        + "</tr>" for col, d in doc["columns"].items())
    style = ("body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:right}"
             "table{border-collapse:collapse}tr:nth-child(even){background:#f4f4f4}"
             "table.sortable th{cursor:pointer}")
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>condorbot Monte Carlo"
             f"</title><style>{style}</style></head><body>",
             f"<h1>Monte Carlo: {r['tasks']} tasks</h1><p>{html.escape(json.dumps(r))}</p>",
             f"<h2>Percentiles over paths</h2><table><thead><tr><th>column</th><th>metric</th>"
             f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>",
             "<h2>Campaign outcomes</h2><table><thead><tr><th>column</th>"
             + "".join(f"<th>{k}</th>" for k in PROBS) + f"</tr></thead><tbody>{probs}"
             "</tbody></table>"]
    if png:
        parts.append(f"<h2>Equity fan</h2><img src='{png}' alt='equity fan chart'>")
    if doc["points"]:
        hs = "".join(f"<th>{lbl} p{q}</th>" for _, lbl in SWEEP for q in (5, 50, 95))
        body = []
        for p in doc["points"]:
            m = p["columns"].get("method", {})
            cells = "".join(_cell(v, k) for k, _ in SWEEP for v in
                            ([NA] * 3 if m.get(k, NA) == NA else
                             [m[k][f"p{q}"] for q in (5, 50, 95)]))
            st = m.get("probabilities", {}).get("stopped", NA)
            pst = None if st == NA else st["per_path"]
            body.append(f"<tr><td>{html.escape(p['point'])}</td><td data-v='{p['paths']}'>"
                        f"{p['paths']}</td>{cells}{_cell(pst, 'p')}</tr>")
        parts.append("<h2>Sweep (method; click a header to sort)</h2><table class='sortable'>"
                     f"<thead><tr><th>point</th><th>paths</th>{hs}<th>paths stopped</th></tr>"
                     f"</thead><tbody>{''.join(body)}</tbody></table>{SORT_JS}")
    if doc["failed"]:
        parts.append("<h2>Failed tasks</h2><ul>" + "".join(
            f"<li>{html.escape(str(f['point']))} seed {f['seed']}: {html.escape(f['error'])}"
            "</li>" for f in doc["failed"]) + "</ul>")
    return "\n".join(parts) + "</body></html>\n"


def write_sweep_csv(path: Path, results: list[dict[str, Any]]) -> None:
    """One row per task, the columns of the process-pool sweep's sweep.csv plus the seed."""
    from bot.backtest_cli import SWEEP_COLUMNS, sweep_row
    from bot.montecarlo import point_name

    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=(*SWEEP_COLUMNS, "seed"))
        w.writeheader()
        for r in results:
            s = {**r["summary"], "run": {**r["summary"]["run"], **r["timing"]}}
            w.writerow({**sweep_row(point_name(r["point"]), s), "seed": r["seed"]})
