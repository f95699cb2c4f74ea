"""`condorbot status`: what the store says about the daemon, as tables.

Reads only the store (strategy_state, trading_state, control, heartbeat, marks, campaigns): the
trading state and control word, the last heartbeat's market, the legs held (condor and hedge
layers), their marks and greeks, P&L, and the ledger (`strategies.ledger.report`).

P&L means what it says:
- realized: closed trades only. For the condor, the campaign's net cash less the cash received
  for the condor still held (its credit x qty, net of its opening commission, IB's cost basis);
  a condor just sold has realized 0. Hedge layers: the ledger's realized layer P&L.
- unrealized: mark-to-market of what is held: basis + value at mid, and at natural (what
  closing now would cost: buy back at the ask, sell at the bid).

`marks` is written by the running daemon (`mark` on each step's snapshot, see bot.metrics).
Its greeks come from each leg's own implied vol on the chain: delta and vega as the chain
gives them (IB's model greeks on the IB path), gamma and theta Black-Scholes on that vol; VIX
options Black-76 off the VIX future of their expiry. Without marks (no daemon has run since)
greeks are an estimate, labelled as such: one flat vol (VIX / 100 for SPX, 0.9 for VIX), no skew.
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


GREEKS = ("delta", "gamma", "vega", "theta")


def _leg_mark(snap: Any, c: Any) -> dict[str, float]:
    """Bid/ask/mid, implied vol and per-option greeks of one contract on the snapshot."""
    from strategies.pricing import black76_greeks, greeks

    nan = math.nan
    out = {"bid": nan, "ask": nan, "mid": nan, "iv": nan, "underlying": nan,
           **dict.fromkeys(GREEKS, nan)}
    if c.sec_type == "FUT":
        f = snap.vix_futures.get(c.expiry, nan) if c.symbol == "VIX" else snap.spx
        return {**out, "mid": f, "underlying": f, "delta": 1.0, "gamma": 0.0, "vega": 0.0,
                "theta": 0.0}
    vix = c.symbol == "VIX"
    chain = (snap.vix_chains if vix else snap.chains).get(c.expiry)
    if chain is None:
        return out
    try:
        i = chain.index(c.strike)
    except KeyError:
        return out
    call = c.right == "C"
    bid = float((chain.call_bid if call else chain.put_bid)[i])
    ask = float((chain.call_ask if call else chain.put_ask)[i])
    iv = float((chain.call_iv if call else chain.put_iv)[i])
    # a VIX option is an option on the VIX future of its expiry, not on spot VIX
    under = float(snap.vix_futures.get(c.expiry, nan)) if vix else float(snap.spx)
    flag = "c" if call else "p"
    model = (black76_greeks if vix else greeks)(flag, under, c.strike, chain.t, RATE, iv)
    g = {k: float(model[k]) for k in GREEKS}
    for k, arr in (("delta", chain.call_delta if call else chain.put_delta),
                   ("vega", chain.call_vega if call else chain.put_vega)):
        if math.isfinite(float(arr[i])):  # the chain's own (IB model) greeks win
            g[k] = float(arr[i])
    ok = math.isfinite(bid) and math.isfinite(ask) and 0 <= bid <= ask and ask > 0
    return {**out, "bid": bid, "ask": ask, "mid": (bid + ask) / 2 if ok else nan, "iv": iv,
            "underlying": under, **g}


def open_commission(store: Store, camp: Any) -> float:
    """Commission paid to open the condor still held (a share of a combo roll's), per IB's
    cost basis: it is part of the open position, not a realized loss."""
    if camp is None or not camp.legs:
        return 0.0
    rows = [r for r in store.db.execute(
        "SELECT action, filled, commission, blob FROM intents WHERE campaign_id=? AND step=?"
        " AND action IN ('open','roll','roll_open') AND filled > 0 ORDER BY updated_at DESC",
        (camp.id, camp.step)).fetchall()]
    if not rows:
        return 0.0
    r = rows[0]
    share, opened = 1.0, float(r["filled"])
    if r["action"] == "roll":  # close + open in one combo: the open legs' share of it
        from bot import codec

        legs = codec.loads(r["blob"]).legs
        new = legs[len(legs) - len(camp.legs):]
        share = sum(abs(x.ratio) for x in new) / max(1, sum(abs(x.ratio) for x in legs))
        opened = r["filled"] * sum(abs(x.ratio) for x in new) / max(1, len(new))
    return float(r["commission"]) * share * min(1.0, camp.qty / opened if opened else 1.0)


def mark(state: Any, snap: Any, commission_open: float = 0.0) -> dict[str, Any]:
    """Marks, greeks and P&L of everything held, from one snapshot (JSON-ready)."""
    legs, groups = [], []
    tot = dict.fromkeys(GREEKS, 0.0)
    for cid, what, c, q in positions(state):
        m = _leg_mark(snap, c)
        dollars = q * c.multiplier
        nat = m["bid"] if q > 0 else m["ask"]  # what closing it now gets / costs
        if c.sec_type == "FUT":
            nat = m["mid"]
        row = {"campaign": cid, "what": what, "key": c.key, "qty": q, **m,
               "value_mid": dollars * m["mid"], "value_natural": dollars * nat}
        for k in GREEKS:
            row[k] = dollars * m[k]
            if math.isfinite(row[k]):
                tot[k] += row[k]
        legs.append(row)
    for what in dict.fromkeys(r["what"] for r in legs):
        rows = [r for r in legs if r["what"] == what]
        groups.append({"campaign": rows[0]["campaign"], "what": what,
                       "value_mid": sum(r["value_mid"] for r in rows),
                       "value_natural": sum(r["value_natural"] for r in rows)})
    camp = getattr(state, "campaign", None)
    basis = {}
    if camp is not None and camp.legs:
        mult = camp.legs[0].contract.multiplier
        basis[f"condor step {camp.step}"] = camp.credit * camp.qty * mult - commission_open
    for layer in getattr(state, "hedges", ()):
        basis[f"hedge {layer.name} ({layer.status})"] = -layer.cost
    for g in groups:
        g["basis"] = basis.get(g["what"], math.nan)
        g["unrealized_mid"] = g["basis"] + g["value_mid"]
        g["unrealized_natural"] = g["basis"] + g["value_natural"]
    held = basis.get(f"condor step {camp.step}", 0.0) if camp is not None else 0.0
    return {
        "market_time": snap.time.isoformat(), "spx": snap.spx, "vix": snap.vix,
        "legs": legs, "groups": groups, "greeks": tot,
        "contracts": sum(abs(r["qty"]) for r in legs if ":FUT:" not in r["key"]),
        "realized": (camp.realized - held) if camp is not None else 0.0,
        "unrealized_mid": sum(g["unrealized_mid"] for g in groups),
        "unrealized_natural": sum(g["unrealized_natural"] for g in groups),
    }


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


def current_marks(store: Store, state: Any) -> dict[str, Any] | None:
    """The daemon's last marks, if they are of the positions held now (else None)."""
    marks = store.get("marks")
    if not marks or state is None:
        return None
    held = sorted((c.key, q) for _, _, c, q in positions(state))
    return marks if sorted((r["key"], r["qty"]) for r in marks["legs"]) == held else None


def realized(store: Store, state: Any) -> float:
    """The current campaign's condor P&L on closed trades only (see the module docstring)."""
    camp = getattr(state, "campaign", None)
    if camp is None:
        return 0.0
    if not camp.legs:
        return float(camp.realized)
    mult = camp.legs[0].contract.multiplier
    return float(camp.realized - (camp.credit * camp.qty * mult - open_commission(store, camp)))


def render(store: Store, name: str = "") -> str:
    beat = store.get("heartbeat") or {}
    state = store.get("strategy_state")
    marks = current_marks(store, state)
    out = [f"condorbot status  ({name})" if name else "condorbot status"]
    out.append(table(["trading state", "control", "strategy", "last heartbeat (wall)",
                      "market time"],
                     [[store.get("trading_state", "?"), store.get("control", "?"),
                       state.status.value if state else "?", beat.get("wall_time", "-"),
                       beat.get("market_time", "-")]]))
    if beat.get("log_records_lost"):
        out.append(f"log records lost (log disk full?): {beat['log_records_lost']}")
    if beat:
        out.append(table(["SPX", "VIX", "net liquidation", "sessions"],
                         [[_num(beat.get("spx")), _num(beat.get("vix")),
                           _num(beat.get("net_liquidation")), _num(beat.get("sessions"), "d")]]))
    pos = positions(state) if state is not None else []
    out.append("\npositions" + (f"  (marked at {marks['market_time']})" if marks else ""))
    if marks:
        out.append(table(["campaign", "what", "contract", "qty", "bid", "ask", "mid", "iv",
                          "delta $/pt", "vega $/vol pt"],
                         [[r["campaign"], r["what"], r["key"], f"{r['qty']:+d}", _num(r["bid"]),
                           _num(r["ask"]), _num(r["mid"]), _pct(r["iv"]), _num(r["delta"]),
                           _num(r["vega"])] for r in marks["legs"]]))
    elif pos:
        out.append(table(["campaign", "what", "contract", "qty"],
                         [[cid, what, c.key, f"{q:+d}"] for cid, what, c, q in pos]))
    else:
        out.append("  (flat)")
    greeks = marks["greeks"] if marks else beat.get("greeks")
    label = ("  (each leg's implied vol on the chain; VIX options off their future)" if marks
             else "" if greeks else
             "  (estimate, no marks yet: flat vol = VIX for SPX, 0.9 on spot VIX for VIX "
             "options, no skew)")
    out.append("\ngreeks" + label)
    if greeks is None and pos and beat.get("spx") and beat.get("vix"):
        when = beat.get("market_time")
        now = datetime.fromisoformat(when) if when else datetime.now(UTC)
        greeks = estimate_greeks(pos, float(beat["spx"]), float(beat["vix"]), now)
    if greeks:
        out.append(table(["delta $/pt", "gamma $/pt2", "vega $/vol pt", "theta $/day"],
                         [[_num(greeks.get(k)) for k in GREEKS]]))
    else:
        out.append("  -")
    camp = getattr(state, "campaign", None)
    real = realized(store, state)
    out.append("\nP&L  (realized: closed trades only; unrealized: marked to market)")
    out.append(table(["realized", "unrealized at mid", "unrealized at natural"],
                     [[_num(real), _num(marks["unrealized_mid"]) if marks else "-",
                       _num(marks["unrealized_natural"]) if marks else "-"]]))
    if marks and marks["groups"]:
        out.append(table(["what", "basis (cash in)", "value at mid", "value at natural",
                          "unrealized mid", "unrealized natural"],
                         [[g["what"], _num(g["basis"]), _num(g["value_mid"]),
                           _num(g["value_natural"]), _num(g["unrealized_mid"]),
                           _num(g["unrealized_natural"])] for g in marks["groups"]]))
    if camp is not None:
        out.append("\ncampaign")
        out.append(table(["campaign", "step", "qty", "credit/unit", "net cash", "realized",
                          "premium", "entered"],
                         [[camp.id, camp.step, camp.qty, _num(camp.credit), _num(camp.realized),
                           _num(real), _num(camp.premium),
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
                         [[r["id"], r["status"], r["step"],
                           _num(real if camp is not None and r["id"] == camp.id else r["pnl"]),
                           (r["opened_at"] or "-")[:16], (r["closed_at"] or "-")[:16]]
                          for r in rows[-10:]]))
    else:
        out.append("  (no campaigns yet)")
    return "\n".join(out)
