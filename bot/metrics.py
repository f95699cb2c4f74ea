"""Prometheus metrics, the status page's recent events and equity curve, the store's marks.

One `Metrics` per server, each with its own `CollectorRegistry` (no global state). It is fed
two ways, neither of which touches a decision:
- `on_event`, a `bot.logs` listener: order / fill / rejection counters, broker link, heartbeat,
  trading state, and a ring of recent events for the page;
- `on_step(daemon, snapshot)`, a daemon step hook: account gauges, greeks and P&L of what is
  held (`bot.status.mark`, when the positions change and at most every MARK_SECONDS wall
  seconds otherwise), the campaign step and roll fund, and the decision time after the
  snapshot. It also writes those marks to the store as `marks` (when the positions change,
  else every `marks_seconds`) so `condorbot status` shows the same numbers.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bot import logs, status
from strategies import ledger as lg

log = logs.get("bot.metrics")
# events not worth a line on the page (the heartbeat has its own panel)
QUIET = ("heartbeat", "alert.held", "web.request")
STATES = ("ACTIVE", "REDUCING", "HALTED")
MARK_SECONDS = 0.25  # wall seconds between marks while the positions do not change


def _day(ev: dict[str, Any]) -> str:
    return str(ev.get("market_time") or ev.get("timestamp", ""))[:10]


class Metrics:
    def __init__(self, events: int = 500, points: int = 5000, marks_seconds: float = 5.0) -> None:
        r = self.registry = CollectorRegistry()
        p = "condorbot_"
        self.net_liq = Gauge(p + "net_liquidation_dollars", "Account net liquidation", registry=r)
        self.margin = Gauge(p + "margin_used_dollars", "Initial margin in use", registry=r)
        self.maint = Gauge(p + "maint_margin_dollars", "Maintenance margin", registry=r)
        self.cushion = Gauge(p + "cushion_ratio", "Excess liquidity / net liquidation",
                             registry=r)
        self.greeks = Gauge(p + "portfolio_greek", "Position total: delta $/pt, gamma $/pt2, "
                            "vega $/vol pt, theta $/day", ["greek"], registry=r)
        self.contracts = Gauge(p + "contracts_held", "Option contracts held (abs)", registry=r)
        self.step = Gauge(p + "campaign_step", "Roll step of the open campaign", registry=r)
        self.roll_fund = Gauge(p + "roll_fund_dollars", "Roll fund of open campaigns",
                               registry=r)
        self.realized = Gauge(p + "realized_pnl_dollars",
                              "Open campaign's condor P&L on closed trades", registry=r)
        self.unrealized = Gauge(p + "unrealized_pnl_dollars", "Mark-to-market P&L of holdings",
                                ["at"], registry=r)
        self.spx = Gauge(p + "spx", "SPX index level", registry=r)
        self.vix = Gauge(p + "vix", "VIX index level", registry=r)
        self.orders = Counter(p + "orders", "Orders placed", registry=r)
        self.fills = Counter(p + "fills", "Orders filled", registry=r)
        self.rejections = Counter(p + "rejections", "Orders refused", ["by"], registry=r)
        self.alerts = Counter(p + "alerts", "Alerts attempted", ["result"], registry=r)
        self.tick = Histogram(p + "tick_duration_seconds", "Wall time of a step after its "
                              "snapshot (decide, risk, orders, store)", registry=r,
                              buckets=(.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.connected = Gauge(p + "broker_connected", "1 while the broker link is up",
                               registry=r)
        self.heartbeat = Gauge(p + "last_heartbeat_timestamp_seconds",
                               "Wall time of the last heartbeat (unix)", registry=r)
        self.market_time = Gauge(p + "market_time_seconds", "Market (sim) time of the last "
                                 "heartbeat or step (unix)", registry=r)
        self.state = Gauge(p + "trading_state", "1 for the trading state in force", ["state"],
                           registry=r)
        self.lock = threading.Lock()
        self.events: deque[dict[str, Any]] = deque(maxlen=events)
        self.equity: deque[tuple[str, float]] = deque(maxlen=points)
        self.marks: dict[str, Any] | None = None
        self.marks_seconds = marks_seconds
        self._marks_saved = -1e18
        self._held: tuple[tuple[str, int], ...] = ()
        self._marked = -1e18

    # --- log events ----------------------------------------------------------------------------
    def on_event(self, ev: dict[str, Any]) -> None:
        name = ev.get("event")
        if name == "order.submitted":
            self.orders.inc()
        elif name == "order.filled":
            self.fills.inc()
        elif name == "risk.rejected":
            self.rejections.labels("risk").inc()
        elif name in ("order.rejected", "broker.order_refused"):
            self.rejections.labels("broker").inc()
        elif name in ("broker.connected", "broker.reconnected", "daemon.started"):
            self.connected.set(1)
        elif name in ("broker.disconnected", "daemon.stopped"):
            self.connected.set(0)
        elif name == "heartbeat":
            self.heartbeat.set(time.time())
            self._state(ev.get("trading_state"))
            if ev.get("net_liquidation") is not None:
                self.net_liq.set(float(ev["net_liquidation"]))
        elif name == "risk.state":
            self._state(ev.get("state"))
        elif name == "alert.sent":
            self.alerts.labels("sent").inc()
        elif name == "alert.failed":
            self.alerts.labels("failed").inc()
        if name not in QUIET:
            with self.lock:
                self.events.append(ev)

    def _state(self, st: Any) -> None:
        if st in STATES:
            for s in STATES:
                self.state.labels(s).set(1 if s == st else 0)

    # --- daemon steps ---------------------------------------------------------------------------
    def on_step(self, daemon: Any, snap: Any) -> None:
        t0 = getattr(daemon, "_snap_mono", None)
        if t0 is not None:
            self.tick.observe(max(0.0, time.monotonic() - t0))
        try:
            self._step(daemon, snap)
        except Exception as e:  # metrics must never break a tick
            log.error("metrics.failed", error=repr(e))

    def _step(self, daemon: Any, snap: Any) -> None:
        a = snap.account
        self.net_liq.set(a.net_liquidation)
        self.margin.set(a.init_margin)
        self.maint.set(a.maint_margin)
        self.cushion.set(a.cushion)
        self.spx.set(snap.spx)
        self.vix.set(snap.vix)
        self.market_time.set(snap.time.timestamp())
        self.connected.set(1 if getattr(daemon.broker, "connected", True) else 0)
        self._state(daemon.guard.state)
        state = daemon.state
        camp = state.campaign
        self.step.set(camp.step if camp is not None else 0)
        self.roll_fund.set(sum(lg.report(state.ledger)["funds"].values()))
        when = snap.time.isoformat()
        with self.lock:
            if not self.equity or self.equity[-1][0][:13] != when[:13]:
                self.equity.append((when, a.net_liquidation))  # one point a market hour
            else:
                self.equity[-1] = (when, a.net_liquidation)
        wall = time.monotonic()
        held = tuple(sorted((c.key, q) for _, _, c, q in status.positions(state)))
        changed, self._held = held != self._held, held
        if not changed and wall - self._marked < MARK_SECONDS:
            return  # marks are not worth their cost at every step of a fast sim
        self._marked = wall
        save = changed or wall - self._marks_saved >= self.marks_seconds
        comm = status.open_commission(daemon.store, camp) if save or self.marks is None else (
            self.marks.get("commission_open", 0.0))
        m = status.mark(state, snap, comm)
        m["commission_open"] = comm
        self.marks = m
        for k, v in m["greeks"].items():
            self.greeks.labels(k).set(v)
        self.contracts.set(m["contracts"])
        self.realized.set(m["realized"])
        self.unrealized.labels("mid").set(m["unrealized_mid"])
        self.unrealized.labels("natural").set(m["unrealized_natural"])
        if save:
            self._marks_saved = wall
            daemon.store.put("marks", m)

    def recent(self, day: str | None = None) -> list[dict[str, Any]]:
        """Events kept, newest first; with `day` (YYYY-MM-DD) only that market day's."""
        with self.lock:
            evs = list(self.events)
        if day:
            evs = [e for e in evs if _day(e) == day]
        return evs[::-1]

    def curve(self) -> list[tuple[str, float]]:
        with self.lock:
            return list(self.equity)
