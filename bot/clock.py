"""All time comes from a clock object: real time for live runs, simulated for the sim.

`SimClock` only moves when the driver advances it; `speed` is simulated seconds per wall
second (None = as fast as possible, no sleeping).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

# sleeps between turns of the event loop given by a SimClock at max speed (a signal, a
# control-file change or a scheduled job waits that many steps: ~10 ms of a backtest). A
# count, not wall time: the same turns on any machine, also one 40x slower (valgrind, where
# a wall-time rule gave a turn at every step and counted work a real run does not do)
YIELD_STEPS = 40


class RealClock:
    simulated = False
    speed: float | None = 1.0

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset  # broker server time minus local time, when the broker tells us

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SimClock:
    simulated = True

    def __init__(self, start: datetime, speed: float | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self.speed = speed
        self._unyielded = 0  # sleeps since the last turn of the loop (at max speed)

    def now(self) -> datetime:
        return self._now

    def set(self, ts: datetime) -> None:
        ts = ts.astimezone(UTC)
        if ts < self._now:
            raise ValueError(f"simulated time cannot go back: {ts} < {self._now}")
        self._now = ts

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    def skip(self, seconds: float) -> bool:
        """`sleep(seconds)` done at once when it would not wait nor give the loop a turn (as
        fast as possible, the last turn under YIELD_STEPS sleeps ago): True if so (a
        backtest's steps then make no coroutine for it); False, nothing done, when `sleep`
        is needed."""
        if self.speed or self._unyielded + 1 >= YIELD_STEPS:
            return False
        self._unyielded += 1
        self.advance(seconds)
        return True

    async def sleep(self, seconds: float) -> None:
        """Advance simulated time by `seconds`, taking seconds/speed of wall time."""
        if self.speed:
            await asyncio.sleep(seconds / self.speed)
        else:
            # as fast as possible: give the loop a turn (the scheduler's jobs, signals, other
            # tasks) once every YIELD_STEPS sleeps, not at every step (a turn of the loop
            # costs about as much as a tenth of a backtest step)
            self._unyielded += 1
            if self._unyielded >= YIELD_STEPS:
                self._unyielded = 0
                await asyncio.sleep(0)
        self.advance(seconds)


class JumpDetector:
    """Notices the market clock moving unlike the monotonic clock (NTP step, suspend/resume,
    a broker clock resync): the clock should advance `rate` x the monotonic time elapsed."""

    def __init__(self, tolerance_seconds: float, rate: float = 1.0) -> None:
        self.tolerance = tolerance_seconds
        self.rate = rate
        self._last: tuple[float, datetime] | None = None

    def check(self, now: datetime, mono: float | None = None) -> float | None:
        """The jump in seconds (clock minus expected) when beyond tolerance, else None."""
        mono = time.monotonic() if mono is None else mono
        last, self._last = self._last, (mono, now)
        if last is None:
            return None
        expected = (mono - last[0]) * self.rate
        jump = (now - last[1]).total_seconds() - expected
        return jump if abs(jump) > self.tolerance else None
