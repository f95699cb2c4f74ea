"""The session's VIX check on the IB path (bot.broker.ib_vix) through real ib_async against the
emulator: SPX option snapshots, the Cboe method (strategies.vix), `market.vix_check` logged
beside IB's VIX tick, once per session, not in the first hour."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest
from ib_helpers import broker, gateway, ib_errors  # noqa: F401
from structlog.testing import capture_logs

from strategies import expiry as xp
from strategies import vix


async def test_vix_from_ib_snapshots_matches_the_full_strip_and_is_logged_once_a_session():
    async with gateway() as gw, broker(gw) as b:
        b.vix_check.per_side = 12  # fewer snapshots than the default 40: a faster test
        await b.snapshot()  # 30 min after the open: too early
        assert b.vix_check.task is None
        await gw.advance(35 * 60)
        with capture_logs() as logs:
            snap = await b.snapshot()
            assert b.vix_check.task is not None
            got = await b.vix_check.task
        assert not b.vix_check.due(snap.time + timedelta(hours=5))  # same session: not again
        (ev,) = [e for e in logs if e["event"].startswith("market.vix_check")]
        assert ev["event"] == "market.vix_check" and got is not None
        assert ev["ib"] == snap.vix and ev["ours"] == got["ours"]
        near, nxt = (date.fromisoformat(d) for d in (ev["near"], ev["next"]))
        chains = gw.snap.chains  # the emulator's own quotes at the same market time
        full = vix.vix_from_chains([chains[near], chains[nxt]], b.vix_check.rate)
        assert xp.dte(near, snap.time) <= 30 < xp.dte(nxt, snap.time)
        assert got["ours"] == pytest.approx(full, abs=0.3)  # sampled strikes vs every strike
        assert math.isfinite(got["diff"]) and got["quotes"] >= 40
