"""Replays on their own dates: a CSV of daily closes runs on the file's dates and that era's
exchange calendar; a bad row (unsorted, a gap, a bad or missing price, a date off the
calendar) gets one clear error naming it, and the CLI exits 2."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest

from bot.broker.sim import make_sim_broker
from bot.cli import main
from bot.config import Settings
from bot.sim import scenarios as scn
from strategies import expiry as xp

# S&P 500 and VIX closes, Aug 20-26 2015 (the Aug 24 2015 selloff: VIX 28.03 close)
GOOD = """date,spx,vix
2015-08-20,2035.73,19.14
2015-08-21,1970.89,28.03
2015-08-24,1893.21,40.74
2015-08-25,1867.61,36.02
2015-08-26,1940.51,30.32
"""


def write(tmp_path: Path, text: str, name: str = "closes.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_a_replay_carries_its_dates_and_the_broker_runs_on_them(tmp_path):
    p = write(tmp_path, GOOD)
    sc = scn.get(f"replay:{p}")
    assert sc.dates == (date(2015, 8, 21), date(2015, 8, 24), date(2015, 8, 25),
                        date(2015, 8, 26))  # row 0 (Aug 20) is the base close
    assert "2015-08-21 to 2015-08-26" in sc.summary
    s = Settings()
    s = s.model_copy(update={"sim": s.sim.model_copy(update={"scenario": f"replay:{p}"})})
    broker, clock = make_sim_broker(s)
    assert xp.exchange_date(clock.now()) == date(2015, 8, 21)
    clock.set(xp.spx_option_session(date(2015, 8, 24))[1])  # the close of Aug 24 (day 1)
    snap = asyncio.run(broker.snapshot())
    assert snap.vix == pytest.approx(40.74, abs=0.01)
    assert snap.spx == pytest.approx(1893.21, rel=1e-9)  # returns chained from Aug 20's close


@pytest.mark.parametrize("text, needle", [
    (GOOD.replace("2015-08-24", "2015-08-19"), "line 4: 2015-08-19 does not follow 2015-08-21"),
    (GOOD.replace("2015-08-24,1893.21,40.74\n", ""), "line 4: gap: no row for 2015-08-24"),
    (GOOD.replace("1867.61", "-1867.61"), "line 5 (2015-08-25): spx must be > 0"),
    (GOOD.replace("1867.61", ""), "line 5 (2015-08-25): missing or bad price"),
    (GOOD.replace("2015-08-25", "2015-08-23"), "line 5: 2015-08-23 is not an SPX trading day"),
    (GOOD.replace("2015-08-20", "1999-12-31"), "line 2: 1999-12-31 is outside the exchange"),
    (GOOD.replace("2015-08-26", "26/08/2015"), "line 6: bad date '26/08/2015'"),
    (GOOD.replace("date,", "day,"), "needs columns date, spx"),
])
def test_a_bad_row_is_named(tmp_path, text, needle):
    p = write(tmp_path, text)
    with pytest.raises(ValueError, match="line|columns") as e:
        scn.load_csv(p)
    assert needle in str(e.value) and str(p) in str(e.value)


def test_the_cli_exits_2_naming_the_row(tmp_path, capsys):
    p = write(tmp_path, GOOD.replace("2015-08-24,1893.21,40.74\n", ""))
    assert main(["simulate", "--scenario", f"replay:{p}", "--out", str(tmp_path / "s")]) == 2
    assert "line 4: gap: no row for 2015-08-24" in capsys.readouterr().err
    assert main(["backtest", "--csv", str(p), "--out", str(tmp_path / "b")]) == 2
    assert "line 4: gap" in capsys.readouterr().err


def test_a_replay_from_the_first_days_of_the_calendar_has_its_history(tmp_path):
    p = write(tmp_path, "date,spx,vix\n2000-01-03,1455.22,24.21\n2000-01-04,1399.42,27.01\n")
    sc = scn.get(f"replay:{p}")
    assert sc.dates == (date(2000, 1, 4),)
    from bot.sim.market import Market

    m = Market(sc, 1, xp.spx_option_session(date(2000, 1, 4))[0])
    assert len(m.bars) == 260 and m.bars.index[-1].date() < date(2000, 1, 4)
