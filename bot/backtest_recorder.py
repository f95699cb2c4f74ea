"""The backtest's recorder: a daemon step hook + log listener that keeps, as plain data,
the tick series (time, net liquidation, initial margin, option contracts held, SPX, VIX,
roll fund, trading state, condor strikes), every order event as a trades row, the method's
events, and costs (commissions; paid beyond the combo mid at decision time, per fill)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot import codec

TRADE_COLUMNS = ("time", "kind", "campaign", "step", "layer", "action", "key", "qty", "price",
                 "commission", "reason")
ORDER_EVENTS = {"order.submitted": "order", "order.walked": "walk", "order.filled": "fill",
                "order.cancelled": "cancel", "order.rejected": "reject",
                "risk.rejected": "risk_reject"}
TICK_COLUMNS = ("time", "equity", "margin", "contracts", "spx", "vix", "fund", "campaign_fund",
                "state", "long_put", "short_put", "short_call", "long_call")
KEPT_EVENTS = ("campaign.entered", "campaign.rolled", "campaign.closed", "campaign.stopped",
               "roll.step", "hedge.opened", "hedge.monetized", "hedge.closed",
               "ledger.credited", "ledger.debited", "ledger.carried", "risk.state")

def _strikes(camp: Any) -> tuple[float, float, float, float]:
    """(long put, short put, short call, long call) of the condor held, NaN when flat."""
    nan = math.nan
    if camp is None or not camp.legs:
        return nan, nan, nan, nan
    lp = sp = sc = lc = nan
    for leg in camp.legs:
        c = leg.contract
        if c.right == "P":
            sp, lp = (c.strike, lp) if leg.ratio < 0 else (sp, c.strike)
        else:
            sc, lc = (c.strike, lc) if leg.ratio < 0 else (sc, c.strike)
    return lp, sp, sc, lc


def _reason(intent: Any) -> str:
    r = intent.reason or {}
    if r.get("triggers"):
        return "roll:" + "+".join(str(t.get("trigger")) for t in r["triggers"])
    return str(r.get("trigger") or r.get("tag") or "")


@dataclass
class Recorder:
    """Step hook + log listener of one daemon run. Everything it keeps is plain data."""

    progress: Callable[[int], None] | None = None
    extra_hooks: list[Any] = field(default_factory=list)
    ticks: dict[str, list[Any]] = field(default_factory=lambda: {k: [] for k in TICK_COLUMNS})
    costs: dict[str, float] = field(default_factory=lambda: {
        "fills": 0, "commissions": 0.0, "vs_mid": 0.0})
    trades: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    daemon: Any = None
    _intents: dict[str, Any] = field(default_factory=dict)
    _sessions: int = 0
    _append: Any = None  # (ticks, each column's list.append)
    _funds: Any = None  # (ledger, campaign id, balance, campaign fund) of the last step
    _held: Any = None  # (legs, their strikes) of the last step
    _contracts: Any = None  # (positions, contracts held) of the last step

    def hook(self, d: Any, snap: Any) -> None:
        t = self.ticks
        if self._append is None or self._append[0] is not t:
            self._append = (t, tuple(t[k].append for k in TICK_COLUMNS))
        (a_time, a_equity, a_margin, a_contracts, a_spx, a_vix, a_fund, a_cfund, a_state,
         a_lp, a_sp, a_sc, a_lc) = self._append[1]
        st = d.state
        camp = st.campaign
        led = st.ledger
        cid = camp.id if camp is not None else None
        # the ledger (frozen) and the held legs change a few times a campaign: their columns
        # are read again only when the object (or the campaign) is another one
        got = self._funds
        if got is None or got[0] is not led or got[1] != cid:
            got = self._funds = (led, cid, led.balance,
                                 led.fund(cid) if cid is not None else math.nan)
        legs = camp.legs if camp is not None else None
        held = self._held
        if held is None or held[0] is not legs:
            held = self._held = (legs, _strikes(camp))
        acct = snap.account
        a_time(snap.time)
        a_equity(acct.net_liquidation)
        a_margin(acct.init_margin)
        ps = snap.positions  # (one tuple while nothing trades: counted once)
        n = self._contracts
        if n is None or n[0] is not ps:
            n = self._contracts = (ps, sum(abs(p.qty) for p in ps))
        a_contracts(n[1])
        a_spx(snap.spx)
        a_vix(snap.vix)
        a_fund(got[2])
        a_cfund(got[3])
        a_state(d.guard.state)
        lp, sp, sc, lc = held[1]
        a_lp(lp)
        a_sp(sp)
        a_sc(sc)
        a_lc(lc)
        for h in self.extra_hooks:
            h(d, snap)
        if self.progress is not None and d.sessions != self._sessions:
            self._sessions = d.sessions
            self.progress(d.sessions)

    def _intent(self, key: str) -> Any:
        if key in self._intents:
            return self._intents[key]
        d, found = self.daemon, None
        # an order the executor works is read from it (the intent the store holds, without
        # decoding its row: a decode per order key was ~0.8% of a backtest, py-spy)
        w = d.executor.working.get(key) if d is not None else None
        row = d.store.intent(key) if d is not None and w is None else None
        if w is not None:
            found = w.intent
        elif row is not None:
            found = codec.loads(row["blob"])
        elif d is not None:
            pend = [d.state.pending] + [layer.pending for layer in d.state.hedges]
            found = next((p for p in pend if p is not None and p.key == key), None)
        self._intents[key] = found
        return found

    def _cost(self, ev: dict[str, Any], it: Any) -> None:
        """Commissions, and what each fill paid beyond the combo's mid at decision time
        (signed per-unit prices, debit > 0: a fill above mid paid the difference)."""
        c = self.costs
        c["fills"] += 1
        c["commissions"] += float(ev.get("commission") or 0.0)
        price, qty = ev.get("price"), ev.get("qty")
        if it is not None and price is not None and qty and math.isfinite(it.mid):
            c["vs_mid"] += (float(price) - it.mid) * float(qty) * it.legs[0].contract.multiplier

    def listen(self, ev: dict[str, Any]) -> None:
        name = ev.get("event")
        if ev.get("level") in ("error", "critical"):
            self.errors.append({k: str(v) for k, v in ev.items()})
        kind = ORDER_EVENTS.get(name)  # type: ignore[arg-type]
        if kind is not None:
            key = ev.get("key", "")
            it = self._intent(key)
            price = ev.get("price", ev.get("limit"))
            self.trades.append({
                "time": ev.get("market_time"), "kind": kind,
                "campaign": ev.get("campaign") or (it.campaign_id if it else ""),
                "step": it.step if it else ev.get("step", ""),
                "layer": (it.layer if it else ev.get("layer")) or "",
                "action": it.action if it else ev.get("action", ""), "key": key,
                "qty": ev.get("qty", it.qty if it and kind in ("order", "risk_reject") else ""),
                "price": "" if price is None else price,
                "commission": ev.get("commission", ""),
                "reason": (_reason(it) if it else "") if kind != "risk_reject"
                else f"{ev.get('code')}",
            })
            if kind == "fill":
                self._cost(ev, it)
        elif name in KEPT_EVENTS:
            self.events.append(dict(ev))
