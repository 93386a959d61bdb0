"""Crash and pause points for the crash-safety tests; inert unless their variable is set.

``SHEAF_TEST_KILL_AT=<point>:<marker file>`` makes the process that reaches ``point``
SIGKILL itself, once: it first creates the marker file, and a point whose marker exists
does nothing (so the rerun of the killed job goes through).
``SHEAF_TEST_PAUSE_AT=<point>:<seconds>`` makes it sleep there (a job that is surely
running when a test stops its server). Production code calls ``reached(name)`` at the
few places a crash is worth proving harmless.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ENV = "SHEAF_TEST_KILL_AT"
PAUSE_ENV = "SHEAF_TEST_PAUSE_AT"


def reached(point: str) -> None:
    pause = os.environ.get(PAUSE_ENV)
    if pause:
        name, _, seconds = pause.partition(":")
        if name == point:
            time.sleep(float(seconds or 0))
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, marker = spec.partition(":")
    if name != point or not marker:
        return
    try:
        Path(marker).touch(exist_ok=False)
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)
