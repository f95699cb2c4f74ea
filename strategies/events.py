"""Economic calendar (CPI, PPI, FOMC) and event blackout windows.

The calendar ships as ``strategies/data/events.csv`` (2000-2027; sources and the status of
every row - official, rescheduled or projected - are named in the file). Config can add
rows, move a release (add the new date, cancel the old one) or add new kinds::

    cal = EventCalendar(extra=[
        {"date": "2027-01-13", "kind": "CPI", "time_et": "08:30"},
        {"date": "2027-01-14", "kind": "PPI", "status": "cancelled"},  # drops that row
    ])
    cal.next_event("CPI", now)
    cal.in_blackout(now, ["CPI", "FOMC"], before=timedelta(hours=24), after=timedelta(hours=2))

Module-level ``next_event`` / ``in_blackout`` use the shipped calendar. Times are aware
datetimes; naive datetimes raise ValueError. Pure: reads only its own package data file.
"""

from __future__ import annotations

import bisect
import csv
import datetime as _dt
import functools
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
UTC = _dt.UTC
KNOWN_KINDS = ("CPI", "PPI", "FOMC")
STATUSES = ("official", "rescheduled", "projected", "extra", "cancelled")
DEFAULT_TIMES = {"CPI": time(8, 30), "PPI": time(8, 30), "FOMC": time(14, 0)}
_KIND_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,15}$")


@dataclass(frozen=True, order=True)
class Event:
    """One scheduled release: ``when`` is the release instant (aware, UTC)."""

    when: datetime
    kind: str
    period: str = field(default="", compare=False)
    status: str = field(default="official", compare=False)
    source: str = field(default="", compare=False)

    @property
    def date(self) -> _dt.date:
        """Release date in New York."""
        return self.when.astimezone(NY).date()

    @property
    def projected(self) -> bool:
        return self.status == "projected"


Row = Event | Mapping[str, object]


def _aware(ts: datetime | date) -> datetime:
    if isinstance(ts, datetime):
        if ts.tzinfo is None or ts.tzinfo.utcoffset(ts) is None:
            raise ValueError(f"naive datetime {ts!r}: pass a timezone-aware datetime")
        return ts.astimezone(UTC)
    return datetime.combine(ts, time(0, 0), tzinfo=NY).astimezone(UTC)


def _kind(k: object) -> str:
    s = str(k).strip().upper()
    if not _KIND_RE.match(s):
        raise ValueError(f"event kind must be a short identifier such as CPI, got {k!r}")
    return s


def _kinds(kinds: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(kinds, str):
        return (_kind(kinds),)
    return tuple(_kind(k) for k in kinds)


def parse_row(row: Mapping[str, object], where: str = "row") -> tuple[Event, bool]:
    """Build an Event from a mapping (date, kind, [time_et, period, status, source]).

    Returns (event, cancelled). Raises ValueError naming ``where`` on bad input.
    """
    try:
        kind = _kind(row["kind"])
        d = row["date"]
        day = d if isinstance(d, date) and not isinstance(d, datetime) else date.fromisoformat(
            str(d).strip()
        )
        t_raw = row.get("time_et") or row.get("time")
        if t_raw in (None, ""):
            t = DEFAULT_TIMES.get(kind, time(0, 0))
        elif isinstance(t_raw, time):
            t = t_raw
        else:
            t = time.fromisoformat(str(t_raw).strip())
        status = str(row.get("status") or "extra").strip().lower()
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    except KeyError as e:
        raise ValueError(f"{where}: missing field {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None
    when = datetime.combine(day, t, tzinfo=NY).astimezone(UTC)
    ev = Event(
        when=when,
        kind=kind,
        period=str(row.get("period") or ""),
        status=status,
        source=str(row.get("source") or ""),
    )
    return ev, status == "cancelled"


def _parse_csv(text: str, name: str) -> list[Event]:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    out = []
    for i, rec in enumerate(csv.DictReader(io.StringIO("\n".join(lines))), start=2):
        ev, cancelled = parse_row(rec, where=f"{name} data row {i}")
        if not cancelled:
            out.append(ev)
    return out


@functools.lru_cache(maxsize=1)
def _shipped() -> tuple[Event, ...]:
    text = resources.files("strategies").joinpath("data/events.csv").read_text(encoding="utf-8")
    return tuple(sorted(_parse_csv(text, "events.csv")))


class EventCalendar:
    """Sorted, immutable event calendar: shipped data (unless ``base=False``) + ``extra``.

    ``extra`` rows are Events or mappings (see ``parse_row``); a row with
    ``status: cancelled`` removes the matching (kind, New York date) row instead.
    """

    def __init__(self, extra: Iterable[Row] = (), *, base: bool = True) -> None:
        events: dict[tuple[str, date], Event] = {}
        for ev in _shipped() if base else ():
            events[(ev.kind, ev.date)] = ev
        for i, row in enumerate(extra):
            if isinstance(row, Event):
                ev, cancelled = row, row.status == "cancelled"
                _aware(ev.when)
            else:
                ev, cancelled = parse_row(row, where=f"extra event #{i + 1}")
            key = (ev.kind, ev.date)
            if cancelled:
                events.pop(key, None)
            else:
                events[key] = ev
        self._all: tuple[Event, ...] = tuple(sorted(events.values()))
        by_kind: dict[str, list[Event]] = {}
        for ev in self._all:
            by_kind.setdefault(ev.kind, []).append(ev)
        self._by_kind = {k: (tuple(v), [e.when for e in v]) for k, v in by_kind.items()}

    def events(self, kinds: str | Iterable[str] | None = None) -> tuple[Event, ...]:
        """All events (of ``kinds``), in time order."""
        if kinds is None:
            return self._all
        ks = set(_kinds(kinds))
        return tuple(e for e in self._all if e.kind in ks)

    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_kind))

    def next_event(self, kind: str | Iterable[str], after: datetime | date) -> Event | None:
        """First event of ``kind`` at or after ``after`` (a date means 00:00 New York).

        None when the calendar has no later event of that kind (its data ran out).
        """
        ts = _aware(after)
        best: Event | None = None
        for k in _kinds(kind):
            evs, whens = self._by_kind.get(k, ((), []))
            i = bisect.bisect_left(whens, ts)
            if i < len(evs) and (best is None or evs[i].when < best.when):
                best = evs[i]
        return best

    def last_event(self, kind: str | Iterable[str], before: datetime | date) -> Event | None:
        """Last event of ``kind`` strictly before ``before``."""
        ts = _aware(before)
        best: Event | None = None
        for k in _kinds(kind):
            evs, whens = self._by_kind.get(k, ((), []))
            i = bisect.bisect_left(whens, ts) - 1
            if i >= 0 and (best is None or evs[i].when > best.when):
                best = evs[i]
        return best

    def blackout_event(
        self,
        ts: datetime,
        kinds: str | Iterable[str],
        before: timedelta,
        after: timedelta,
    ) -> Event | None:
        """The event whose window [when - before, when + after] contains ``ts``, or None."""
        if before < timedelta(0) or after < timedelta(0):
            raise ValueError("blackout before/after must be non-negative timedeltas")
        now = _aware(ts)
        hit: Event | None = None
        for k in _kinds(kinds):
            evs, whens = self._by_kind.get(k, ((), []))
            # candidates: events with when >= now - after, the first one decides
            i = bisect.bisect_left(whens, now - after)
            if i < len(evs) and evs[i].when - before <= now and (hit is None or evs[i] < hit):
                hit = evs[i]
        return hit

    def in_blackout(
        self,
        ts: datetime,
        kinds: str | Iterable[str],
        before: timedelta,
        after: timedelta,
    ) -> bool:
        """True when ``ts`` is within ``before`` ahead of / ``after`` past an event of ``kinds``."""
        return self.blackout_event(ts, kinds, before, after) is not None


@functools.lru_cache(maxsize=1)
def default_calendar() -> EventCalendar:
    """The shipped calendar (2000-2027), built once."""
    return EventCalendar()


def next_event(kind: str | Iterable[str], after: datetime | date) -> Event | None:
    """``default_calendar().next_event``."""
    return default_calendar().next_event(kind, after)


def in_blackout(
    ts: datetime, kinds: str | Iterable[str], before: timedelta, after: timedelta
) -> bool:
    """``default_calendar().in_blackout``."""
    return default_calendar().in_blackout(ts, kinds, before, after)
