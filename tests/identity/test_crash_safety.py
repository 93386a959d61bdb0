"""Crash safety of a load: a worker SIGKILLed at any point of an aggregation, or a task
ended from outside while its worker writes, leaves the source's accounts exactly as they
were before or after the load, and the task reports what happened.

The kills come from ``sheaf.jobs.faults`` (inert unless SHEAF_TEST_KILL_AT is set), in
real worker processes of the local executor. SQLite, and PostgreSQL when
SHEAF_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sheaf.config import Settings
from sheaf.identity import aggregation, service
from sheaf.identity.models import Account
from sheaf.jobs import faults
from sheaf.jobs.models import Job
from sheaf.jobs.runner import run_job
from sheaf.runtime import Runtime
from tests.workers import in_worker_processes, started, wait_for

N = 3000


def csv_bytes(ids: list[int], changed: frozenset[int] = frozenset()) -> bytes:
    frame = pl.DataFrame({"id": [f"u{i:07d}" for i in ids]}).with_columns(
        name="User " + pl.col("id"),
        email=pl.when(pl.col("id").is_in([f"u{i:07d}" for i in changed]))
        .then(pl.col("id") + "@changed.example.org")
        .otherwise(pl.col("id") + "@example.org"),
    )
    out = io.BytesIO()
    frame.write_csv(out)
    return out.getvalue()


# Before: u0..u2999. After: u0..u499 removed, u500..u999 changed, u3000..u3499 new.
BEFORE = csv_bytes(list(range(N)))
AFTER = csv_bytes(list(range(500, N + 500)), frozenset(range(500, 1000)))
AFTER_COUNTS = {"created": 500, "updated": 500, "deleted": 500, "total": N}


def accounts(rt: Runtime, source_id: str) -> dict[str, str]:
    with rt.db.read() as s:
        rows = s.execute(select(Account.native_identity, Account.attributes)
                         .where(Account.source_id == source_id))
        return {k: v for k, v in rows}


def make_source(rt: Runtime) -> str:
    created = service.create_source(
        rt, {"name": "S", "connector": "delimited-file", "connector_attributes": {},
             "delete_threshold": 100, "authoritative": False, "correlation": [],
             "owner": None, "description": None},
        {"name": "account", "native_object_type": "User", "identity_attribute": "id",
         "display_attribute": "name", "attributes": []})
    return created.id




def load(rt: Runtime, source_id: str, data: bytes) -> Job:
    blob = service.store_file(rt, io.BytesIO(data))
    job = service.load_accounts(rt, source_id, blob, disable_optimization=False, launcher="t")
    return wait_for(rt, job.id, lambda j: j.finished_at is not None)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "killed"


@pytest.fixture
def killing_runtime(
    settings: Settings, marker: Path, monkeypatch: pytest.MonkeyPatch, request: Any,
) -> Iterator[Runtime]:
    """Real worker processes; the point named by the test's parameter kills its worker
    once the marker file is gone (it starts present: the first load is not killed)."""
    monkeypatch.setenv(faults.ENV, f"{request.param}:{marker}")
    marker.touch()
    settings = in_worker_processes(settings)
    with started(settings) as rt:
        yield rt


@pytest.mark.parametrize("killing_runtime", ["parse", "diff", "write"], indirect=True)
def test_a_worker_killed_before_the_commit_leaves_the_before_state_and_the_rerun_applies(
    killing_runtime: Runtime, marker: Path,
) -> None:
    rt = killing_runtime
    source_id = make_source(rt)
    first = load(rt, source_id, BEFORE)
    assert first.status == "succeeded", first.messages
    before = accounts(rt, source_id)
    assert len(before) == N
    marker.unlink()  # arm the kill
    done = load(rt, source_id, AFTER)
    assert marker.exists()  # the worker did die at that point
    assert done.status == "succeeded", done.messages
    assert done.attempt == 2  # the killed attempt applied nothing; the rerun applied all
    assert {k: done.counters[k] for k in AFTER_COUNTS} == AFTER_COUNTS
    after = accounts(rt, source_id)
    assert len(after) == N and after != before
    assert all(after[f"u{i:07d}"].count("@changed.") == 1 for i in range(500, 1000))
    assert not any(f"u{i:07d}" in after for i in range(500))


@pytest.mark.parametrize("killing_runtime", ["write"], indirect=True)
def test_a_worker_killed_mid_write_on_its_last_attempt_leaves_the_before_state(
    killing_runtime: Runtime, marker: Path,
) -> None:
    rt = killing_runtime
    source_id = make_source(rt)
    assert load(rt, source_id, BEFORE).status == "succeeded"
    before = accounts(rt, source_id)
    marker.unlink()
    rt.jobs.max_attempts = 1  # (the job's own limit: the reaper and the executor obey it)
    blob = service.store_file(rt, io.BytesIO(AFTER))
    job = service.load_accounts(rt, source_id, blob, disable_optimization=False, launcher="t")
    done = wait_for(rt, job.id, lambda j: j.finished_at is not None)
    assert marker.exists()
    assert done.status == "failed" and done.error_code == "crashed", done.messages
    assert accounts(rt, source_id) == before  # not one row of the killed write is left


@pytest.mark.parametrize("killing_runtime", ["committed"], indirect=True)
def test_a_worker_killed_just_after_the_commit_is_not_rerun_and_reports_the_load(
    killing_runtime: Runtime, marker: Path,
) -> None:
    rt = killing_runtime
    source_id = make_source(rt)
    assert load(rt, source_id, BEFORE).status == "succeeded"
    marker.unlink()
    done = load(rt, source_id, AFTER)
    assert marker.exists()
    # The outcome was committed with the data: no rerun into "0 created, all unchanged"
    # or "the uploaded file is no longer available".
    assert done.status == "succeeded" and done.attempt == 1, done.messages
    assert {k: done.counters[k] for k in AFTER_COUNTS} == AFTER_COUNTS
    after = accounts(rt, source_id)
    assert len(after) == N and not any(f"u{i:07d}" in after for i in range(500))
    # Nothing reruns it later either.
    time.sleep(1.5 * rt.settings.jobs.reaper_interval_seconds + 0.5)
    again = rt.jobs.get(done.id)
    assert again is not None and again.attempt == 1 and again.status == "succeeded"


# -- a task ended from outside while its worker writes ---------------------------------

def test_a_task_set_to_error_while_its_worker_writes_applies_nothing_and_keeps_the_source(
    client: TestClient, runtime: Runtime, auth: dict[str, str],
    make_source: Callable[..., dict[str, Any]], load: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source_id = make_source()["id"]
    assert load(source_id, BEFORE)["completionStatus"] == "SUCCESS"
    before = accounts(runtime, source_id)

    applying, gate = threading.Event(), threading.Event()
    commit = aggregation._commit

    def paused_commit(*args: Any, **kwargs: Any) -> None:
        applying.set()  # the plan is made; the write is next
        assert gate.wait(20)
        commit(*args, **kwargs)

    monkeypatch.setattr(aggregation, "_commit", paused_commit)
    runtime.executor.paused = True  # type: ignore[attr-defined]
    url = f"/v2025/sources/{source_id}/load-accounts"
    posted = client.post(url, headers=auth, files={"file": ("a.csv", AFTER, "text/csv")})
    task_id = posted.json()["task"]["id"]
    worker = threading.Thread(target=run_job, args=(runtime.db, task_id, runtime.settings))
    worker.start()
    assert applying.wait(20)

    patched = client.patch(
        f"/v2025/task-status/{task_id}", headers=auth,
        json=[{"op": "replace", "path": "/completionStatus", "value": "Error"}])
    assert patched.status_code == 200, patched.text
    # Its worker has not stopped yet: the task is not complete and still holds the source.
    assert patched.json()["completionStatus"] is None
    second = client.post(url, headers=auth, files={"file": ("b.csv", BEFORE, "text/csv")})
    assert second.status_code == 202
    refused = client.get(f"/v2025/task-status/{second.json()['task']['id']}", headers=auth)
    assert refused.json()["completionStatus"] == "ERROR"
    assert "currently running aggregation" in refused.json()["messages"][0][
        "localizedText"]["message"]

    gate.set()
    worker.join(20)
    ended = client.get(f"/v2025/task-status/{task_id}", headers=auth).json()
    assert ended["completionStatus"] == "ERROR"
    assert ended["completed"] is not None
    assert accounts(runtime, source_id) == before  # the fenced write was rolled back

    # The source is loadable again, and loads apply normally.
    monkeypatch.setattr(aggregation, "_commit", commit)
    runtime.executor.paused = False  # type: ignore[attr-defined]
    again = load(source_id, AFTER)
    assert again["completionStatus"] == "SUCCESS", again["messages"]
    assert len(accounts(runtime, source_id)) == N


def test_an_aggregation_whose_accounts_changed_under_it_writes_nothing(
    runtime: Runtime, make_source: Callable[..., dict[str, Any]],
    load: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """Even without the job core's lock (two runs of one source at once), a run commits
    only against the accounts it diffed: the other run's commit makes it start over,
    instead of leaving the source with duplicates or a UNIQUE failure on every load."""
    source_id = make_source()["id"]
    assert load(source_id, BEFORE)["completionStatus"] == "SUCCESS"
    planned, gate = threading.Event(), threading.Event()
    commit = aggregation._commit

    def paused_commit(*args: Any, **kwargs: Any) -> None:
        if threading.current_thread().name == "slow":
            planned.set()
            assert gate.wait(20)
        commit(*args, **kwargs)

    monkeypatch.setattr(aggregation, "_commit", paused_commit)
    errors: list[BaseException] = []

    def run(data: bytes, name: str) -> None:
        file = tmp_path / f"{name}.csv"
        file.write_bytes(data)
        try:
            aggregation.aggregate(runtime.db, runtime.settings, source_id, file,
                                  optimize=True, progress=lambda *a: None)
        except BaseException as exc:  # noqa: BLE001 (the assertion below reads it)
            errors.append(exc)

    slow = threading.Thread(target=run, args=(AFTER, "after"), name="slow")
    slow.start()
    assert planned.wait(20)
    both = csv_bytes(list(range(N + 500)))  # every account, the new ones too
    run(both, "both")  # commits while the slow run waits with its (now stale) plan
    assert not errors
    gate.set()
    slow.join(20)
    assert len(errors) == 1 and isinstance(errors[0], aggregation.SourceChanged)
    assert len(accounts(runtime, source_id)) == N + 500  # the other run's state, whole
    assert load(source_id, AFTER)["completionStatus"] == "SUCCESS"  # and loads go on
    assert len(accounts(runtime, source_id)) == N


def test_a_stored_copy_that_disagrees_with_the_database_is_dropped_not_kept(
    runtime: Runtime, make_source: Callable[..., dict[str, Any]],
    load: Callable[..., dict[str, Any]], tmp_path: Path,
) -> None:
    """Should the columnar copy ever disagree with the accounts (it must not), the failed
    run drops it, and the next one diffs against the database: the source stays loadable."""
    from sheaf.identity import snapshots
    from sheaf.identity.models import Source

    source_id = make_source()["id"]
    assert load(source_id, BEFORE)["completionStatus"] == "SUCCESS"
    with runtime.db.read() as s:
        generation = s.get_one(Source, source_id).snapshot_generation
    assert generation is not None
    copy = snapshots.load(runtime.settings.data_dir, source_id, generation)
    assert copy is not None
    snapshots.save(runtime.settings.data_dir, source_id, generation, copy.slice(10))
    file = tmp_path / "before.csv"
    file.write_bytes(BEFORE)

    def run() -> aggregation.AggregationResult:
        return aggregation.aggregate(runtime.db, runtime.settings, source_id, file,
                                     optimize=True, progress=lambda *a: None)

    with pytest.raises(Exception, match="UNIQUE|duplicate key"):
        run()  # ten accounts the copy lacks look new
    assert run().counters["created"] == 0  # the next run read the database
    assert len(accounts(runtime, source_id)) == N
