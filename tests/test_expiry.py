"""Expiry rules and SPX option hours, pinned to published Cboe/NYSE dates."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from strategies import expiry as ex

UTC = UTC
NYZ = ZoneInfo("America/New_York")


def ny(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=NYZ)


# Cboe SPX standard expirations (published); holiday cases move to Thursday.
@pytest.mark.parametrize(
    ("ym", "expected"),
    [
        ((2025, 4), date(2025, 4, 17)),  # Good Friday 2025-04-18
        ((2014, 4), date(2014, 4, 17)),  # Good Friday 2014-04-18
        ((2019, 4), date(2019, 4, 18)),  # Good Friday 2019-04-19
        ((2026, 6), date(2026, 6, 18)),  # Juneteenth 2026-06-19
        ((2025, 12), date(2025, 12, 19)),
        ((2026, 1), date(2026, 1, 16)),
        ((2026, 3), date(2026, 3, 20)),
        ((2027, 1), date(2027, 1, 15)),
    ],
)
def test_spx_monthly_published(ym: tuple[int, int], expected: date) -> None:
    assert ex.spx_monthly_expiry(*ym) == expected


def test_spx_monthly_rule_against_stdlib_calendar() -> None:
    cal = calendar.Calendar()
    for y in range(2024, 2029):
        for m in range(1, 13):
            fridays = [d for d in cal.itermonthdates(y, m) if d.month == m and d.weekday() == 4]
            third = fridays[2]
            got = ex.spx_monthly_expiry(y, m)
            assert got in (third, third - timedelta(days=1))
            assert (got == third) == (ex.spx_option_session(third) is not None)


# Cboe VIX futures/options final settlement dates, 2025 (published schedule).
VIX_2025 = [
    date(2025, 1, 22), date(2025, 2, 19), date(2025, 3, 18), date(2025, 4, 16),
    date(2025, 5, 21), date(2025, 6, 18), date(2025, 7, 16), date(2025, 8, 20),
    date(2025, 9, 17), date(2025, 10, 22), date(2025, 11, 19), date(2025, 12, 17),
]


@pytest.mark.parametrize("month", range(1, 13))
def test_vix_2025_published(month: int) -> None:
    assert ex.vix_expiry(2025, month) == VIX_2025[month - 1]


def test_vix_holiday_wednesday_moves_to_tuesday() -> None:
    # 2024-07-19 minus 30 days is Juneteenth (Wed 2024-06-19): settled Tue 2024-06-18.
    assert ex.vix_expiry(2024, 6) == date(2024, 6, 18)
    # June 2026 SPX expiry is Thu 06-18 (Juneteenth Friday) -> VIX May 2026 is a Tuesday.
    assert ex.vix_expiry(2026, 5) == date(2026, 5, 19)


def test_vix_december_uses_next_january() -> None:
    assert ex.vix_expiry(2026, 12) == ex.spx_monthly_expiry(2027, 1) - timedelta(days=30)


def test_monthlies_inclusive_and_ordered() -> None:
    exp = date(2026, 3, 20)
    assert ex.spx_monthlies(exp, 1) == [exp]
    assert ex.spx_monthlies(exp + timedelta(days=1), 1) == [date(2026, 4, 17)]
    got = ex.spx_monthlies(date(2025, 11, 22), 4)
    assert got == [date(2025, 12, 19), date(2026, 1, 16), date(2026, 2, 20), date(2026, 3, 20)]
    assert ex.spx_monthlies(date(2026, 1, 1), 0) == []
    v = ex.vix_expiries(date(2025, 3, 18), 3)
    assert v == [date(2025, 3, 18), date(2025, 4, 16), date(2025, 5, 21)]
    with pytest.raises(ValueError):
        ex.spx_monthlies(date(2026, 1, 1), -1)


def test_bad_month_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        ex.spx_monthly_expiry(2026, 13)
    with pytest.raises(ValueError):
        ex.spx_option_session(date(2100, 1, 4))


def test_exchange_date_and_dte_use_new_york() -> None:
    late = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)  # 23:00 EDT on 03-09
    assert ex.exchange_date(late) == date(2026, 3, 9)
    assert ex.dte(date(2026, 3, 20), late) == 11
    assert ex.dte(date(2026, 3, 20), datetime(2026, 3, 10, 5, 0, tzinfo=UTC)) == 10
    with pytest.raises(ValueError):
        ex.exchange_date(datetime(2026, 3, 10, 12, 0))


def test_year_fraction_to_am_settlement() -> None:
    e = date(2026, 3, 20)
    assert ex.year_fraction(e, ny(2026, 3, 19, 9, 30)) == pytest.approx(1 / 365, rel=1e-12)
    assert ex.year_fraction(e, ny(2026, 3, 20, 9, 30)) == 0.0
    assert ex.year_fraction(e, ny(2026, 3, 20, 15, 0)) == 0.0
    # Across the DST change (2026-03-08): 12 days minus the lost hour.
    expect = (12 * 24 - 1) / (365 * 24)
    assert ex.year_fraction(e, ny(2026, 3, 8, 0, 0) + timedelta(hours=9, minutes=30)) == (
        pytest.approx(expect + 1 / (365 * 24), rel=1e-12)
    )


@pytest.mark.parametrize("d", [date(2026, 11, 27), date(2026, 12, 24), date(2025, 7, 3)])
def test_half_days_close_1315(d: date) -> None:
    s = ex.spx_option_session(d)
    assert s is not None
    o, c = s
    assert o.tzinfo is not None and c.tzinfo is not None
    assert o.astimezone(NYZ).time() == time(9, 30)
    assert c.astimezone(NYZ).time() == time(13, 15)


def test_normal_day_hours_in_utc_across_dst() -> None:
    winter = ex.spx_option_session(date(2026, 3, 6))
    summer = ex.spx_option_session(date(2026, 3, 9))
    assert winter == (
        datetime(2026, 3, 6, 14, 30, tzinfo=UTC),
        datetime(2026, 3, 6, 21, 15, tzinfo=UTC),
    )
    assert summer == (
        datetime(2026, 3, 9, 13, 30, tzinfo=UTC),
        datetime(2026, 3, 9, 20, 15, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "d",
    [date(2026, 11, 26), date(2026, 12, 25), date(2026, 4, 3), date(2026, 3, 7), date(2025, 1, 9)],
)
def test_closed_days(d: date) -> None:
    assert ex.spx_option_session(d) is None


def test_is_open_and_next_open() -> None:
    assert ex.is_spx_open(ny(2026, 3, 10, 16, 10))
    assert not ex.is_spx_open(ny(2026, 3, 10, 16, 15))
    assert ex.is_spx_open(ny(2026, 3, 10, 9, 30))
    assert not ex.is_spx_open(ny(2026, 3, 10, 9, 29))
    assert ex.is_spx_open(ny(2026, 12, 24, 13, 10))
    assert not ex.is_spx_open(ny(2026, 12, 24, 13, 20))
    # Wednesday after close before Thanksgiving -> Friday half day open.
    assert ex.next_spx_open(ny(2026, 11, 25, 17, 0)) == ny(2026, 11, 27, 9, 30)
    # Friday evening -> Monday.
    assert ex.next_spx_open(ny(2026, 3, 6, 18, 0)) == ny(2026, 3, 9, 9, 30)
    # Before the open -> same day.
    assert ex.next_spx_open(ny(2026, 3, 10, 8, 0)) == ny(2026, 3, 10, 9, 30)
    assert ex.next_spx_open(ny(2026, 3, 10, 9, 30)) == ny(2026, 3, 10, 9, 30)


def test_override_table_path() -> None:
    d = date(2026, 3, 10)
    assert ex._session_with(d, {d: None}) is None
    got = ex._session_with(d, {d: (time(9, 30), time(12, 0))})
    assert got is not None and got[1].astimezone(NYZ).time() == time(12, 0)
    assert ex._session_with(d, {}) == ex.spx_option_session(d)


def test_exchange_date_is_the_new_york_date_across_midnights_and_dst() -> None:
    # exchange_date keeps the last day's UTC bounds: every instant around New York midnights
    # and both DST changes, in time order, shuffled, and in other zones, is astimezone's date
    import random

    ny = ZoneInfo("America/New_York")
    ts = []
    for y, m, d in ((2025, 3, 8), (2025, 11, 1), (2024, 12, 31)):
        start = datetime(y, m, d, tzinfo=ny).astimezone(UTC)
        ts += [start + timedelta(minutes=10 * k) for k in range(0, 6 * 24 * 3)]
        ts += [start + timedelta(days=k) - timedelta(microseconds=1) for k in range(4)]
    shuffled = ts[:]
    random.Random(3).shuffle(shuffled)
    for t in ts + shuffled + [t.astimezone(ny) for t in ts[::7]]:
        assert ex.exchange_date(t) == t.astimezone(ny).date(), t


@pytest.mark.parametrize("year", [2000, 2020, 2026, 2027, 2050])
def test_year_table_is_the_calendar_day_by_day(year: int) -> None:
    """The per-year session table answers as the exchange calendar does asked day by day
    (its own `is_session` / `session_open_close`), every day of the year: holidays, half
    days and DST included."""
    cal = ex._xnys()
    d, sessions = date(year, 1, 1), 0
    while d.year == year:
        expected = None
        if d.weekday() < 5 and cal.is_session(d.isoformat()):
            o, c = cal.session_open_close(d.isoformat())
            expected = (o.to_pydatetime().astimezone(UTC),
                        c.to_pydatetime().astimezone(UTC) + ex.CLOSE_LAG)
            sessions += 1
        assert ex.spx_option_session(d) == expected, d
        d += timedelta(days=1)
    assert 245 <= sessions <= 253
