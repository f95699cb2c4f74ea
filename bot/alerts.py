"""Alerts through apprise, driven by the structured log events the daemon already emits.

`Alerter.on_event` is a `bot.logs` listener: it runs inside the logging call (on the tick's
path), so it only maps the event to an alert kind and puts it on a bounded queue. One
background thread sends: rate-limited per kind (`alerts.min_interval_seconds`; what was held
back is counted in the next message of that kind), each failure logged once as `alert.failed`
and never retried, so a dead notification URL costs one attempt per kind per window.

A broker disconnect is an alert only when it lasts `alerts.disconnect_seconds` (the broker
reconnects on its own; a short blip is not news). docs/UNATTENDED.md says what each alert
means and what to do.
"""

from __future__ import annotations

import argparse
import atexit
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from bot import logs

log = logs.get("bot.alerts")

# event -> (kind, title, what to do). risk.state and daemon.stopped pick a kind by a field.
EVENTS: dict[str, tuple[str, str, str]] = {
    "reconcile.mismatch": ("reconcile.mismatch", "positions differ from the store: HALTED",
                           "compare broker positions with `condorbot status`; fix, then resume"),
    "reconcile.orphan": ("reconcile.orphan", "unknown positions at the broker: REDUCING",
                         "close or adopt them by hand; `condorbot resume` when understood"),
    "campaign.stopped": ("campaign.stopped", "campaign stopped",
                         "roll steps exhausted or unfunded: the campaign took its loss"),
    "roll.step": ("roll.step", "roll step decided", "none: the martingale rolls the condor"),
    "campaign.rolled": ("campaign.rolled", "roll step done", "none: check the new strikes"),
    "daemon.started": ("daemon.started", "daemon started", "none"),
    "control.invalid": ("control.invalid", "invalid control file",
                        "write one word: run | pause | reduce | stop | flatten"),
    "broker.live_account_refused": ("live_account", "LIVE account refused: no orders",
                                    "point the gateway at a paper (DU...) account"),
    "broker.connect_failed": ("daemon.crashed", "cannot reach the broker: daemon exited",
                              "start IB Gateway / IBC; systemd restarts the daemon"),
    "store.locked": ("daemon.crashed", "store locked by another process: daemon exited",
                     "only one daemon per store: stop the other one"),
    "store.bad_trading_state": ("risk.HALTED", "unreadable trading state: HALTED",
                                "check `condorbot status`, then `condorbot resume`"),
    "store.write_failed": ("store.write_failed", "state store write failed (disk full?)",
                           "free disk space; the daemon retries each step and stays REDUCING "
                           "until `condorbot resume`"),
    "daemon.crashed": ("daemon.crashed", "daemon crashed", "read the traceback in the log"),
    "tick.failed": ("tick.failed", "a tick failed", "read the traceback in the log"),
}
RISK = {"HALTED": ("trading HALTED: no orders", "find the reason in the event; resume by hand"),
        "REDUCING": ("trading REDUCING: closing orders only", "watch the loss; resume when calm"),
        "ACTIVE": ("trading ACTIVE again", "none")}
DOWN = ("broker.disconnected", "broker disconnected", "check IB Gateway / IBC and the network")
BACK = ("broker.reconnected", "broker reconnected", "none: the daemon reconciles by itself")
SKIP = ("timestamp", "level", "event", "logger", "market_time")


def classify(ev: dict[str, Any]) -> tuple[str, str, str] | None:
    """(kind, title, what to do) for a log event that is an alert, else None."""
    name = ev.get("event")
    if name == "risk.state":
        st = str(ev.get("state"))
        return (f"risk.{st}", *RISK[st]) if st in RISK else None
    if name == "daemon.stopped":
        code = ev.get("exit_code", 0)
        if code:
            return ("daemon.crashed", f"daemon exited with code {code}", "read the log's tail")
        return ("daemon.stopped", "daemon stopped", "none, if you stopped it")
    if name == "broker.connect_failed" and "attempt" in ev:
        return None  # one failed attempt of several; the last one, from the CLI, is the exit
    return EVENTS.get(name) if isinstance(name, str) else None


def _body(ev: dict[str, Any], todo: str) -> str:
    lines = [f"{k}: {v}" for k, v in ev.items() if k not in SKIP]
    when = ev.get("market_time") or ev.get("timestamp")
    return "\n".join([f"event: {ev.get('event')}  at {when}", *lines, f"what to do: {todo}"])


def _with_timeout(url: str, seconds: float) -> str:
    """apprise's per-URL socket timeouts (cto/rto), unless the URL sets its own."""
    if "cto=" in url or "rto=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}cto={seconds:g}&rto={seconds:g}"


def apprise_sender(urls: tuple[str, ...] | list[str], timeout: float) -> Callable[..., bool]:
    import apprise

    ap = apprise.Apprise()
    for url in urls:
        if not ap.add(_with_timeout(url, timeout)):
            log.error("alert.bad_url", url=url.split("://")[0] + "://...",
                      action="this URL is skipped")

    def send(title: str, body: str, failure: bool = True) -> bool:
        if not len(ap):
            return False
        kind = apprise.NotifyType.FAILURE if failure else apprise.NotifyType.INFO
        return bool(ap.notify(body=body, title=title, notify_type=kind))

    return send


class Alerter:
    def __init__(self, settings: Any, send: Callable[..., bool] | None = None,
                 now: Callable[[], float] = time.monotonic, maxsize: int = 1000) -> None:
        self.s = settings
        self.send = send or apprise_sender(settings.urls, settings.timeout)
        self.now = now
        self.q: queue.Queue[Any] = queue.Queue(maxsize)
        self.last: dict[str, float] = {}
        self.held: dict[str, int] = {}
        self.sent = self.failed = self.dropped = 0
        self.down_since: float | None = None
        self.down_event: dict[str, Any] = {}
        self.down_alerted = False
        self.thread = threading.Thread(target=self._work, name="alerts", daemon=True)
        self.on_sent: list[Callable[[str, bool], None]] = []  # hook(kind, ok), e.g. metrics

    # --- the tick's side: constant time, never blocks ----------------------------------------
    def on_event(self, ev: dict[str, Any]) -> None:
        name = ev.get("event")
        if name in ("broker.disconnected", "broker.connected", "broker.reconnected"):
            self._put(("link", name, ev))
            return
        hit = classify(ev)
        if hit is not None:
            self._put(("alert", hit, ev))

    def _put(self, item: Any) -> None:
        try:
            self.q.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    # --- the sender thread -----------------------------------------------------------------------
    def start(self) -> Alerter:
        logs.add_listener(self.on_event)
        self.thread.start()
        atexit.register(self.close)
        return self

    def close(self, timeout: float | None = None) -> None:
        """Stop listening, send what is queued (within `timeout`), stop the thread."""
        logs.remove_listener(self.on_event)
        if self.thread.is_alive():
            self._put(None)
            # each queued alert may take up to its timeout; at a fatal exit (a start-up
            # failure) the alert saying so is the last thing the operator gets. One timeout
            # + 1 s was not enough on a loaded machine: the process ended mid-POST
            wait = self.s.timeout * self.q.qsize() + 5.0
            self.thread.join(wait if timeout is None else timeout)

    def _work(self) -> None:
        while True:
            wait = None
            if self.down_since is not None and not self.down_alerted:
                wait = max(0.0, self.down_since + self.s.disconnect_seconds - self.now())
            try:
                item = self.q.get(timeout=wait)
            except queue.Empty:
                item = ("check", None, None)
            if item is None:
                self.q.task_done()
                return
            try:
                self._handle(*item)
            except Exception as e:  # the sender must outlive any one bad alert
                log.error("alert.failed", kind=str(item[1]), error=repr(e))
            finally:
                if item[0] != "check":
                    self.q.task_done()

    def _handle(self, what: str, arg: Any, ev: dict[str, Any] | None) -> None:
        if what == "link":
            if arg == "broker.disconnected":
                if self.down_since is None:
                    self.down_since, self.down_event = self.now(), ev or {}
                    self.down_alerted = False
            else:
                if self.down_alerted and ev is not None:
                    self._deliver(BACK[0], BACK[1], _body(ev, BACK[2]))
                self.down_since, self.down_alerted = None, False
        elif what == "alert":
            kind, title, todo = arg
            assert ev is not None
            self._deliver(kind, title, _body(ev, todo))
        if (self.down_since is not None and not self.down_alerted
                and self.now() - self.down_since >= self.s.disconnect_seconds):
            self.down_alerted = True
            secs = round(self.now() - self.down_since, 1)
            ev = {**self.down_event, "down_seconds": secs}
            self._deliver(DOWN[0], f"{DOWN[1]} for {secs:g} s", _body(ev, DOWN[2]))

    def _deliver(self, kind: str, title: str, body: str) -> None:
        t = self.now()
        last = self.last.get(kind)
        if last is not None and t - last < self.s.min_interval_seconds:
            self.held[kind] = self.held.get(kind, 0) + 1
            log.info("alert.held", kind=kind, held=self.held[kind],
                     window_seconds=self.s.min_interval_seconds)
            return
        self.last[kind] = t
        held = self.held.pop(kind, 0)
        if held:
            body += f"\n({held} more '{kind}' alerts held back in the last window)"
        try:
            ok = self.send(f"condorbot: {title}", body,
                           not kind.endswith(("ACTIVE", "started", "stopped", "reconnected")))
            error = "" if ok else "a notification service refused or timed out"
        except Exception as e:  # apprise plugin errors: logged, never retried
            ok, error = False, repr(e)
        if ok:
            self.sent += 1
            log.info("alert.sent", kind=kind, title=title)
        else:
            self.failed += 1
            log.error("alert.failed", kind=kind, error=error, action="not retried")
        for hook in self.on_sent:
            hook(kind, ok)


# --- `condorbot alert-test` -----------------------------------------------------------------
def add_parser(sub: Any) -> None:
    p = sub.add_parser("alert-test", help="send one test message to every alerts.urls")
    p.add_argument("--config", default="config.yaml")
    p.set_defaults(handler=_alert_test)


def _alert_test(args: argparse.Namespace) -> int:
    from bot import config as cfg

    settings = cfg.load(args.config) if args.config else cfg.Settings()
    a = settings.alerts
    if not a.urls:
        print("condorbot: alerts.urls is empty: nothing to send to", file=sys.stderr)
        return 2
    ok = apprise_sender(a.urls, a.timeout)(
        "condorbot: test alert", "This is a test message from `condorbot alert-test`.", False)
    print("alert-test: sent" if ok else "alert-test: FAILED (see the log lines above)")
    return 0 if ok else 1
