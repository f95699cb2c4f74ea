"""Economic calendar and blackout windows."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

import pytest

from strategies import events as ev
from strategies.expiry import spx_option_session

NYZ = ZoneInfo("America/New_York")

# Federal Reserve press releases (2024-08-09 and 2025-09-05): second day of each meeting.
FOMC = {
    2025: ["01-29", "03-19", "05-07", "06-18", "07-30", "09-17", "10-29", "12-10"],
    2026: ["01-28", "03-18", "04-29", "06-17", "07-29", "09-16", "10-28", "12-09"],
    2027: ["01-27", "03-17", "04-28", "06-09", "07-28", "09-15", "10-27", "12-08"],
}


def ny(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=NYZ)


def test_shipped_fomc_matches_fed_calendar() -> None:
    cal = ev.default_calendar()
    recent = [e for e in cal.events("FOMC") if e.date.year >= 2025]
    want = [date.fromisoformat(f"{y}-{md}") for y, mds in FOMC.items() for md in mds]
    assert [e.date for e in recent] == want
    assert {e.when.astimezone(NYZ).time() for e in recent} == {time(14, 0)}


def test_shipped_calendar_covers_2000_to_2027() -> None:
    """Replays run on their own dates: every year 2000-2027 carries its FOMC decisions and a
    CPI and PPI release (nearly) each month."""
    cal = ev.default_calendar()
    for year in range(2000, 2028):
        fomc = [e for e in cal.events("FOMC") if e.date.year == year and e.status == "official"]
        # eight scheduled meetings a year; March 2020's was replaced by the 15 March decision
        assert len(fomc) == (7 if year == 2020 else 8), (year, len(fomc))
        assert all(e.date.weekday() in (1, 2, 3) for e in fomc), year  # Tue-Thu
        for kind in ("CPI", "PPI"):
            months = {e.date.month for e in cal.events(kind) if e.date.year == year}
            assert len(months) >= 10, (kind, year, sorted(months))  # 2025: the shutdown
    days = {e.date.isoformat() for e in cal.events("FOMC")}
    # decisions a trader remembers: zero bound, lift-off, the Covid cuts, the first 75 bp hike
    assert {"2008-12-16", "2015-12-16", "2020-03-03", "2020-03-15", "2022-06-15"} <= days
    assert "2020-03-18" not in days  # that scheduled meeting did not take place


def test_shipped_rows_are_sane() -> None:
    text = resources.files("strategies").joinpath("data/events.csv").read_text(encoding="utf-8")
    assert "Bureau of Labor Statistics" in text and "Federal Reserve" in text
    rows = list(csv.DictReader(ln for ln in text.splitlines() if not ln.startswith("#")))
    assert len(rows) == len(ev.default_calendar().events())
    for r in rows:
        d = date.fromisoformat(r["date"])
        if r["status"] != "extra":  # an intermeeting decision may come on a Sunday (2020-03-15)
            assert spx_option_session(d) is not None, r  # releases fall on business days
        assert r["source"] and r["status"] in ("official", "rescheduled", "projected", "extra"), r
    for year in (2025, 2026, 2027):
        for kind in ("CPI", "PPI"):
            n = sum(1 for r in rows if r["kind"] == kind and r["date"].startswith(str(year)))
            assert 10 <= n <= 13, (kind, year, n)
    # Honest labelling: the 2027 BLS dates are projections; the 2025 shutdown is reflected.
    assert all(r["status"] == "projected" for r in rows
               if r["kind"] in ("CPI", "PPI") and r["date"].startswith("2027"))
    cpi = {r["date"] for r in rows if r["kind"] == "CPI"}
    assert "2025-10-24" in cpi and "2025-12-18" in cpi and "2025-12-10" not in cpi


def test_release_times_convert_across_dst() -> None:
    cal = ev.default_calendar()
    jan = cal.next_event("CPI", date(2026, 1, 13))
    mar = cal.next_event("CPI", date(2026, 3, 11))
    assert jan is not None and jan.when == datetime(2026, 1, 13, 13, 30, tzinfo=UTC)
    assert mar is not None and mar.when == datetime(2026, 3, 11, 12, 30, tzinfo=UTC)


def test_next_event_semantics() -> None:
    cal = ev.default_calendar()
    fomc = cal.next_event("FOMC", ny(2026, 3, 18, 14, 0))
    assert fomc is not None and fomc.date == date(2026, 3, 18)  # at the release: still "next"
    after = cal.next_event("FOMC", ny(2026, 3, 18, 14, 1))
    assert after is not None and after.date == date(2026, 4, 29)
    both = cal.next_event(["FOMC", "CPI"], ny(2027, 1, 1))
    assert both is not None and both.kind == "CPI" and both.date.month == 1
    assert cal.next_event("fomc", date(2028, 1, 1)) is None
    first = ev.next_event("FOMC", date(2025, 1, 1))
    assert first is not None and first.date == date(2025, 1, 29)
    last = cal.last_event("FOMC", ny(2026, 3, 18, 14, 0))
    assert last is not None and last.date == date(2026, 1, 28)
    with pytest.raises(ValueError):
        cal.next_event("CPI", datetime(2026, 1, 1, 12, 0))


def test_blackout_window_bounds() -> None:
    cal = ev.default_calendar()
    release = ny(2026, 3, 18, 14, 0)
    before, after = timedelta(hours=24), timedelta(hours=2)
    assert cal.in_blackout(release - before, "FOMC", before, after)
    assert not cal.in_blackout(release - before - timedelta(seconds=1), "FOMC", before, after)
    assert cal.in_blackout(release + after, ["FOMC"], before, after)
    assert not cal.in_blackout(release + after + timedelta(seconds=1), "FOMC", before, after)
    assert not cal.in_blackout(release, "PPI", before, after)  # kinds filter
    hit = cal.blackout_event(release, ["CPI", "PPI", "FOMC"], timedelta(days=7), after)
    assert hit is not None and hit.kind in ("CPI", "PPI", "FOMC")
    assert ev.in_blackout(release.astimezone(UTC), "FOMC", before, after)
    with pytest.raises(ValueError):
        cal.in_blackout(release, "FOMC", timedelta(hours=-1), after)


def test_extra_rows_add_cancel_and_new_kinds() -> None:
    cal = ev.EventCalendar(extra=[
        {"date": "2028-01-12", "kind": "cpi"},
        {"date": "2027-01-13", "kind": "CPI", "status": "cancelled"},
        ev.Event(when=ny(2027, 1, 8, 8, 30).astimezone(UTC), kind="NFP", status="extra"),
        {"date": date(2027, 1, 20), "kind": "CPI", "time_et": "10:00", "period": "2026-12"},
    ])
    cpi = cal.next_event("CPI", date(2027, 1, 1))
    assert cpi is not None and cpi.date == date(2027, 1, 20) and cpi.period == "2026-12"
    assert cpi.when.astimezone(NYZ).time() == time(10, 0)
    late = cal.next_event("CPI", date(2027, 12, 31))
    assert late is not None and late.date == date(2028, 1, 12) and late.status == "extra"
    assert late.when.astimezone(NYZ).time() == time(8, 30)  # default CPI release time
    assert "NFP" in cal.kinds()
    only = ev.EventCalendar(extra=[{"date": "2030-05-05", "kind": "FOMC"}], base=False)
    assert [e.date for e in only.events()] == [date(2030, 5, 5)]
    shipped = ev.default_calendar().next_event("CPI", date(2027, 1, 1))
    assert shipped is not None and shipped.date == date(2027, 1, 13)  # extras did not leak


@pytest.mark.parametrize("row", [
    {"kind": "CPI"},
    {"date": "2027-13-01", "kind": "CPI"},
    {"date": "2027-01-13", "kind": "C P I"},
    {"date": "2027-01-13", "kind": "CPI", "time_et": "25:00"},
    {"date": "2027-01-13", "kind": "CPI", "status": "maybe"},
])
def test_bad_extra_rows_raise_clear_errors(row: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="extra event #1"):
        ev.EventCalendar(extra=[row])
