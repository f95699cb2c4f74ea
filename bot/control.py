"""The control file: one word that tells the daemon what to do.

Words: run, pause, reduce, stop, flatten. The CLI writes it atomically (temp file + rename) so
the daemon never reads half a word. Unknown or unreadable content is reported once per distinct
content and changes nothing.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

WORDS = ("run", "pause", "reduce", "stop", "flatten")


def write(path: Path | str, word: str) -> None:
    if word not in WORDS:
        raise ValueError(f"unknown control word {word!r}; expected one of {', '.join(WORDS)}")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".control.", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(word + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Reading:
    word: str | None  # a valid word, or None when the file is missing
    error: str | None = None  # set when the content is not a valid word
    raw: str = ""


def read(path: Path | str) -> Reading:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return Reading(None)
    except OSError as e:
        return Reading(None, f"cannot read control file: {e.strerror}")
    try:
        text = data.decode("utf-8").strip().lower()
    except UnicodeDecodeError:
        return Reading(None, "control file is not UTF-8 text", repr(data[:40]))
    if text in WORDS:
        return Reading(text, raw=text)
    return Reading(None, f"unknown control word {text[:40]!r}", text[:40])
