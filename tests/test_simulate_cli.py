"""`condorbot simulate` and `condorbot scenarios` through the real CLI entry point."""

from __future__ import annotations

import pandas as pd

from bot.cli import main
from bot.sim import scenarios as scn

COLUMNS = ["date", "spx_open", "spx_high", "spx_low", "spx_close", "vix", "vix_front",
           "vix_front_expiry", "vix_second", "vix_second_expiry", "ad_line", "vix_surface",
           "atm_iv_30d", "put25_iv_30d", "skew_25d"]


def test_scenarios_lists_one_line_each(capsys):
    assert main(["scenarios"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(scn.SCENARIOS) + 1
    for name, line in zip([*scn.SCENARIOS, "replay:PATH"], lines):
        assert line.startswith(name + " ") and len(line.split()) > 3


def test_simulate_writes_csv_and_png(tmp_path, capsys):
    out = tmp_path / "crash"
    assert main(["simulate", "--scenario", "crash_2020", "--days", "45", "--seed", "3",
                 "--out", str(out)]) == 0
    df = pd.read_csv(out / "market.csv")
    assert list(df.columns) == COLUMNS and len(df) == 45
    assert df.date.is_monotonic_increasing and df.date.iloc[0] == "2026-01-05"
    assert (df.spx_high >= df.spx_close).all() and (df.spx_low <= df.spx_open).all()
    assert df.vix.max() > 80 and df.spx_close.pct_change().min() < -0.11
    peak = df.vix.idxmax()
    assert df.vix_front[peak] < df.vix[peak] and df.vix_second[peak] < df.vix_front[peak]
    assert (df.vix_front_expiry < df.vix_second_expiry).all()
    # the surface checks: its own VIX by the Cboe formula, ATM below VIX, a put skew that
    # steepens in points into the crash
    assert (df.vix_surface - df.vix).abs().max() < 0.5
    assert (df.atm_iv_30d < df.vix).all() and (df.put25_iv_30d > df.atm_iv_30d).all()
    calm = df.vix < 25
    assert df.skew_25d[calm].between(2, 8).all() and df.skew_25d[peak] > df.skew_25d[calm].max()
    png = (out / "market.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    printed = capsys.readouterr().out
    assert "45 sessions of crash_2020" in printed and "surface VIX within" in printed


def test_simulate_is_reproducible_and_replays_a_csv_on_its_own_dates(tmp_path, capsys):
    closes = tmp_path / "closes.csv"
    closes.write_text("date,spx,vix\n2020-03-13,2711.02,57.83\n2020-03-16,2386.13,82.69\n"
                      "2020-03-17,2529.19,75.91\n")
    for d in ("a", "b"):
        assert main(["simulate", "--scenario", f"replay:{closes}", "--days", "4", "--seed", "1",
                     "--out", str(tmp_path / d)]) == 0
    a, b = (pd.read_csv(tmp_path / d / "market.csv") for d in ("a", "b"))
    pd.testing.assert_frame_equal(a, b)
    # the file's dates and calendar: Mar 16 2020 is day 0, then the free model from Mar 18
    assert list(a.date) == ["2020-03-16", "2020-03-17", "2020-03-18", "2020-03-19"]
    assert list(a.spx_close[:2]) == [2386.13, 2529.19] and list(a.vix[:2]) == [82.69, 75.91]
    assert main(["simulate", "--scenario", f"replay:{closes}", "--start", "2026-01-05",
                 "--out", str(tmp_path / "c")]) == 2
    assert "runs on its file's dates (from 2020-03-16)" in capsys.readouterr().err


def test_simulate_refuses_bad_arguments(tmp_path, capsys):
    assert main(["simulate", "--scenario", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown scenario" in capsys.readouterr().err
    assert main(["simulate", "--days", "0", "--out", str(tmp_path)]) == 2
    assert main(["simulate", "--scenario", f"replay:{tmp_path / 'missing.csv'}",
                 "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "market.csv").exists()
