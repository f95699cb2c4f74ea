"""Baselines computed over the same simulated market as a backtest.

Cboe CNDR rules (`Cndr`, a daemon step hook: it reads the very snapshots the daemon decides
on, so it sees the same chains and the same path, and places nothing):
  - on each roll date (the standard monthly SPX expiration, after the AM settlement) open one
    iron condor on the next monthly expiry: sell the put and the call whose |delta| is nearest
    0.20, buy the put and the call whose |delta| is nearest 0.05 (beyond the shorts);
  - enter at the first decision tick at or after 11:30 New York (Cboe's indexes price their
    new options around 11:30-12:00), through the broker's own fill model
    (bot.sim.fills.FillModel, the object the method's orders fill through: same seed, same
    commission schedule), walked as the daemon's executor walks a combo limit (mid, then
    toward natural in `orders.walk_steps` limits, one draw each; a step that does not fill
    is retried at the next tick). Without a model (unit tests): at leg mids, `commission`
    a contract, as the index itself assumes;
  - hold to expiry; cash-settle at the SPX opening print of expiry day (AM SET), the value
    the SimBroker settles at;
  - collateral: the wider wing's width x 100 x qty (the maximum loss plus the premium). Its
    T-bill interest at the short rate, continuously compounded over calendar time while a
    condor is held, is kept per cycle for `return_on_collateral` (as the index counts it);
    the account's equity (`daily`) carries no interest of its own: the backtest credits
    the same account interest to every column (bot.money).
  The first condor is opened on the first day of the run, on the first monthly expiry at
  least `MIN_DTE` days away (the index itself would have rolled into it on the previous
  expiration). Size: `qty` condors (the backtest passes strategy.base_qty), so dollar P&L
  compares one to one with the method and the plain condor on the same account.
  `return_on_collateral` chains each cycle's (P&L + interest) / collateral, as the index
  does.
Buy-and-hold SPX (`buy_and_hold`): the initial cash in SPX at the run's first tick, total
return: the dividend yield is reinvested continuously (price x e^(q t), t calendar years).

Plain condor (`plain_decide`): the method's own decision function with what a trader means
by "a plain iron condor": the same entry, held to the same take-profit or time exit, closed
by a stop when its loss (close cost at mid minus the credit) reaches `plain_stop_mult` x the
credit; never rolled, never hedged, and NOT closed when a roll trigger fires (the method's
`max_steps: 0` would stop it at the first test). A stop is a normal close (no cooldown).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.sim.market import settle_at  # expiry.settlement_time, cached
from strategies import expiry as xp

if TYPE_CHECKING:
    from bot.sim.fills import FillModel

SHORT_DELTA = 0.20
LONG_DELTA = 0.05
MIN_DTE = 21
ENTRY_TIME = time(11, 30)


def pick_strikes(chain: Any, spx: float) -> tuple[float, float, float, float] | None:
    """(long put, short put, short call, long call) by CNDR deltas; None if no valid quotes."""
    ks = chain.strikes
    ok_p = np.isfinite(chain.put_delta) & np.isfinite(chain.put_bid) & (chain.put_ask > 0)
    ok_c = np.isfinite(chain.call_delta) & np.isfinite(chain.call_bid) & (chain.call_ask > 0)

    def nearest(mask: np.ndarray, delta: np.ndarray, target: float) -> int | None:
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return None
        return int(idx[np.argmin(np.abs(np.abs(delta[idx]) - target))])

    sp = nearest(ok_p & (ks < spx) & (chain.put_bid > 0), chain.put_delta, SHORT_DELTA)
    sc = nearest(ok_c & (ks > spx) & (chain.call_bid > 0), chain.call_delta, SHORT_DELTA)
    if sp is None or sc is None:
        return None
    lp = nearest(ok_p & (ks < ks[sp]), chain.put_delta, LONG_DELTA)
    lc = nearest(ok_c & (ks > ks[sc]), chain.call_delta, LONG_DELTA)
    if lp is None or lc is None:
        return None
    return float(ks[lp]), float(ks[sp]), float(ks[sc]), float(ks[lc])


def _mid(chain: Any, strike: float, right: str) -> float:
    bid, ask = chain.quote(strike, right)
    return float((bid + ask) / 2.0)


def condor_value(chain: Any, strikes: tuple[float, float, float, float]) -> float:
    """Per-unit value of the held condor (long wings minus shorts, at mids): <= 0."""
    lp, sp, sc, lc = strikes
    prefetch = getattr(chain, "prefetch", None)  # the simulator's chains: price all four at once
    if prefetch is not None:
        prefetch(list(strikes))
    return (_mid(chain, lp, "P") - _mid(chain, sp, "P") - _mid(chain, sc, "C")
            + _mid(chain, lc, "C"))


def settle_value(strikes: tuple[float, float, float, float], s: float) -> float:
    lp, sp, sc, lc = strikes
    return (max(lp - s, 0.0) - max(sp - s, 0.0) - max(s - sc, 0.0) + max(s - lc, 0.0))


class Cndr:
    """CNDR rules as a step hook: hook(daemon, snapshot). Results in `daily` and `cycles`."""

    def __init__(self, initial_cash: float, qty: int = 1, commission: float = 0.65,
                 rate: float | None = None, fills: FillModel | None = None, walk_steps: int = 4,
                 max_slippage: float = 1.0) -> None:
        self.cash = float(initial_cash)
        self.initial = float(initial_cash)
        self.qty = qty
        self.commission = commission
        self.rate = rate
        self.pos: dict[str, Any] | None = None
        self.last_time: datetime | None = None
        self.done_expiry: date | None = None  # the expiry just settled: roll today
        self._daily: dict[date, float] = {}
        self.cycles: list[dict[str, Any]] = []
        self._mark = 0.0
        # the held condor is marked lazily (`mark`): the (chains, expiry) of the snapshots since
        # its last mark, newest last - only a day's last value is kept (`daily`), so a step
        # does not price four legs that the next step's mark replaces. The same values: each
        # snapshot's chains keep the prices of their own minute.
        self._unmarked: list[tuple[Any, date]] = []
        self._day_rec: tuple[date, float, bool] | None = None  # last step: day, cash, held
        # the position the simulator was last told to keep rows of (`ChainBook.watch`: the
        # day's last mark, read next morning, finds them instead of pricing its four legs)
        self._watched: dict[str, Any] | None = None
        self.peak_collateral = 0.0
        self.fees_paid = 0.0
        self.n_fills = 0
        self.vs_mid = 0.0  # USD paid beyond the legs' mids
        # the broker's own bot.sim.fills.FillModel (taken from the daemon's broker when run as
        # a hook); None: at leg mids with `commission` a contract (the index's convention)
        self.fill_model = fills
        self.walk_steps, self.max_slippage = walk_steps, max_slippage

    @property
    def mark(self) -> float:
        """Value of the held condor at the latest snapshot whose chain quoted it (USD)."""
        if self._unmarked:
            assert self.pos is not None
            strikes = self.pos["strikes"]
            for chains, expiry in reversed(self._unmarked):
                chain = chains.get(expiry)
                if chain is None:
                    continue
                try:
                    self._mark = condor_value(chain, strikes) * 100 * self.qty
                    break
                except KeyError:
                    continue
            self._unmarked.clear()
        return self._mark

    @mark.setter
    def mark(self, value: float) -> None:
        self._unmarked.clear()
        self._mark = value

    @property
    def daily(self) -> dict[date, float]:
        """Cash plus the held condor's mark at each day's last snapshot."""
        self._close_day()
        return self._daily

    def _close_day(self) -> None:
        rec = self._day_rec
        if rec is not None:
            day, cash, held = rec
            self._daily[day] = cash + (self.mark if held else 0.0)

    def __call__(self, d: Any, snap: Any) -> None:
        if self.fill_model is None:
            self.fill_model = getattr(d.broker, "fills", None)
        if self.rate is None:
            from bot import money

            self.rate = money.money_rules(d.broker.market.scenario).short_rate
        rate = self.rate
        opens = d.broker.market.opens
        self.on_snapshot(snap, rate, opens)
        if self.pos is not self._watched:  # entered or settled: tell the simulator (`watch`)
            self._watched = self.pos
            watch = getattr(getattr(d.broker, "book", None), "watch", None)
            if watch is not None:
                p = self.pos
                watch([] if p is None else [("SPX", p["expiry"], float(k)) for k in p["strikes"]])

    def on_snapshot(self, snap: Any, rate: float, opens: dict[date, tuple[float, float]]) -> None:
        now = snap.time
        today = xp.exchange_date(now)
        if self._day_rec is not None and self._day_rec[0] != today:
            self._close_day()  # the last step's day is over: its value is final
        p = self.pos
        if p is not None and self.last_time is not None:
            dt = (now - self.last_time).total_seconds() / (365.0 * 86400.0)
            # the index's T-bill interest on collateral, per cycle; not added to the account
            # (every column's account earns the same interest: bot.money)
            p["interest"] += p["collateral"] * math.expm1(rate * dt)
        self.last_time = now
        if p is not None and now >= settle_at(p["expiry"]) and p["expiry"] in opens:
            self._settle(opens[p["expiry"]][0])
            p = None
        if p is None and snap.market_open and now.astimezone(xp.NY).time() >= ENTRY_TIME:
            self._enter(snap)
        p = self.pos
        if p is not None:  # marked when read (`mark`: at the newest snapshot that quotes it)
            if p["expiry"] in snap.chains:
                # this snapshot quotes the condor (its strikes were listed at entry, and a
                # listed strike stays listed), so `mark` never reads the ones before it: they
                # are let go now, not held to the day's end (holding a day's chains cost 4-8%
                # of a one-year backtest's CPU time, in runs paired on the two cores)
                self._unmarked.clear()
            self._unmarked.append((snap.chains, p["expiry"]))
        self._day_rec = (today, self.cash, self.pos is not None)

    def _enter(self, snap: Any) -> None:
        exps = [e for e in sorted(snap.chains) if xp.dte(e, snap.time) >= MIN_DTE]
        if not exps:
            return
        exp = exps[0]
        chain = snap.chains[exp]
        strikes = pick_strikes(chain, snap.spx)
        if strikes is None:
            return
        mid = condor_value(chain, strikes)  # per unit, signed: a credit is < 0
        price = self._fill(chain, strikes, mid, f"cndr:{exp}:{snap.time.isoformat()}")
        if price is None:
            return  # not filled: tried again at the next tick
        credit = -price
        fm = self.fill_model
        fee = fm.commission(4 * self.qty) if fm is not None else 4 * self.qty * self.commission
        self.vs_mid += (price - mid) * 100 * self.qty
        lp, sp, sc, lc = strikes
        width = max(sp - lp, lc - sc)
        self.cash += credit * 100 * self.qty - fee
        self.fees_paid += fee
        self.n_fills += 1
        self.mark = -credit * 100 * self.qty
        self.peak_collateral = max(self.peak_collateral, width * 100 * self.qty)
        self.pos = {"expiry": exp, "strikes": strikes, "credit": credit, "fees": fee,
                    "opened": snap.time, "collateral": width * 100 * self.qty, "interest": 0.0,
                    "spx": snap.spx}

    def _fill(self, chain: Any, strikes: tuple[float, float, float, float], mid: float,
              key: str) -> float | None:
        """The open's per-unit price through the fill model, walked as the daemon's executor
        walks (bot.orders: mid, then toward natural in `walk_steps` limits, one draw each);
        at mid without a model."""
        fm = self.fill_model
        if fm is None:
            return mid
        from strategies import walk
        from strategies.instruments import INSTRUMENTS

        tick = INSTRUMENTS["SPXW"].complex_tick  # a condor: the complex order's net tick
        lp, sp, sc, lc = strikes
        natural = (chain.quote(lp, "P")[1] - chain.quote(sp, "P")[0]
                   - chain.quote(sc, "C")[0] + chain.quote(lc, "C")[1])
        n = self.walk_steps
        for step in range(n):
            limit = walk.limit(mid, natural, step, n, self.max_slippage, tick)
            got = fm.fill(limit, mid, natural, 4, f"{key}:{step}")
            if got is not None:
                return got
        return None

    def _settle(self, s: float) -> None:
        p = self.pos
        assert p is not None
        payoff = settle_value(p["strikes"], s) * 100 * self.qty
        self.cash += payoff
        pnl = p["credit"] * 100 * self.qty - p["fees"] + payoff
        self.cycles.append({
            "expiry": p["expiry"].isoformat(), "opened": p["opened"].isoformat(),
            "strikes": list(p["strikes"]), "credit": round(p["credit"], 2),
            "settle_spx": round(s, 2), "pnl": round(pnl, 2),
            "interest": round(p["interest"], 2), "collateral": p["collateral"]})
        self.pos = None
        self.mark = 0.0

    def summary(self) -> dict[str, Any]:
        growth = 1.0
        for c in self.cycles:
            growth *= 1.0 + (c["pnl"] + c["interest"]) / c["collateral"]
        held = None
        pnls = [c["pnl"] for c in self.cycles]
        if self.pos is not None:  # marked at the last snapshot: part of the worst cycle
            p = self.pos
            open_pnl = p["credit"] * 100 * self.qty - p["fees"] + self.mark
            held = {"expiry": p["expiry"].isoformat(), "strikes": list(p["strikes"]),
                    "credit": round(p["credit"], 2), "pnl_marked": round(open_pnl, 2)}
            pnls.append(round(open_pnl, 2))
        return {"cycles": len(self.cycles), "settled": self.cycles, "open": held,
                "return_on_collateral": growth - 1.0 if self.cycles else None,
                "worst_cycle": min(pnls, default=None),
                "commissions": round(self.fees_paid, 2), "fills": self.n_fills,
                "vs_mid": round(self.vs_mid, 2),
                "fill_model": self.fill_model.describe() if self.fill_model is not None
                else "at leg mids (no fill model)"}


def buy_and_hold(closes: dict[date, float], initial_cash: float,
                 s0: float | None = None, dividend_yield: float = 0.0) -> dict[date, float]:
    """Equity of `initial_cash` put in SPX at `s0` (the run's first tick; default the first
    close), marked at each close, dividends reinvested: x e^(q x calendar years held)."""
    if not closes:
        return {}
    days = sorted(closes)
    base = closes[days[0]] if s0 is None else s0
    return {d: initial_cash * closes[d] / base
            * math.exp(dividend_yield * (d - days[0]).days / 365.0) for d in days}


# --- plain condor ---------------------------------------------------------------------------
Decide = Callable[..., Any]


def plain_decide(stop_mult: float, base: Decide | None = None) -> Decide:
    """A decide(state, snap, params, ctx) for the plain condor, wrapping `base` (default
    `strategies.tvm.decide`)."""
    from strategies import tvm
    from strategies.condor import combo_prices, reverse
    from strategies.expiry import dte

    if not stop_mult > 0:
        raise ValueError(f"plain_stop_mult must be > 0, got {stop_mult}")
    inner = base or tvm.decide

    def decide(state: Any, snap: Any, p: Any, ctx: Any = None) -> Any:
        ctx = ctx if ctx is not None else tvm.Context()
        camp = state.campaign
        if (state.pending is None and not ctx.flatten and state.status is tvm.Status.OPEN
                and snap.market_open and camp is not None and camp.legs
                and dte(camp.legs[0].contract.expiry, snap.time) > p.exit_dte):
            legs = reverse(camp.legs)
            mid, natural = combo_prices(snap.chains, legs)
            loss, limit = mid - camp.credit, stop_mult * camp.credit
            if math.isfinite(mid) and loss >= limit:
                return tvm._close(state, legs, mid, natural, {
                    "trigger": "plain_stop", "loss": round(loss, 2), "threshold": round(limit, 2),
                    "credit": round(camp.credit, 2), "close_cost": round(mid, 2),
                    "stop_mult": stop_mult})
        d = inner(state, snap, p, ctx)
        skipped = [f for name, f in d.events if name == "roll.skipped"]
        if skipped and camp is not None:  # tested: a plain condor holds (no roll, no stop)
            return tvm.Decision(state, events=(("roll.waiting", {
                "campaign": camp.id, "why": "plain_condor_holds",
                "triggers": skipped[0].get("triggers")}),))
        return d

    return decide
