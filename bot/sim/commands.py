"""`condorbot simulate` (a scenario's daily market to CSV and PNG) and `condorbot scenarios`.

    condorbot simulate --scenario crash_2020 --days 60 --seed 7 --out out/
writes out/market.csv (one row per session: date, SPX OHLC, VIX close, front and second VIX
futures with their expiries, A/D line, and at the close the surface checks: `vix_surface`,
the Cboe VIX formula run on the simulated SPX options, `atm_iv_30d` and `put25_iv_30d`, the
30-day ATM and 25-delta put vols, `skew_25d` their difference) and out/market.png (SPX; VIX
with its futures, the surface-implied VIX and ATM vol; the 25-delta skew; the VIX futures
curve on three days; the A/D line). Exit codes: 0 done, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

from bot.sim import scenarios as scn
from strategies import expiry as xp

DEFAULT_START = date(2026, 1, 5)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="write a scenario's daily market to CSV and a PNG chart")
    p.add_argument("--scenario", default="calm", help="scenario name or replay:PATH.csv")
    p.add_argument("--days", type=int, default=60, help="trading sessions to generate")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default="simulated", help="output directory")
    p.add_argument("--start", type=date.fromisoformat, default=None,
                   help=f"first session (YYYY-MM-DD; the next session if closed; default "
                        f"{DEFAULT_START}; a replay runs on its file's dates)")
    p.set_defaults(handler=simulate)
    s = sub.add_parser("scenarios", help="list the market scenarios, one line each")
    s.set_defaults(handler=list_scenarios)


def list_scenarios(args: argparse.Namespace) -> int:
    width = max(len(n) for n in scn.SCENARIOS)
    for name, sc in scn.SCENARIOS.items():
        print(f"{name:<{width}}  {sc.summary}")
    print(f"{'replay:PATH':<{width}}  replay a CSV of daily SPX and VIX closes "
          "(columns date, spx, vix)")
    return 0


def generate(scenario: str, days: int, seed: int, start: date | None = None):
    """(rows, curves): one dict per session, and the VIX curve [(days out, price)] per date.
    A replay starts on its file's first anchored date (ValueError if `start` says otherwise)."""
    from bot.sim.market import Market, index_session
    from bot.sim.surface import atm_and_put25
    from bot.sim.surface_vix import surface_vix

    sc = scn.get(scenario)
    if sc.dates:
        if start is not None and start != sc.dates[0]:
            raise ValueError(f"a replay runs on its file's dates (from {sc.dates[0]}); "
                             f"drop --start {start}")
        start = sc.dates[0]
    start = start or DEFAULT_START
    begin = datetime.combine(start, time(9, 30), tzinfo=xp.NY)
    m = Market(sc, seed, begin)
    rows: list[dict] = []
    curves: dict[date, list[tuple[int, float]]] = {}
    d = start
    while len(rows) < days:
        s = index_session(d)
        if s is not None and s[1] > begin:
            m.advance_to(s[1])
            bar = m.bars.iloc[-1]
            fut = m.vix_futures(s[1])
            exps = list(fut)
            atm, put25 = atm_and_put25(m)
            rows.append({
                "date": d.isoformat(), "spx_open": round(float(bar.open), 2),
                "spx_high": round(float(bar.high), 2), "spx_low": round(float(bar.low), 2),
                "spx_close": round(float(bar.close), 2), "vix": round(float(bar.vix), 2),
                "vix_front": fut[exps[0]], "vix_front_expiry": exps[0].isoformat(),
                "vix_second": fut[exps[1]], "vix_second_expiry": exps[1].isoformat(),
                "ad_line": round(float(bar.ad_line), 1),
                "vix_surface": round(surface_vix(m), 2), "atm_iv_30d": round(atm, 2),
                "put25_iv_30d": round(put25, 2), "skew_25d": round(put25 - atm, 2),
            })
            curves[d] = [(0, float(bar.vix))] + [((e - d).days, p) for e, p in fut.items()]
        d += timedelta(days=1)
    return rows, curves


def simulate(args: argparse.Namespace) -> int:
    if args.days < 1:
        print("condorbot simulate: --days must be at least 1", file=sys.stderr)
        return 2
    try:
        rows, curves = generate(args.scenario, args.days, args.seed, args.start)
    except ValueError as e:
        print(f"condorbot simulate: {e}", file=sys.stderr)
        return 2
    import pandas as pd

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    df.to_csv(out / "market.csv", index=False)
    _plot(df, curves, out / "market.png", f"{args.scenario} (seed {args.seed})")
    peak = df.loc[df.vix.idxmax()]
    gap = (df.vix_surface - df.vix).abs().max()
    print(f"simulate: {len(df)} sessions of {args.scenario} -> {out / 'market.csv'}, "
          f"{out / 'market.png'}; SPX {df.spx_close.iloc[0]:.0f} -> {df.spx_close.iloc[-1]:.0f}, "
          f"VIX peak {peak.vix:.2f} on {peak.date}; surface VIX within {gap:.2f} of VIX, "
          f"25-delta skew {df.skew_25d.min():.1f}-{df.skew_25d.max():.1f} points")
    return 0


def _plot(df, curves, path: Path, title: str) -> None:
    from bot.plotting import pyplot

    plt = pyplot()
    import pandas as pd

    dates = pd.to_datetime(df.date)
    fig, ax = plt.subplots(5, 1, figsize=(11, 15), height_ratios=[3, 2, 1.4, 2, 1.4])
    a = ax[0]
    a.fill_between(dates, df.spx_low, df.spx_high, color="tab:blue", alpha=0.25, label="high-low")
    a.plot(dates, df.spx_close, color="tab:blue", lw=1.5, label="SPX close")
    a.set_ylabel("SPX")
    a.set_title(f"Simulated market: {title}")
    a.legend(loc="best")
    a = ax[1]
    a.plot(dates, df.vix, color="black", lw=1.5, label="VIX")
    a.plot(dates, df.vix_surface, color="magenta", lw=2, ls=":",
           label="Cboe VIX formula on the simulated SPX options")
    a.plot(dates, df.atm_iv_30d, color="tab:green", lw=1, label="30-day ATM vol")
    a.plot(dates, df.vix_front, color="tab:red", lw=1, label="front future")
    a.plot(dates, df.vix_second, color="tab:orange", lw=1, ls="--", label="second future")
    a.set_ylabel("VIX")
    a.legend(loc="best")
    a = ax[2]
    a.plot(dates, df.skew_25d, color="tab:purple", lw=1.2)
    a.axhspan(4, 7, color="tab:purple", alpha=0.08, label="calm markets: 4-7 points")
    a.set_ylabel("25d put - ATM\n(30 days, points)")
    a.legend(loc="best")
    a = ax[3]
    peak = pd.Timestamp(dates[df.vix.idxmax()]).date()
    picks = {"first day": min(curves), "VIX peak": peak, "last day": max(curves)}
    for (label, d), color in zip(picks.items(), ("tab:green", "tab:red", "tab:purple")):
        xs, ys = zip(*curves[d])
        a.plot(xs, ys, marker="o", color=color, label=f"{label} {d}")
    a.set_xlabel("days to expiry (0 = spot VIX)")
    a.set_ylabel("VIX futures curve")
    a.legend(loc="best")
    a = ax[4]
    a.plot(dates, df.ad_line, color="tab:gray")
    a.set_ylabel("NYSE A/D line")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
