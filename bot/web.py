"""The daemon's own HTTP server: Prometheus `/metrics` and a read-only status page `/`.

Bound to `web.host`:`web.port` (127.0.0.1:9108 by default; port 0 = any free port, logged
as `web.started`). Off loopback, `web.token` is required by the config, and every request
must carry it (`?token=...` or `Authorization: Bearer ...`), else 401. GET only: the page
shows what `condorbot status` shows, the marks and P&L of the positions held, today's events
and the run's equity curve, and reloads itself every `web.refresh_seconds`. It has no
control actions (use the control file).

`start(settings)` (the `run` command, before the daemon exists) starts the alerter, the
metrics and the server; `attach(daemon)` adds the metrics' step hook. Both are inert when
nothing is configured, and a port that cannot be bound is logged, never fatal.
"""

from __future__ import annotations

import hmac
import html
import socket
import sqlite3
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot import logs, status
from bot.alerts import Alerter
from bot.metrics import Metrics, _day
from bot.store import Store, sim_path

log = logs.get("bot.web")


class _Reader(Store):
    """A read-only connection to the daemon's store (never creates, migrates or locks it)."""

    def __init__(self, path: Path) -> None:  # not Store's: that one writes
        self.path, self._lock_fd = path, None
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)
        self.db.row_factory = sqlite3.Row


def _e(v: Any) -> str:
    return html.escape(str(v))


def _table(headers: list[str], rows: list[list[Any]], ident: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table id="{ident}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _svg(points: list[tuple[str, float]], w: int = 640, h: int = 160) -> str:
    if len(points) < 2:
        return '<p id="equity">(not enough points yet)</p>'
    ys = [p[1] for p in points]
    lo, hi = min(ys), max(ys)
    span = (hi - lo) or 1.0
    xy = " ".join(f"{i * w / (len(ys) - 1):.1f},{h - (y - lo) * h / span:.1f}"
                  for i, y in enumerate(ys))
    return (f'<svg id="equity" width="{w}" height="{h + 20}" viewBox="0 -10 {w} {h + 20}">'
            f'<polyline fill="none" stroke="#2a6" stroke-width="1.5" points="{xy}"/></svg>'
            f"<p>{_e(points[0][0][:16])} {lo:,.0f} .. {hi:,.0f} {_e(points[-1][0][:16])}</p>")


def page(store_path: Path, metrics: Metrics, refresh: int, name: str = "") -> str:
    n = status._num
    parts = [f'<!doctype html><html><head><meta charset="utf-8">'
             f'<meta http-equiv="refresh" content="{refresh}"><title>condorbot</title>'
             "<style>body{font:14px sans-serif;margin:1em}table{border-collapse:collapse;"
             "margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
             "pre{background:#f6f6f6;padding:.5em}</style></head><body>"
             "<h1>condorbot</h1>"]
    text = "no store yet (has the daemon started?)"
    if store_path.exists():
        st = _Reader(store_path)
        try:
            text = status.render(st, name)
            state = st.get("strategy_state")
            real = status.realized(st, state)
        finally:
            st.close()
    else:
        state, real = None, 0.0
    m = metrics.marks
    if m is not None and state is not None:
        held = sorted((c.key, q) for _, _, c, q in status.positions(state))
        if sorted((r["key"], r["qty"]) for r in m["legs"]) != held:
            m = None  # marks of an older position set
    parts.append("<h2>positions</h2>")
    if m and m["legs"]:
        parts.append(f"<p>marked at {_e(m['market_time'])}: SPX {n(m['spx'])}, "
                     f"VIX {n(m['vix'])}</p>")
        parts.append(_table(["campaign", "what", "contract", "qty", "bid", "ask", "mid", "iv",
                             "delta $/pt", "gamma $/pt2", "vega $/vol pt", "theta $/day"],
                            [[r["campaign"], r["what"], r["key"], f"{r['qty']:+d}", n(r["bid"]),
                              n(r["ask"]), n(r["mid"]), status._pct(r["iv"]), n(r["delta"]),
                              n(r["gamma"]), n(r["vega"]), n(r["theta"])] for r in m["legs"]],
                            "legs"))
        parts.append(_table(["delta $/pt", "gamma $/pt2", "vega $/vol pt", "theta $/day"],
                            [[n(m["greeks"][k]) for k in status.GREEKS]], "greeks"))
    else:
        parts.append('<p id="legs">(flat)</p>')
    parts.append("<h2>P&amp;L</h2>")
    parts.append(_table(["realized (closed trades)", "unrealized at mid",
                         "unrealized at natural (close now)"],
                        [[n(real), n(m["unrealized_mid"]) if m else "-",
                          n(m["unrealized_natural"]) if m else "-"]], "pnl"))
    parts.append("<h2>equity curve (net liquidation)</h2>" + _svg(metrics.curve()))
    evs = metrics.recent()
    day = _day(evs[0]) if evs else ""
    today = metrics.recent(day)[:200]
    parts.append(f"<h2>today's events ({_e(day) or '-'})</h2>")
    skip = ("event", "timestamp", "level", "market_time", "logger")
    parts.append(_table(["time", "event", "fields"],
                        [[str(e.get("market_time") or e.get("timestamp", ""))[11:19],
                          e.get("event"), ", ".join(f"{k}={v}" for k, v in e.items()
                                                    if k not in skip)[:300]] for e in today],
                        "events"))
    parts.append(f"<h2>condorbot status</h2><pre id='status'>{_e(text)}</pre></body></html>")
    return "".join(parts)


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class Server:
    def __init__(self, settings: Any, metrics: Metrics, store_path: Path) -> None:
        self.s, self.metrics, self.store_path = settings, metrics, Path(store_path)
        self.httpd: ThreadingHTTPServer | None = None
        self.port = 0

    def start(self) -> Server:
        cls = _Server6 if ":" in self.s.host else ThreadingHTTPServer
        self.httpd = cls((self.s.host, self.s.port), _handler(self))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, name="web", daemon=True).start()
        log.info("web.started", host=self.s.host, port=self.port,
                 url=f"http://{f'[{h}]' if ':' in (h := self.s.host) else h}:{self.port}/",
                 token=bool(self.s.token))
        return self

    def close(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def authorized(self, path: str, header: str | None) -> bool:
        if not self.s.token:
            return True
        given = parse_qs(urlsplit(path).query).get("token", [""])[0]
        if header and header.startswith("Bearer "):
            given = header[7:]
        return hmac.compare_digest(given.encode(), self.s.token.encode())


def _handler(server: Server) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # stdlib name; quiet
            pass

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:  # stdlib name
            if not server.authorized(self.path, self.headers.get("Authorization")):
                log.warning("web.unauthorized", path=urlsplit(self.path).path,
                            client=self.client_address[0])
                self._send(401, b"401: web.token required\n", "text/plain")
                return
            route = urlsplit(self.path).path
            try:
                if route == "/metrics":
                    self._send(200, generate_latest(server.metrics.registry), CONTENT_TYPE_LATEST)
                elif route == "/":
                    body = page(server.store_path, server.metrics, server.s.refresh_seconds)
                    self._send(200, body.encode(), "text/html; charset=utf-8")
                else:
                    self._send(404, b"404\n", "text/plain")
            except Exception as e:  # a broken page must not take the server down
                log.error("web.failed", path=route, error=repr(e))
                self._send(500, b"500: see the daemon log (web.failed)\n", "text/plain")

        do_HEAD = do_GET

        def _refuse(self) -> None:
            self._send(405, b"405: read-only\n", "text/plain")

        do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    return Handler


class Ops:
    """Alerts, metrics and the web server of one `condorbot run`."""

    def __init__(self, settings: Any, store_path: Path) -> None:
        self.metrics = Metrics(marks_seconds=min(5.0, settings.heartbeat_seconds))
        logs.add_listener(self.metrics.on_event)
        self.alerter = Alerter(settings.alerts).start() if settings.alerts.urls else None
        self.server: Server | None = None
        self.closed = False
        if settings.web.enabled:
            try:
                self.server = Server(settings.web, self.metrics, store_path).start()
            except OSError as e:  # port taken: the daemon runs on without its page
                log.error("web.bind_failed", host=settings.web.host, port=settings.web.port,
                          error=e.strerror or str(e), action="no /metrics or status page")

    def attach(self, daemon: Any) -> None:
        daemon.step_hooks.append(self.metrics.on_step)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        logs.remove_listener(self.metrics.on_event)
        if self.server is not None:
            self.server.close()
        if self.alerter is not None:
            self.alerter.close()


_current: Ops | None = None


def start(settings: Any) -> Ops:
    """For `condorbot run`: start everything; an uncaught exception becomes `daemon.crashed`."""
    global _current
    path = sim_path(settings.store_path) if settings.broker == "sim" else settings.store_path
    _current = Ops(settings, Path(path))
    previous = sys.excepthook

    def crashed(kind: Any, value: Any, tb: Any) -> None:
        log.critical("daemon.crashed", error=repr(value), at=datetime.now(UTC).isoformat())
        previous(kind, value, tb)
        stop()  # the hook runs before the interpreter shuts down: the alert can still go out

    sys.excepthook = crashed
    return _current


def stop() -> None:
    """Send the queued alerts and close what `start` opened. `condorbot run` calls it before
    it returns: by the time atexit runs, the interpreter has shut down the thread pools apprise
    sends through, and an alert queued by the run's last events (a start-up failure, the
    daemon's stop) is refused."""
    if _current is not None:
        _current.close()


def attach(daemon: Any) -> None:
    """Add the metrics step hook to the daemon `start` was called for (no-op otherwise)."""
    if _current is not None:
        _current.attach(daemon)
