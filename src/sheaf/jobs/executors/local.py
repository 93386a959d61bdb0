"""Workers beside the API, so a long aggregation never stalls HTTP.

By default each job runs in a worker *process*: an aggregation is CPU- and write-heavy
Python, and in a thread it would fight the API's request handlers for the GIL (sqlite3
gives the GIL back for every row it writes, then waits to get it back). ``isolation =
"thread"`` keeps jobs in-process, for tests whose handlers live in the test module.

A maintenance thread (``sheaf.jobs.maintenance``) reaps dead workers' jobs and re-offers
queued jobs whose time has come.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from sheaf.config import Settings
from sheaf.db import Database
from sheaf.jobs import worker
from sheaf.jobs.maintenance import Maintenance
from sheaf.jobs.runner import run_job

log = logging.getLogger(__name__)
_STOP = ""


class LocalExecutor:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._queue: queue.Queue[str] = queue.Queue()
        self._offered: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._pool: ProcessPoolExecutor | None = None
        self._maintenance = Maintenance(db, settings, self.submit)

    def start(self) -> None:
        for n in range(self.settings.jobs.workers):
            t = threading.Thread(target=self._work, name=f"sheaf-worker-{n}", daemon=True)
            t.start()
            self._threads.append(t)
        self._maintenance.start()
        if self.settings.jobs.isolation == "process":
            # Start one worker process now: spawning it and importing sheaf takes about a
            # second, which the first job would otherwise wait for. Others start on demand,
            # so an idle server does not hold several copies of the imports in memory.
            self._process_pool().submit(worker.ready)

    def submit(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._offered:
                return
            self._offered.add(job_id)
        self._queue.put(job_id)

    def shutdown(self, graceful: bool = True) -> None:
        self._maintenance.stop(timeout=30 if graceful else 0)
        for _ in range(self.settings.jobs.workers):
            self._queue.put(_STOP)
        if graceful:
            for t in self._threads:
                t.join(timeout=30)
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=graceful, cancel_futures=True)
                self._pool = None

    def _run(self, job_id: str) -> None:
        if self.settings.jobs.isolation == "thread":
            run_job(self.db, job_id, self.settings)
            return
        try:
            self._process_pool().submit(worker.run, job_id).result()
        except BrokenProcessPool:
            # A worker died mid-job (killed, out of memory). Its lease will expire and the
            # reaper requeues the job; start a fresh pool for what comes next.
            log.error("worker process died while running job %s", job_id)
            with self._lock:
                self._pool = None

    def _process_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.settings.jobs.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=worker.start,
                    initargs=(self.settings.model_dump_json(),),
                )
            return self._pool

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id == _STOP:
                return
            with self._lock:
                self._offered.discard(job_id)
            try:
                self._run(job_id)
                self.db.checkpoint()
            except Exception:
                log.exception("executor could not run job %s", job_id)
