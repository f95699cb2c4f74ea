"""SQLite state (WAL): campaigns, intents, orders, fills, and small key/value facts.

Every state change is one transaction. The schema is versioned with PRAGMA user_version and
migrated forward on open. An intent is written before its order is placed; its row then
carries the broker's order id, so a restart can find it again by order id or orderRef (= key).

Integrity: an existing store is checked with `PRAGMA quick_check` before anything else
touches it; any damage (garbage inside, truncated, not a database) raises `StoreDamaged`
(the daemon refuses to start, exit 4) instead of running on a store whose reads silently
return nothing. `condorbot reset-store` sets the damaged files aside (`set_aside`) and starts
a new store marked with `RESET_KEY`, from which the daemon reconciles with the broker and
stays REDUCING until resumed. `Store.fresh` says the file was missing or empty at open.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot import codec
from strategies.types import Fill, Intent

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE campaigns (
        id TEXT PRIMARY KEY, status TEXT NOT NULL, step INTEGER NOT NULL DEFAULT 0,
        opened_at TEXT, closed_at TEXT, pnl REAL NOT NULL DEFAULT 0, data TEXT
    );
    CREATE TABLE intents (
        key TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, action TEXT NOT NULL,
        step INTEGER NOT NULL, layer TEXT NOT NULL DEFAULT '', qty INTEGER NOT NULL,
        status TEXT NOT NULL, order_id INTEGER, limit_price REAL, filled INTEGER NOT NULL DEFAULT 0,
        avg_price REAL NOT NULL DEFAULT 0, commission REAL NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '', blob TEXT NOT NULL, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX intents_status ON intents(status);
    CREATE TABLE fills (
        exec_id TEXT PRIMARY KEY, intent_key TEXT NOT NULL REFERENCES intents(key),
        qty INTEGER NOT NULL, price REAL NOT NULL, commission REAL NOT NULL, time TEXT
    );
    """,
]

# Intent statuses. `new`: persisted, not yet sent; `working`: at the broker; the rest are final.
OPEN_STATUSES = ("new", "working")


# meta key the reset-store command writes into the new store: {"at", "set_aside", "detail"}
RESET_KEY = "store.reset"
SIDE_FILES = ("", "-wal", "-shm")


class StoreLocked(Exception):
    """Another process holds the store."""


class StoreDamaged(Exception):
    """The store file is damaged; never trade on it. `str()` is the one line for the operator."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path, self.detail = path, detail
        super().__init__(
            f"store {path} is damaged ({detail}): restore it from a backup, or run "
            "`condorbot reset-store` to set it aside and rebuild from the broker (the bot then "
            "only reduces until `condorbot resume`)")


class Store:
    """`exclusive=True` (the daemon) also takes an advisory lock beside the file, so a second
    daemon on the same store refuses to start instead of interleaving orders with the first.
    Readers (status, history) open without it."""

    def __init__(self, path: Path | str, timeout: float = 2.0, exclusive: bool = False,
                 reset: bool = False) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        memory = str(path) == ":memory:"
        if not memory:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if exclusive:
                self._lock()
            if reset:  # only ever under the lock: never pull a store from under a live daemon
                if not exclusive:
                    raise ValueError("reset needs exclusive=True")
                for suffix in SIDE_FILES:
                    Path(str(self.path) + suffix).unlink(missing_ok=True)
        self.fresh = memory or not self.path.exists() or self.path.stat().st_size == 0
        try:
            self.db = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
        except sqlite3.Error as e:
            self._unlock()
            raise StoreDamaged(self.path, f"cannot open: {e}") from None
        self.db.row_factory = sqlite3.Row
        try:
            if not self.fresh:
                _quick_check(self.db, self.path)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except StoreDamaged:
            self.close()
            raise
        except sqlite3.OperationalError as e:
            self.close()
            if "locked" in str(e) or "busy" in str(e):
                raise StoreLocked(f"store {path} is locked by another process") from None
            raise StoreDamaged(self.path, str(e)) from None
        except sqlite3.DatabaseError as e:  # "file is not a database", "malformed", ...
            self.close()
            raise StoreDamaged(self.path, str(e)) from None



    def _lock(self) -> None:
        import fcntl
        import os

        fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreLocked(f"store {self.path} is in use by another condorbot process") from None
        self._lock_fd = fd

    def close(self) -> None:
        self.db.close()
        self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            import os

            os.close(self._lock_fd)
            self._lock_fd = None

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for i, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.tx() as db:
                for stmt in filter(str.strip, script.split(";")):
                    db.execute(stmt)
                db.execute(f"PRAGMA user_version={i}")

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    # --- key/value -------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return codec.loads(row[0]) if row else default

    def put(self, key: str, value: Any, db: sqlite3.Connection | None = None) -> None:
        sql = ("INSERT INTO meta(key, value) VALUES(?, ?)"
               " ON CONFLICT(key) DO UPDATE SET value=excluded.value")
        if db is not None:
            db.execute(sql, (key, codec.dumps(value)))
        else:
            with self.tx() as d:
                d.execute(sql, (key, codec.dumps(value)))

    # --- intents and fills -----------------------------------------------------------------
    def add_intent(self, intent: Intent, now: datetime) -> None:
        """Persist an intent before anything is sent. A known key is refused (idempotency)."""
        ts = now.isoformat()
        with self.tx() as db:
            db.execute(
                "INSERT INTO intents(key, campaign_id, action, step, layer, qty, status, blob,"
                " created_at, updated_at) VALUES(?,?,?,?,?,?,?,?,?,?)",
                (intent.key, intent.campaign_id, intent.action, intent.step, intent.layer,
                 intent.qty, "new", codec.dumps(intent), ts, ts),
            )

    def has_intent(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM intents WHERE key=?", (key,)).fetchone() is not None

    def update_intent(self, key: str, now: datetime, **cols: Any) -> None:
        allowed = {"status", "order_id", "limit_price", "filled", "avg_price", "commission",
                   "error"}
        bad = set(cols) - allowed
        if bad:
            raise ValueError(f"unknown intent columns {bad}")
        sets = ", ".join(f"{c}=?" for c in cols)
        with self.tx() as db:
            db.execute(f"UPDATE intents SET {sets}, updated_at=? WHERE key=?",
                       (*cols.values(), now.isoformat(), key))

    def add_fill(self, fill: Fill) -> bool:
        """Record a fill once (by exec id). Returns False when it was already known."""
        with self.tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO fills(exec_id, intent_key, qty, price, commission, time)"
                " VALUES(?,?,?,?,?,?)",
                (fill.exec_id, fill.intent_key, fill.qty, fill.price, fill.commission,
                 fill.time.isoformat() if fill.time else None),
            )
            return cur.rowcount == 1

    def intent(self, key: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM intents WHERE key=?", (key,)).fetchone()

    def open_intents(self) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT * FROM intents WHERE status IN ('new','working') ORDER BY created_at"
        ).fetchall()

    def intents(self, limit: int = 50) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT * FROM intents ORDER BY created_at DESC, key DESC LIMIT ?", (limit,)
        ).fetchall()

    def fills_for(self, key: str) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM fills WHERE intent_key=?", (key,)).fetchall()

    # --- campaigns -------------------------------------------------------------------------
    def upsert_campaign(self, cid: str, status: str, step: int, pnl: float, data: Any,
                        now: datetime, closed: bool = False) -> None:
        ts = now.isoformat()
        with self.tx() as db:
            db.execute(
                "INSERT INTO campaigns(id, status, step, opened_at, pnl, data) VALUES(?,?,?,?,?,?)"
                " ON CONFLICT(id) DO UPDATE SET status=excluded.status, step=excluded.step,"
                " pnl=excluded.pnl, data=excluded.data",
                (cid, status, step, ts, pnl, codec.dumps(data)),
            )
            if closed:
                db.execute("UPDATE campaigns SET closed_at=? WHERE id=?", (ts, cid))

    def campaigns(self, open_only: bool = False) -> list[sqlite3.Row]:
        sql = "SELECT * FROM campaigns"
        if open_only:
            sql += " WHERE closed_at IS NULL"
        return self.db.execute(sql + " ORDER BY opened_at").fetchall()


def _quick_check(db: sqlite3.Connection, path: Path) -> None:
    """PRAGMA quick_check: b-tree structure, page formats, record sizes (not index vs table
    contents, which integrity_check adds at O(N log N)). StoreDamaged on any finding."""
    try:
        rows = [str(r[0]) for r in db.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            raise
        raise StoreDamaged(path, str(e)) from None
    except sqlite3.DatabaseError as e:
        raise StoreDamaged(path, str(e)) from None
    if rows != ["ok"]:
        more = f" (+{len(rows) - 1} more problems)" if len(rows) > 1 else ""
        raise StoreDamaged(path, f"quick_check: {rows[0] if rows else 'no answer'}{more}")


def check(path: Path | str) -> str | None:
    """None if the store at `path` is healthy (or missing/empty); else what is wrong with it.
    Read-only: a healthy store is not migrated, an absent one is not created."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as e:
        return f"cannot open: {e}"
    try:
        _quick_check(db, path)
    except StoreDamaged as e:
        return e.detail
    finally:
        db.close()
    return None


def set_aside(path: Path | str, now: datetime, detail: str = "") -> Path:
    """Move a damaged store (and its -wal/-shm) beside itself as `<name>.damaged-<time>`,
    then start an empty store there marked with `RESET_KEY`. Takes the store's lock: never
    under a running daemon (StoreLocked). Returns where the damaged file went."""
    import fcntl
    import os

    path = Path(path)
    fd = os.open(str(path) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StoreLocked(f"store {path} is in use by another condorbot process") from None
        aside = path.with_name(f"{path.name}.damaged-{now.strftime('%Y%m%dT%H%M%S')}")
        for suffix in SIDE_FILES:
            src = Path(str(path) + suffix)
            if src.exists():
                os.replace(src, str(aside) + suffix)
        store = Store(path)  # still under the lock taken above
        try:
            store.put(RESET_KEY, {"at": now.isoformat(), "set_aside": str(aside),
                                  "detail": detail})
        finally:
            store.close()
    finally:
        os.close(fd)
    return aside


def sim_path(path: Path) -> Path:
    """The embedded sim's store beside the configured one (reset at every sim run)."""
    return path.with_name(path.stem + "-sim.db")


def locate(path: Path) -> Path | None:
    """The store a CLI command should read: the configured one or the sim's, newest first."""
    found = [p for p in (Path(path), sim_path(Path(path))) if p.exists()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def utcnow() -> datetime:
    return datetime.now(UTC)
