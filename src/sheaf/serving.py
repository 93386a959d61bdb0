"""``sheaf serve --workers N``: N API processes on one port, one job executor.

One API process answers every request from one thread pool and one GIL; under 100
clients that is the bottleneck, so the server pre-forks (uvicorn's supervisor: one
listening socket shared by N processes, a process that dies is replaced).

What must still happen once per server happens in the supervisor, the process
``sheaf serve`` starts in: migrations, the signing key, the job executor and its
maintenance pass (reaper, due retries, WAL checkpoints, orphaned uploads). An API
process hands each job it submits to the supervisor as its id in a Unix datagram: the
job row is committed before, so a lost datagram costs only time (the maintenance pass
offers queued jobs too). The API processes share one rate-limit budget in a
memory-mapped file (``auth/sharedlimit.py``), unless Redis keeps it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.supervisors import Multiprocess

from sheaf.auth import sharedlimit
from sheaf.config import Settings
from sheaf.jobs import worker
from sheaf.migrate import upgrade
from sheaf.runtime import Runtime, largest_budget, rate_limit_store

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

APP = "sheaf.serving:worker_app"
RELAY_ENV = "SHEAF_SERVE_RELAY"  # the supervisor's job socket, for its API processes
LIMITS_ENV = "SHEAF_SERVE_LIMITS"  # the shared rate-limit store, when there is one
JOB_ID = re.compile(rb"[0-9a-f]{32}")
# how long a hand-off that did not fit at once may wait for room in the supervisor's queue
RELAY_SEND_TIMEOUT = 5.0


def serve(settings: Settings, host: str, port: int, workers: int, log_level: str) -> None:
    """Run the API in ``workers`` processes (one: in this process, as before)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s %(message)s")
    if workers <= 1:
        from sheaf.app import create_app

        uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)
        return
    # (a process spawned on a busy machine may take longer than uvicorn's 5 s to answer
    # its first health check while it imports the app; it would be killed and respawned)
    config = uvicorn.Config(APP, factory=True, host=host, port=port, workers=workers,
                            log_level=log_level, timeout_worker_healthcheck=60)
    listening = config.bind_socket()  # first: a port in use is said before any other work
    upgrade(settings)
    _ = settings.signing_key  # generated once here, not raced for by the API processes
    if settings.jobs.executor == "inline" or settings.jobs.isolation == "thread":
        worker.import_handlers()  # jobs run in this process's threads
    # (not the web app: this process serves no request, and its imports cost memory)
    with _scratch() as scratch, contextlib.closing(listening):
        runtime = Runtime.build(settings)
        relay = RelayListener(scratch / "jobs.sock", runtime.executor.submit)
        os.environ[RELAY_ENV] = str(relay.path)
        os.environ.pop(LIMITS_ENV, None)
        if rate_limit_store(settings) == "process":
            limits = scratch / "ratelimit"
            # (every limiter a Runtime makes, request budget and sign-in failures alike,
            # keeps its request times here)
            sharedlimit.create(limits, largest_budget(settings))
            os.environ[LIMITS_ENV] = str(limits)
        runtime.executor.start()
        relay.start()
        log.info("%d API processes; jobs and their maintenance run in process %d",
                 workers, os.getpid())
        try:
            Multiprocess(config, sockets=[listening]).run()
        finally:
            relay.stop()
            runtime.close()


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A private directory (0700) for the supervisor's socket and shared memory."""
    shm = Path("/dev/shm")
    where = Path(shm if shm.is_dir() and os.access(shm, os.W_OK) else tempfile.gettempdir())
    _sweep_scratch(where)
    with tempfile.TemporaryDirectory(prefix=f"sheaf-serve-{os.getpid()}-", dir=where) as path:
        yield Path(path)


def _sweep_scratch(where: Path) -> None:
    """Remove what supervisors that were killed left (their pid is in the name)."""
    for path in where.glob("sheaf-serve-*-*"):
        pid = path.name.split("-")[2]
        try:
            if not pid.isdigit() or path.stat().st_uid != os.getuid():
                continue
        except OSError:  # (gone meanwhile)
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # alive, someone else's
            continue


def worker_app() -> FastAPI:
    """An API process's app (uvicorn calls this in each process it starts)."""
    from sheaf.app import create_app

    _exit_with_parent()
    settings = Settings()

    def build(settings: Settings) -> Runtime:
        limits = os.environ.get(LIMITS_ENV)
        runtime = Runtime.build(settings, executor=RelayExecutor(os.environ[RELAY_ENV]),
                                shared_limits=Path(limits) if limits else None)
        # (the supervisor empties the WAL once its jobs have stopped; here, on shutdown,
        # a TRUNCATE checkpoint would wait up to the busy timeout on a running job)
        runtime.checkpoint_on_close = False
        return runtime

    return create_app(settings, migrate=False, make_runtime=build)


def _exit_with_parent() -> None:
    """Ask Linux for SIGTERM when the supervisor dies (SIGKILL leaves no one to stop us)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() == 1:  # the parent was already gone
            os.kill(os.getpid(), signal.SIGTERM)


class RelayExecutor:
    """An API process's executor: job ids go to the supervisor, which runs them.

    Linux queues only ``net.unix.max_dgram_qlen`` (10 by default) datagrams for the
    supervisor's socket, so a burst of submissions (many clients, a busy machine) finds
    it full. A job id that does not fit is sent by a thread of this process that waits
    for room, rather than left to the maintenance pass (up to its interval later).
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)  # a full queue must not stall a request
        self._late: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        pass

    def submit(self, job_id: str) -> None:
        try:
            self._socket.sendto(job_id.encode(), self.address)
        except BlockingIOError:
            self._send_later(job_id)
        except OSError as exc:  # the row is saved: the maintenance pass offers it later
            log.warning("could not hand job %s to the server's executor: %s", job_id, exc)

    def _send_later(self, job_id: str) -> None:
        with self._lock:
            if self._sender is None:
                self._sender = threading.Thread(target=self._send_late, daemon=True,
                                                name="sheaf-relay-sender")
                self._sender.start()
        self._late.put(job_id)

    def _send_late(self) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as waiting:
            waiting.settimeout(RELAY_SEND_TIMEOUT)
            while (job_id := self._late.get()) is not None:
                try:
                    waiting.sendto(job_id.encode(), self.address)
                except OSError as exc:  # (as above: maintenance offers it later)
                    log.warning("could not hand job %s to the server's executor: %s",
                                job_id, exc)

    def shutdown(self, graceful: bool = True) -> None:
        if self._sender is not None:
            self._late.put(None)
            self._sender.join(timeout=RELAY_SEND_TIMEOUT)
        self._socket.close()


class RelayListener:
    """The supervisor's end: each datagram is a job id for its executor."""

    def __init__(self, path: Path, submit: Callable[[str], None]) -> None:
        self.path = path
        self._submit = submit
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(path))
        self._socket.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sheaf-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._socket.recv(64)
            except TimeoutError:
                continue
            except OSError:
                return
            if not JOB_ID.fullmatch(message):
                log.warning("ignored a malformed job hand-off (%d bytes)", len(message))
                continue
            try:
                self._submit(message.decode())
            except Exception:  # the executor's own failure; the job row stays queued
                log.exception("could not submit job %s", message.decode())
