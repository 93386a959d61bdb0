"""Workers beside the API, so a long aggregation never stalls HTTP.

By default each job runs in a worker *process*: an aggregation is CPU- and write-heavy
Python, and in a thread it would fight the API's request handlers for the GIL (sqlite3
gives the GIL back for every row it writes, then waits to get it back). ``isolation =
"thread"`` keeps jobs in-process, for tests whose handlers live in the test module.

Each executor thread owns one worker process, started on its first job and replaced when
it dies: a worker that dies idle only costs a restart, and one that dies mid-job (killed,
out of memory) has its job handed back at once, since it can no longer commit. The
process dies with the thread that owns it (see sheaf.jobs.worker), so nothing outlives the
server. On shutdown, running jobs get ``shutdown_grace_seconds`` to finish; then their
workers are stopped and the jobs handed back to the queue for the next start.

A maintenance thread (``sheaf.jobs.maintenance``) reaps jobs of workers that vanished
without their server seeing it (another host, a killed server) and re-offers queued jobs
whose time has come.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import socket
import threading
import time
from multiprocessing.connection import wait

from sheaf.config import Settings
from sheaf.db import Database
from sheaf.jobs import repository, worker
from sheaf.jobs.maintenance import Maintenance
from sheaf.jobs.models import Job
from sheaf.jobs.reaper import hand_back
from sheaf.jobs.runner import run_job
from sheaf.jobs.states import JobStatus

log = logging.getLogger(__name__)
_STOP = ""
_SPAWN = multiprocessing.get_context("spawn")


class WorkerDied(Exception):
    def __init__(self, exitcode: int | None, starting: bool = False,
                 idle: bool = False) -> None:
        super().__init__(f"worker process exited with code {exitcode}")
        self.exitcode = exitcode
        self.starting = starting  # before it could take the job
        self.idle = idle  # it was gone before the job was handed to it


class WorkerProcess:
    """One worker process and the pipe its owner thread talks to it through."""

    def __init__(self, settings_json: str, name: str) -> None:
        self._conn, child = _SPAWN.Pipe()
        self.process = _SPAWN.Process(target=worker.main, name=name, daemon=True,
                                      args=(child, settings_json, os.getpid()))
        self.process.start()
        child.close()
        self.ready = False

    @property
    def worker_prefix(self) -> str:
        """How the worker ids of this process's runs begin (see runner.worker_name)."""
        return f"{socket.gethostname()}:{self.process.pid}:"

    def alive(self) -> bool:
        return self.process.is_alive()

    def run(self, job_id: str) -> str | None:
        """Run one job there; raises WorkerDied if the process ends before answering."""
        if not self.ready:
            try:
                self._answer()  # (the imports: "ready")
            except WorkerDied as died:
                raise WorkerDied(died.exitcode, starting=True) from None
            self.ready = True
        try:
            self._conn.send(job_id)
        except OSError:  # (its end of the pipe is closed: it never saw the job)
            self.process.join()
            raise WorkerDied(self.process.exitcode, idle=True) from None
        return self._answer()

    def _answer(self) -> str | None:
        wait([self._conn, self.process.sentinel])
        try:
            if self._conn.poll():
                return self._conn.recv()  # type: ignore[no-any-return]
        except (EOFError, OSError):
            pass
        self.process.join()
        raise WorkerDied(self.process.exitcode)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()

    def stop(self, timeout: float = 5) -> None:
        """Ask an idle worker to exit; kill it if it does not."""
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self._conn.close()


class LocalExecutor:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._queue: queue.Queue[str] = queue.Queue()
        self._offered: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._processes: dict[int, WorkerProcess] = {}  # executor thread number -> its worker
        self._closing = threading.Event()  # shutting down: take no more jobs
        self._stopping = threading.Event()  # past the grace period: stop running ones
        self._maintenance = Maintenance(db, settings, self.submit)

    def start(self) -> None:
        for n in range(self.settings.jobs.workers):
            t = threading.Thread(target=self._work, args=(n,), name=f"sheaf-worker-{n}",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        self._maintenance.start()

    def submit(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._offered:
                return
            self._offered.add(job_id)
        self._queue.put(job_id)

    def shutdown(self, graceful: bool = True) -> None:
        """Stop taking work. Running jobs get the grace period (none if not ``graceful``)
        to finish; the rest are stopped and handed back to the queue."""
        self._closing.set()
        self._maintenance.stop(timeout=30 if graceful else 0)
        for _ in self._threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + (self.settings.jobs.shutdown_grace_seconds
                                       if graceful else 0)
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self._stopping.set()
        with self._lock:
            running = list(self._processes.values())
        for process in running:  # still at a job after the grace period
            process.kill()
        for t in self._threads:
            t.join(timeout=30)

    def _run(self, n: int, job_id: str) -> None:
        if self.settings.jobs.isolation == "thread":
            run_job(self.db, job_id, self.settings)
            return
        process = self._process(n)
        try:
            try:
                process.run(job_id)
            except WorkerDied as died:
                if died.starting or not (died.idle or self._never_took(job_id, process)):
                    raise
                # It died while idle, before alive() could see it: the job was never taken
                # (the job row says so), nothing was lost, and a fresh process takes it.
                log.warning("worker process %s exited while idle (exit code %s); starting "
                            "another", process.process.pid, died.exitcode)
                with self._lock:
                    self._processes.pop(n, None)
                process = self._process(n)
                process.run(job_id)
        except WorkerDied as died:
            with self._lock:
                self._processes.pop(n, None)
            if died.starting:
                log.error("worker process %s exited while starting (exit code %s); job %s "
                          "stays queued", process.process.pid, died.exitcode, job_id)
            elif self._stopping.is_set():
                self._hand_back(job_id, process, "the server stopped while it ran",
                                count_attempt=False)
            else:
                log.error("worker process %s died (exit code %s) while running job %s",
                          process.process.pid, died.exitcode, job_id)
                self._hand_back(job_id, process,
                                f"worker process {process.process.pid} died "
                                f"(exit code {died.exitcode})")

    def _process(self, n: int) -> WorkerProcess:
        """This thread's worker process: started here, so it dies with this thread."""
        with self._lock:
            process = self._processes.get(n)
        if process is not None and not process.alive():
            # Died while idle: nothing was lost, only the process needs replacing.
            log.warning("worker process %s exited while idle (exit code %s); starting another",
                        process.process.pid, process.process.exitcode)
            process.stop()
            process = None
        if process is None:
            process = WorkerProcess(self.settings.model_dump_json(), f"sheaf-worker-{n}")
            with self._lock:
                self._processes[n] = process
        return process

    def _never_took(self, job_id: str, process: WorkerProcess) -> bool:
        """Whether the job row shows no run of this process (it claims jobs in the row)."""
        with self.db.read() as session:
            job = repository.get(session, job_id)
        return job is not None and not (job.worker_id or "").startswith(process.worker_prefix)

    def _hand_back(self, job_id: str, process: WorkerProcess, reason: str,
                   count_attempt: bool = True) -> None:
        """The job's worker is dead, so no lease need run out: requeue (or end) it now."""
        with self.db.write() as session:
            job = repository.get(session, job_id)
            if (job is None or job.status != JobStatus.RUNNING.value
                    or not (job.worker_id or "").startswith(process.worker_prefix)):
                return  # it had finished (its outcome commits with its data), or moved on
            mine = [Job.worker_id == job.worker_id, Job.attempt == job.attempt]
            status = hand_back(session, job, mine, reason, count_attempt=count_attempt)
        if status is JobStatus.QUEUED and not self._closing.is_set():
            self.submit(job_id)

    def _work(self, n: int) -> None:
        if n == 0 and self.settings.jobs.isolation == "process":
            # Start one worker process now: spawning it and importing sheaf takes about a
            # second, which the first job would otherwise wait for. Others start on demand,
            # so an idle server does not hold several copies of the imports in memory.
            try:
                self._process(n)
            except Exception:
                log.exception("could not start a worker process")
        try:
            while True:
                job_id = self._queue.get()
                if job_id == _STOP or self._closing.is_set():
                    return  # (a job left in the queue is still queued in the database)
                with self._lock:
                    self._offered.discard(job_id)
                try:
                    self._run(n, job_id)
                    self.db.checkpoint()
                except Exception:
                    log.exception("executor could not run job %s", job_id)
        finally:
            with self._lock:
                process = self._processes.pop(n, None)
            if process is not None:
                process.stop()
