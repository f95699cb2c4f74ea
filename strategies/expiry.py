"""Expiry rules and exchange time for SPX index options and VIX.

Pure functions over dates. Holidays and early closes come from the maintained
``exchange_calendars`` XNYS (NYSE) calendar; nothing here reads the clock.

* SPX standard monthly expiry: the third Friday of the month, or the Thursday before
  when that Friday is an exchange holiday (e.g. Good Friday 2025-04-18 -> 2025-04-17,
  Juneteenth 2026-06-19 -> 2026-06-18). Settlement is AM (SET at the open, 09:30 New York).
* VIX monthly expiry: 30 calendar days before the SPX standard expiry of the following
  month. In a normal month that is a Wednesday. Because the SPX standard expiry is itself
  holiday-adjusted, a holiday on the following month's third Friday moves the VIX expiry
  to the Tuesday (Cboe rule: "thirty days prior to the business day immediately preceding
  that Friday"; e.g. March 2025 -> 2025-03-18). If the resulting day is an exchange
  holiday, the business day before is used (e.g. Juneteenth 2024-06-19 -> 2024-06-18).
* SPX index-option regular hours: the NYSE session with the close 15 minutes later
  (09:30-16:15 New York; 13:15 on NYSE half days). Do NOT derive these from the Cboe
  calendar of pandas_market_calendars: it treats Dec 24 as a full day. Exceptions go in
  ``SPX_SESSION_OVERRIDES``. Global trading hours (overnight) are not modelled.
* Times in and out are timezone-aware ``datetime``s; a naive datetime raises ValueError
  (there is no "machine local date" anywhere in this module).

Calendar lookups are cached (``functools.lru_cache``): the daemon calls these every tick.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
UTC = UTC

#: Range of the XNYS calendar we load; dates outside raise ValueError.
CALENDAR_START = date(2000, 1, 1)
CALENDAR_END = date(2050, 12, 31)

#: SPX option AM settlement time (New York) on expiry day.
SETTLEMENT_TIME = time(9, 30)
#: Minutes the SPX index-option close trails the NYSE close.
CLOSE_LAG = timedelta(minutes=15)
#: Days per year for ``year_fraction`` (vollib / market convention, ACT/365).
DAYS_PER_YEAR = 365.0

#: Exceptions to "NYSE session + 15 minutes", in New York local time:
#: date -> (open, close), or None when SPX options are closed although NYSE is open.
#: Edit here (with a source) when Cboe announces hours that differ from the rule.
SPX_SESSION_OVERRIDES: Mapping[date, tuple[time, time] | None] = MappingProxyType({})


# --------------------------------------------------------------------------- calendar


@functools.lru_cache(maxsize=1)
def _xnys() -> Any:
    import exchange_calendars as xcals  # slow import; load on first use

    with warnings.catch_warnings():
        # exchange_calendars 4.x trips pandas 3 deprecation warnings while building.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        return xcals.get_calendar(
            "XNYS", start=CALENDAR_START.isoformat(), end=CALENDAR_END.isoformat()
        )


def _check_range(d: date) -> None:
    if not (CALENDAR_START <= d <= CALENDAR_END):
        raise ValueError(
            f"date {d.isoformat()} outside the loaded exchange calendar "
            f"({CALENDAR_START.isoformat()}..{CALENDAR_END.isoformat()})"
        )


@functools.lru_cache(maxsize=64)
def _year_sessions(year: int) -> dict[date, tuple[datetime, datetime]]:
    """NYSE (open, close) of every session of `year`, as aware UTC datetimes, read from the
    calendar's schedule for the whole year at once: the same values as asking
    `session_open_close` day by day (its source), at a tenth of the cost of a year of asks
    (a one-year backtest meets every day of it once)."""
    sched = _xnys().schedule.loc[f"{year}-01-01":f"{year}-12-31"]
    return {
        label.date(): (o.to_pydatetime().astimezone(UTC), c.to_pydatetime().astimezone(UTC))
        for label, o, c in zip(sched.index, sched["open"], sched["close"], strict=True)
    }


@functools.lru_cache(maxsize=8192)
def _is_nyse_session(d: date) -> bool:
    _check_range(d)
    if d.weekday() >= 5:
        return False
    return d in _year_sessions(d.year)


def _previous_session(d: date) -> date:
    """The last NYSE session strictly before ``d`` (bounded search)."""
    for k in range(1, 15):
        c = d - timedelta(days=k)
        if _is_nyse_session(c):
            return c
    raise ValueError(f"no exchange session in the 14 days before {d.isoformat()}")


def _require_aware(ts: datetime) -> None:
    if ts.tzinfo is None or ts.tzinfo.utcoffset(ts) is None:
        raise ValueError(f"naive datetime {ts!r}: pass a timezone-aware (UTC) datetime")


# --------------------------------------------------------------------------- expiries


@functools.lru_cache(maxsize=1024)
def spx_monthly_expiry(year: int, month: int) -> date:
    """SPX standard monthly expiry: third Friday, Thursday if that Friday is a holiday."""
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, got {month}")
    first = date(year, month, 1)
    third_friday = first + timedelta(days=(4 - first.weekday()) % 7 + 14)
    if _is_nyse_session(third_friday):
        return third_friday
    return _previous_session(third_friday)


def spx_monthlies(after: date, count: int) -> list[date]:
    """The next ``count`` SPX standard monthly expiries on or after ``after`` (``>=``).

    An expiry falling on ``after`` itself is included (on expiry morning it is still the
    front month until settlement). Ascending order.
    """
    return _next_monthly(spx_monthly_expiry, after, count)


def _next_monthly(rule: Callable[[int, int], date], after: date, count: int) -> list[date]:
    """The next `count` expiries of a monthly `rule(year, month)` on or after `after`."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    out: list[date] = []
    y, m = after.year, after.month
    while len(out) < count:
        e = rule(y, m)
        if e >= after:
            out.append(e)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


@functools.lru_cache(maxsize=1024)
def vix_expiry(year: int, month: int) -> date:
    """VIX monthly expiry in calendar month (year, month).

    30 days before the (holiday-adjusted) SPX standard expiry of the following month:
    a Wednesday normally, a Tuesday when the following month's third Friday is a holiday.
    If that day is an exchange holiday, the business day before.
    """
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, got {month}")
    ny, nm = (year + 1, 1) if month == 12 else (year, month + 1)
    d = spx_monthly_expiry(ny, nm) - timedelta(days=30)
    if _is_nyse_session(d):
        return d
    return _previous_session(d)


def vix_expiries(after: date, count: int) -> list[date]:
    """The next ``count`` VIX monthly expiries on or after ``after`` (``>=``), ascending."""
    return _next_monthly(vix_expiry, after, count)


# --------------------------------------------------------------------------- exchange time


_LAST: list[tuple[datetime | None, date]] = [(None, date.min)]  # the last answer given


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=NY).astimezone(UTC)


# the New York day of the last new instant: [its midnight, the next one) in UTC, and the date
_DAY: list[tuple[datetime, datetime, date]] = [(_midnight(date(2000, 1, 2)),
                                                _midnight(date(2000, 1, 2)), date(2000, 1, 2))]


def exchange_date(ts: datetime) -> date:
    """The calendar date in New York at instant ``ts`` (aware datetime, any zone).

    A step asks this a dozen times, mostly of one instant (the last answer is kept: datetimes
    are immutable, so the object is enough) and otherwise of instants on the same New York
    day (answered from that day's UTC bounds, without a time-zone conversion)."""
    last = _LAST[0]
    if last[0] is ts:  # most asks in a row are of one instant
        return last[1]
    _require_aware(ts)
    lo, hi, d = _DAY[0]
    if not lo <= ts < hi:  # a new New York day: its bounds (midnights, never in a DST gap)
        d = ts.astimezone(NY).date()
        _DAY[0] = (_midnight(d), _midnight(d + timedelta(days=1)), d)
    _LAST[0] = (ts, d)
    return d


def dte(expiry: date, now: datetime) -> int:
    """Calendar days from the New York date of ``now`` to ``expiry`` (negative if past)."""
    return (expiry - exchange_date(now)).days


def settlement_time(expiry: date) -> datetime:
    """AM settlement instant of an SPX expiry (09:30 New York) as an aware UTC datetime."""
    return datetime.combine(expiry, SETTLEMENT_TIME, tzinfo=NY).astimezone(UTC)


def year_fraction(expiry: date, now: datetime) -> float:
    """Years (ACT/365) from ``now`` to 09:30 New York on ``expiry``, floored at 0."""
    _require_aware(now)
    seconds = (settlement_time(expiry) - now).total_seconds()
    return max(seconds, 0.0) / (DAYS_PER_YEAR * 86400.0)


# --------------------------------------------------------------------------- SPX hours


def _session_with(
    d: date, overrides: Mapping[date, tuple[time, time] | None]
) -> tuple[datetime, datetime] | None:
    if d in overrides:
        hours = overrides[d]
        if hours is None:
            return None
        o, c = hours
        return (
            datetime.combine(d, o, tzinfo=NY).astimezone(UTC),
            datetime.combine(d, c, tzinfo=NY).astimezone(UTC),
        )
    if not _is_nyse_session(d):
        return None
    o_utc, c_utc = _year_sessions(d.year)[d]
    return o_utc, c_utc + CLOSE_LAG


@functools.lru_cache(maxsize=8192)
def spx_option_session(d: date) -> tuple[datetime, datetime] | None:
    """Regular-hours (open, close) of SPX index options on ``d`` as aware UTC datetimes.

    NYSE session with the close 15 minutes later (16:15 New York; 13:15 on half days),
    unless ``SPX_SESSION_OVERRIDES`` says otherwise. None when there is no session.
    """
    return _session_with(d, SPX_SESSION_OVERRIDES)


def session_at(ts: datetime, last: tuple[datetime, datetime] | None = None
               ) -> tuple[datetime, datetime] | None:
    """`spx_option_session(exchange_date(ts))`; `last`, a session asked before, when `ts`
    is inside it (the same answer, for a caller that asks every step)."""
    if last is not None and last[0] <= ts < last[1]:
        return last
    return spx_option_session(exchange_date(ts))


def is_spx_open(ts: datetime) -> bool:
    """True when SPX index options are in regular trading hours at ``ts`` (open <= ts < close)."""
    s = spx_option_session(exchange_date(ts))
    return s is not None and s[0] <= ts < s[1]


def next_spx_open(ts: datetime) -> datetime:
    """The first SPX session open at or after ``ts`` (aware UTC datetime).

    During a session this is the next session's open.
    """
    d = exchange_date(ts)
    for k in range(0, 31):
        s = spx_option_session(d + timedelta(days=k))
        if s is not None and s[0] >= ts:
            return s[0]
    raise ValueError(f"no SPX session within 30 days after {ts.isoformat()}")
