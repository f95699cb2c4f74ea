"""Daemon._persist skips `guard.export()` while a signature of what it exports is unchanged
(issue 16: no deep compare of the whole state every step). The signature lists the guard's
fields by hand: a field added to `export()` must be added to it too, or its changes alone
would not be written. This pins the exported keys and the fields they come from."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.config import RiskSettings
from bot.risk import RiskGuard

EXPORTED = {"state", "operator", "daily", "day", "start_nl", "last_nl", "reduced_on", "orders"}


def test_export_is_a_function_of_the_signature_fields() -> None:
    g = RiskGuard(RiskSettings())
    assert set(g.export()) == EXPORTED  # a new key: extend Daemon._persist's signature
    g._held, g._daily, g._day = "HALTED", "REDUCING", date(2026, 1, 5)
    g._start_nl, g._last_nl, g._reduced_on = 1.0, 2.0, date(2026, 1, 4)
    g._orders = [datetime(2026, 1, 5, 15, tzinfo=UTC)]
    e = g.export()
    h = RiskGuard(RiskSettings())
    h.restore(e)
    # everything but last_nl (never compared) round-trips through the signature's fields
    sig = [(x._held, x._daily, x._day, x._start_nl, x._reduced_on, tuple(x._orders))
           for x in (g, h)]
    assert sig[0] == sig[1] and h.export() == e
