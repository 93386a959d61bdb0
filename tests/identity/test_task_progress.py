"""Task status during a load: percentComplete advances through parse, diff and write,
reading the live-progress file while the write transaction holds SQLite's lock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sheaf.identity.api import wire
from sheaf.jobs import faults, live
from sheaf.jobs.runner import claim
from sheaf.runtime import Runtime

ROWS = 3000


class Stops:
    """Stands in for faults.reached: the job thread waits at each point until the test
    has looked at the task."""

    def __init__(self) -> None:
        self.at: str | None = None
        self.arrived = threading.Event()
        self.go_on = threading.Event()

    def __call__(self, point: str) -> None:
        if point not in ("parse", "diff", "write"):
            return
        self.at = point
        self.arrived.set()
        assert self.go_on.wait(30)
        self.go_on.clear()

    def next(self) -> str | None:
        assert self.arrived.wait(30), "the load stopped reaching its pause points"
        self.arrived.clear()
        return self.at


def test_percent_complete_advances_through_parse_diff_and_write(
    client: TestClient, runtime: Runtime, auth: dict[str, str],
    make_source: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = make_source("Progress")
    stops = Stops()
    monkeypatch.setattr(faults, "reached", stops)
    runtime.executor.paused = True  # type: ignore[attr-defined]
    csv = "id,name\n" + "".join(f"u{i:05},User {i}\n" for i in range(ROWS))
    response = client.post(f"/v2025/sources/{source['id']}/load-accounts", headers=auth,
                           files={"file": ("a.csv", csv.encode(), "text/csv")},
                           data={"disableOptimization": "false"})
    assert response.status_code == 202, response.text
    task_id = response.json()["task"]["id"]
    runner = threading.Thread(target=runtime.executor.drain)  # type: ignore[attr-defined]
    runner.start()

    def status() -> dict[str, Any]:
        got = client.get(f"/v2025/task-status/{task_id}", headers=auth)
        assert got.status_code == 200, got.text
        return dict(got.json())

    seen: dict[str, dict[str, Any]] = {}
    try:
        for point in ("parse", "diff", "write"):
            assert stops.next() == point
            seen[point] = status()
            listed = client.get("/v2025/task-status", headers=auth,
                                params={"filters": f'id eq "{task_id}"'})
            assert [t["percentComplete"] for t in listed.json()] == [
                seen[point]["percentComplete"]]  # (the list shows the same)
            stops.go_on.set()
    finally:
        stops.go_on.set()
        runner.join(60)
    done = status()

    assert all(s["completionStatus"] is None for s in seen.values())
    assert seen["parse"]["progress"] == "Reading file"
    assert seen["diff"]["progress"] == f"Comparing {ROWS:,} rows with stored accounts"
    assert seen["write"]["progress"] == f"Applying {ROWS:,} account changes"
    percents = [seen[p]["percentComplete"] for p in ("parse", "diff", "write")]
    spans = {phase: (start, end) for phase, start, end in wire.PHASE_SPANS}
    assert percents[0] == spans["Reading"][0]
    assert percents[1] == spans["Comparing"][0]
    if runtime.db.is_sqlite:
        # every account is inserted, in the write transaction that still holds the lock:
        # only the side file knows, and task status reads it
        assert percents[2] == spans["Applying"][1]
    assert spans["Applying"][0] <= percents[2] <= 99
    assert percents == sorted(percents) and len(set(percents)) == 3
    assert done["completionStatus"] == "SUCCESS" and done["percentComplete"] == 100


def test_percent_complete_of_a_running_job_reads_its_progress_file(
    client: TestClient, runtime: Runtime, auth: dict[str, str],
    make_source: Callable[..., dict[str, Any]],
) -> None:
    source = make_source("Side")
    runtime.executor.paused = True  # type: ignore[attr-defined]
    response = client.post(f"/v2025/sources/{source['id']}/load-accounts", headers=auth,
                           files={"file": ("a.csv", b"id,name\nu1,A\n", "text/csv")},
                           data={"disableOptimization": "false"})
    task_id = response.json()["task"]["id"]
    assert claim(runtime.db, task_id, "w", runtime.settings) is not None
    live.write(runtime.settings.data_dir, task_id, 500, 1000, "Applying 1,000 account changes")
    body = client.get(f"/v2025/task-status/{task_id}", headers=auth).json()
    assert body["progress"] == "Applying 1,000 account changes"
    start, end = dict((p, (s, e)) for p, s, e in wire.PHASE_SPANS)["Applying"]
    assert body["percentComplete"] == start + (end - start) * 500 // 1000
    assert body["completionStatus"] is None
