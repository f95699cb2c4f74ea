"""Store integrity against real damaged SQLite files: quick_check at open, StoreDamaged, exit 4
with one line, and `condorbot reset-store` (issue 14 item 8)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from bot import store as st
from bot.store import RESET_KEY, Store, StoreDamaged, StoreLocked
from strategies.types import Contract, Fill, Intent, Leg

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


def _intent(i: int) -> Intent:
    legs = tuple(Leg(Contract("SPX", "OPT", datetime(2026, 2, 20).date(), 5000.0 + 5 * k, r,
                              "SPX"), q) for k, (r, q) in enumerate(
        (("P", 1), ("P", -1), ("C", -1), ("C", 1))))
    return Intent(f"C{i:04d}-20260105:open:0:0", f"C{i:04d}-20260105", "open", legs, 1, -10.0,
                  -10.5)


def _real_store(path: Path, n: int = 40) -> Path:
    """A store with enough rows to span many pages, as the daemon writes them."""
    s = Store(path, exclusive=True)
    for i in range(n):
        it = _intent(i)
        s.add_intent(it, T0)
        s.update_intent(it.key, T0, status="filled", order_id=i + 1, filled=1, avg_price=-10.2)
        s.add_fill(Fill(it.key, 1, -10.2, 2.6, T0, f"exec.{i}"))
        s.upsert_campaign(it.campaign_id, "open", 0, 0.0, {"note": "x" * 3000}, T0)
    s.put("guard", {"state": "ACTIVE"})
    s.close()
    assert not Path(str(path) + "-wal").exists() or Path(str(path) + "-wal").stat().st_size == 0
    return path


def _page_size(path: Path) -> int:
    raw = path.read_bytes()[16:18]
    size = int.from_bytes(raw, "big")
    return 65536 if size == 1 else size


def _garbage_mid_file(path: Path) -> None:
    size, n = _page_size(path), path.stat().st_size // _page_size(path)
    rng = random.Random(4)
    with path.open("r+b") as f:
        f.seek(size * (n // 2))
        f.write(bytes(rng.randrange(256) for _ in range(size)))


def _truncated(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2 + 100)


def _not_a_database(path: Path) -> None:
    path.write_text("broker: ib\n" * 500)


def _header_smashed(path: Path) -> None:
    with path.open("r+b") as f:
        f.write(b"\x00" * 100)


DAMAGE = {"garbage_mid_file": _garbage_mid_file, "truncated": _truncated,
          "not_a_database": _not_a_database, "header_smashed": _header_smashed}


def test_a_healthy_store_opens_and_keeps_its_rows(tmp_path):
    path = _real_store(tmp_path / "bot.db")
    assert st.check(path) is None
    s = Store(path, exclusive=True)
    assert not s.fresh and len(s.intents(1000)) == 40 and s.get("guard") == {"state": "ACTIVE"}
    s.close()


def test_missing_or_empty_store_is_fresh(tmp_path):
    s = Store(tmp_path / "new.db")
    assert s.fresh
    s.close()
    (tmp_path / "empty.db").write_bytes(b"")
    s = Store(tmp_path / "empty.db")
    assert s.fresh and st.check(tmp_path / "empty.db") is None
    s.close()
    assert not Store(tmp_path / "new.db").fresh


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_store_is_refused_at_open(tmp_path, damage):
    path = _real_store(tmp_path / "bot.db")
    DAMAGE[damage](path)
    before = path.read_bytes()
    with pytest.raises(StoreDamaged) as e:
        Store(path, exclusive=True)
    assert "reset-store" in str(e.value) and "\n" not in str(e.value)
    assert st.check(path) == e.value.detail
    assert path.read_bytes() == before  # looking does not touch it
    with pytest.raises(StoreDamaged):  # the lock was released: a second try says the same
        Store(path, exclusive=True)


def test_reset_store_sets_the_damaged_file_aside_and_marks_the_new_one(tmp_path):
    path = _real_store(tmp_path / "bot.db")
    _garbage_mid_file(path)
    damaged = path.read_bytes()
    aside = st.set_aside(path, T0, "quick_check: boom")
    assert aside.read_bytes() == damaged and aside.name == "bot.db.damaged-20260105T150000"
    s = Store(path, exclusive=True)
    assert s.fresh is False and s.intents() == []
    assert s.get(RESET_KEY) == {"at": T0.isoformat(), "set_aside": str(aside),
                                "detail": "quick_check: boom"}
    with pytest.raises(StoreLocked):  # never under a running daemon
        st.set_aside(path, T0)
    s.close()


def _config(tmp_path: Path) -> Path:
    raw = {"broker": "ib", "store_path": str(tmp_path / "state" / "bot.db"),
           "control_file": str(tmp_path / "control"), "log": {"dir": str(tmp_path / "logs")},
           "ib": {"port": 9, "timeout": 1}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_cli_refuses_a_damaged_store_with_exit_4_then_reset_store_recovers(tmp_path, capsys):
    from bot.cli import main

    cfg = _config(tmp_path)
    path = _real_store(tmp_path / "state" / "bot.db")
    assert main(["reset-store", "--config", str(cfg)]) == 0
    assert "nothing to reset" in capsys.readouterr().out
    assert not list(path.parent.glob("*.damaged-*"))
    _truncated(path)
    run = subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(cfg)],
                           cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert main(["status", "--config", str(cfg)]) == 4
    assert "reset-store" in capsys.readouterr().err
    _, err = run.communicate(timeout=60)
    assert run.returncode == 4 and err.count("\n") == 1 and "reset-store" in err, err
    assert main(["reset-store", "--config", str(cfg)]) == 0, capsys.readouterr().err
    (aside,) = [p for p in path.parent.glob("bot.db.damaged-*")
                if not p.name.endswith(("-wal", "-shm"))]
    assert aside.stat().st_size > 0 and st.check(path) is None
    s = Store(path)
    assert s.get(RESET_KEY)["set_aside"] == str(aside)
    s.close()
