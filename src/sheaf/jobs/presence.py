"""Which job-running servers are alive here, so the CLI hands its jobs to them.

A server whose executor runs jobs in-house (``local``) writes a small file in the data
directory while it lives, refreshes it every few seconds, and polls for queued jobs that
nobody offered it (what ``sheaf identity load-accounts`` submits) every ``POLL_SECONDS``.
The CLI, finding a live server on the same database, only submits and watches: the job
starts on the server's workers within a second instead of in a worker the CLI would have
to start (and would take down with it on Ctrl-C).

The file names its process and host and a digest of the database URL (never the URL,
which may hold a password). A file whose process is gone or that has not been refreshed
for ``STALE_SECONDS`` is a killed server's leftover and is ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sheaf.config import Settings
from sheaf.db import Database
from sheaf.jobs import repository

log = logging.getLogger(__name__)

POLL_SECONDS = 0.3
REFRESH_SECONDS = 5.0
STALE_SECONDS = 20.0


def _folder(settings: Settings) -> Path:
    return settings.data_dir / "servers"


def _database_digest(settings: Settings) -> str:
    return hashlib.sha256(settings.db_url.encode()).hexdigest()[:16]


class Presence:
    """A running server's file and its poll for queued jobs (``offer`` gets their ids)."""

    def __init__(self, settings: Settings, db: Database, offer: Callable[[str], None]) -> None:
        self.settings = settings
        self.db = db
        self.offer = offer
        self.path = _folder(settings) / f"{socket.gethostname()}-{os.getpid()}.json"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "database": _database_digest(self.settings), "started": time.time(),
        }))
        self._thread = threading.Thread(target=self._loop, name="sheaf-presence", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.path.unlink(missing_ok=True)

    def _loop(self) -> None:
        refreshed = time.monotonic()
        while not self._stop.wait(POLL_SECONDS):
            try:
                if time.monotonic() - refreshed >= REFRESH_SECONDS:
                    os.utime(self.path)
                    refreshed = time.monotonic()
                # (jobs this server submitted itself were offered at once; the wait keeps
                # them out of this poll)
                with self.db.read() as session:
                    ready = repository.ready_ids(session, waited=POLL_SECONDS)
                for job_id in ready:
                    self.offer(job_id)
            except Exception:  # the next poll tries again; maintenance is the backstop
                log.debug("presence poll failed", exc_info=True)


def _alive(pid: int) -> bool:
    if pid <= 0:  # (kill(0) would signal our own process group)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def live_server(settings: Settings) -> dict[str, Any] | None:
    """A live job-running server on this host and database, or None."""
    folder = _folder(settings)
    if not folder.is_dir():
        return None
    host, digest, now = socket.gethostname(), _database_digest(settings), time.time()
    for path in folder.glob("*.json"):
        try:
            info = json.loads(path.read_text())
            fresh = now - path.stat().st_mtime < STALE_SECONDS
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict) or info.get("host") != host:
            continue
        if info.get("database") == digest and fresh and _alive(int(info.get("pid", 0))):
            return info
    return None


class HandOff:
    """The CLI's executor while a server runs: submitting is the server's poll's to find."""

    def start(self) -> None:
        pass

    def submit(self, job_id: str) -> None:
        pass

    def shutdown(self, graceful: bool = True) -> None:
        pass
