"""matplotlib for the report and `simulate` charts: the file backend, and quiet.

matplotlib logs "generated new fontManager" at INFO on the first import on a new machine
(it builds its font cache); through the root logger that line would land in the daemon's or
the caller's log. Its logger is held at WARNING here, before the first import.
"""

from __future__ import annotations

import logging
from typing import Any


def pyplot() -> Any:
    """`matplotlib.pyplot` on the Agg backend, with matplotlib's own INFO lines silenced."""
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
