"""A condorbot subprocess whose JSON stdout is read event by event, with a deadline."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time


class Proc:
    def __init__(self, args, cwd):
        self.p = subprocess.Popen([sys.executable, "-m", "bot", *args], cwd=cwd,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stdout, selectors.EVENT_READ)
        self.seen: list[dict] = []

    def until(self, predicate, timeout: float) -> dict:
        """Read events until one satisfies `predicate`; AssertionError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and self.sel.select(left):
            line = self.p.stdout.readline()
            if not line:
                break
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            self.seen.append(ev)
            if predicate(ev):
                return ev
        raise AssertionError(f"event not seen in {timeout}s; last: {self.seen[-5:]}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 10 s."""
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
