"""`condorbot status`: what the store says about the daemon, as tables.

Reads only the store (strategy_state, trading_state, control, heartbeat, campaigns): the
trading state and control word, the last heartbeat's market, the legs held (condor and hedge
layers), their greeks, realized P&L per campaign, and the ledger (`strategies.ledger.report`).

Greeks: a heartbeat that carries `greeks` (position totals from the daemon's own chains) is
shown as it is. Otherwise they are an estimate, labelled as such: Black-Scholes on SPX legs and
Black-76 on VIX legs (underlying = the heartbeat's SPX / VIX), one flat volatility (VIX / 100
for SPX, 0.9 for VIX options), no skew, r = 4%.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from bot.config import Settings
from bot.store import Store, locate
from strategies import expiry as xp
from strategies import ledger as lg

NUMERIC = re.compile(r"^[+-]?[\d,]*\.?\d+%?$")
RATE = 0.04
VIX_VOL = 0.9


def _num(v: Any, fmt: str = ",.2f") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, fmt) if isinstance(v, (int, float)) else str(v)


def _pct(v: Any) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v * 100:.1f}%"


def table(headers: list[str], rows: Iterable[Iterable[Any]], indent: str = "  ") -> str:
    """A plain text table: left-aligned text, right-aligned numbers."""
    rows = [[("" if c is None else c) for c in r] for r in rows]
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    right = [bool(cells) and all(NUMERIC.match(r[i]) for r in cells if r[i] not in ("", "-"))
             for i in range(len(headers))]

    def line(vals: list[str]) -> str:
        return indent + "  ".join(v.rjust(w) if rt else v.ljust(w)
                                  for v, w, rt in zip(vals, widths, right)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(c) for c in cells])


def positions(state: Any) -> list[tuple[str, str, Any, int]]:
    """(campaign, what, contract, signed qty) for the condor legs and every hedge layer's legs."""
    out: list[tuple[str, str, Any, int]] = []
    camp = getattr(state, "campaign", None)
    if camp is not None and camp.legs:
        for leg in camp.legs:
            out.append((camp.id, f"condor step {camp.step}", leg.contract, leg.ratio * camp.qty))
    for layer in getattr(state, "hedges", ()):
        for leg in layer.legs:
            out.append((layer.campaign_id, f"hedge {layer.name} ({layer.status})", leg.contract,
                        leg.ratio * layer.qty))
    return out


def estimate_greeks(pos: list[tuple[str, str, Any, int]], spx: float, vix: float,
                    now: datetime) -> dict[str, float]:
    """Position totals (dollars per point / per vol point / per day) from a flat-vol model."""
    from strategies.pricing import black76_greeks, greeks

    tot = {"delta": 0.0, "gamma": 0.0, "vega": 0.0, "theta": 0.0}
    for _, _, c, q in pos:
        t = xp.year_fraction(c.expiry, now)
        if t <= 0 or c.sec_type != "OPT":
            if c.sec_type == "FUT":
                tot["delta"] += q * c.multiplier
            continue
        flag = "c" if c.right == "C" else "p"
        if c.symbol == "SPX":
            g = greeks(flag, spx, c.strike, t, RATE, vix / 100.0)
        else:
            g = black76_greeks(flag, vix, c.strike, t, RATE, VIX_VOL)
        for k in tot:
            v = float(g[k])
            if math.isfinite(v):
                tot[k] += v * q * c.multiplier
    return tot


def show(settings: Settings) -> int:
    path = locate(settings.store_path)
    if path is None:
        print(f"no store yet at {settings.store_path} (has the daemon run?)")
        return 1
    store = Store(path)
    try:
        print(render(store, str(path)))
    finally:
        store.close()
    return 0


def render(store: Store, name: str = "") -> str:
    beat = store.get("heartbeat") or {}
    state = store.get("strategy_state")
    out = [f"condorbot status  ({name})" if name else "condorbot status"]
    out.append(table(["trading state", "control", "strategy", "last heartbeat (wall)",
                      "market time"],
                     [[store.get("trading_state", "?"), store.get("control", "?"),
                       state.status.value if state else "?", beat.get("wall_time", "-"),
                       beat.get("market_time", "-")]]))
    if beat:
        out.append(table(["SPX", "VIX", "net liquidation", "sessions"],
                         [[_num(beat.get("spx")), _num(beat.get("vix")),
                           _num(beat.get("net_liquidation")), _num(beat.get("sessions"), "d")]]))
    pos = positions(state) if state is not None else []
    out.append("\npositions")
    if pos:
        out.append(table(["campaign", "what", "contract", "qty"],
                         [[cid, what, c.key, f"{q:+d}"] for cid, what, c, q in pos]))
    else:
        out.append("  (flat)")
    out.append("\ngreeks" + ("" if beat.get("greeks") else
                             "  (estimate: flat vol = VIX for SPX, 0.9 for VIX options, no skew)"))
    greeks = beat.get("greeks")
    if greeks is None and pos and beat.get("spx") and beat.get("vix"):
        when = beat.get("market_time")
        now = datetime.fromisoformat(when) if when else datetime.now(UTC)
        greeks = estimate_greeks(pos, float(beat["spx"]), float(beat["vix"]), now)
    if greeks:
        out.append(table(["delta $/pt", "gamma $/pt2", "vega $/vol pt", "theta $/day"],
                         [[_num(greeks.get(k)) for k in ("delta", "gamma", "vega", "theta")]]))
    else:
        out.append("  -")
    camp = getattr(state, "campaign", None)
    if camp is not None:
        out.append("\ncampaign P&L")
        out.append(table(["campaign", "step", "qty", "credit/unit", "realized", "premium",
                          "entered"],
                         [[camp.id, camp.step, camp.qty, _num(camp.credit), _num(camp.realized),
                           _num(camp.premium),
                           camp.entered_at.isoformat() if camp.entered_at else "-"]]))
    if state is not None:
        rep = lg.report(state.ledger)
        out.append("\nledger (roll fund)")
        funds = ", ".join(f"{k} {_num(v)}" for k, v in rep["funds"].items()) or "-"
        out.append(table(["open funds", "carried", "credits", "debits", "drawn by rolls"],
                         [[funds, _num(rep["carried"]), _num(rep["credits"]),
                           _num(rep["debits"]), _num(rep["drawn"])]]))
        if rep["layers"]:
            out.append(table(["hedge layer", "realized P&L", "IRR"],
                             [[k, _num(v["pnl"]), _pct(v["irr"])]
                              for k, v in rep["layers"].items()]))
    rows = store.campaigns()
    out.append("\ncampaigns (last 10)")
    if rows:
        out.append(table(["campaign", "status", "step", "realized P&L", "opened", "closed"],
                         [[r["id"], r["status"], r["step"], _num(r["pnl"]),
                           (r["opened_at"] or "-")[:16], (r["closed_at"] or "-")[:16]]
                          for r in rows[-10:]]))
    else:
        out.append("  (no campaigns yet)")
    return "\n".join(out)
