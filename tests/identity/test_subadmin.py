"""A SOURCE_SUBADMIN reaches only the sources its governance groups manage, and their
accounts; ORG_ADMIN and SOURCE_ADMIN reach all."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from sheaf.auth import credentials
from sheaf.identity.jobs import LOAD_ACCOUNTS
from sheaf.jobs.models import Job
from sheaf.kit.base import utcnow
from sheaf.runtime import Runtime

HR = {"type": "GOVERNANCE_GROUP", "id": "g-hr", "name": "HR admins"}
IT = {"type": "GOVERNANCE_GROUP", "id": "g-it", "name": "IT admins"}


@pytest.fixture
def world(client: TestClient, runtime: Runtime, make_source, load) -> dict[str, Any]:
    mine = make_source("Mine", managementWorkgroup=HR)["id"]
    theirs = make_source("Theirs", managementWorkgroup=IT)["id"]
    load(mine, "id,name\na1,Ann\na2,Bob\n")
    load(theirs, "id,name\nb1,Cy\n")
    with runtime.db.write() as session:
        cred, secret = credentials.create(session, "sub", ["SOURCE_SUBADMIN"], ["g-hr"])
        sub_id = cred.client_id
    token = client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": sub_id, "client_secret": secret,
    }).json()["access_token"]
    return {"mine": mine, "theirs": theirs, "sub": {"Authorization": f"Bearer {token}"},
            "sub_id": sub_id}


def test_sources_outside_its_groups_are_refused(client, auth, world) -> None:
    sub, theirs = world["sub"], world["theirs"]
    for method, path in [("GET", f"/v3/sources/{theirs}"),
                         ("GET", f"/v3/sources/{theirs}/schemas"),
                         ("DELETE", f"/v3/sources/{theirs}")]:
        response = client.request(method, path, headers=sub)
        assert response.status_code == 403, (method, path, response.text)
    assert client.get(f"/v3/sources/{theirs}", headers=auth).status_code == 200  # not deleted
    assert client.get(f"/v3/sources/{world['mine']}", headers=sub).status_code == 200


def test_it_lists_its_own_sources_with_for_subadmin(client, auth, world) -> None:
    sub = world["sub"]
    assert client.get("/v3/sources", headers=sub).status_code == 403
    listed = client.get("/v3/sources", params={"for-subadmin": "me", "count": "true"},
                        headers=sub)
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()] == [world["mine"]]
    assert listed.headers["X-Total-Count"] == "1"
    assert listed.json()[0]["managementWorkgroup"] == HR
    # an administrator may ask what a subadmin administers
    asked = client.get("/v3/sources", params={"for-subadmin": world["sub_id"]}, headers=auth)
    assert [s["id"] for s in asked.json()] == [world["mine"]]
    assert len(client.get("/v3/sources", headers=auth).json()) == 2


def test_it_creates_and_keeps_sources_only_in_its_groups(client, world) -> None:
    sub = world["sub"]
    body = {"name": "New", "connector": "delimited-file"}
    assert client.post("/v3/sources", json=body, headers=sub).status_code == 403
    assert client.post("/v3/sources", json={**body, "managementWorkgroup": IT},
                       headers=sub).status_code == 403
    created = client.post("/v3/sources", json={**body, "managementWorkgroup": HR}, headers=sub)
    assert created.status_code == 201, created.text
    moved = client.put(f"/v3/sources/{world['mine']}", headers=sub,
                       json={"name": "Mine", "connector": "delimited-file",
                             "managementWorkgroup": IT})
    assert moved.status_code == 403


def test_it_reads_only_accounts_of_its_sources(client, auth, world) -> None:
    sub = world["sub"]
    listed = client.get("/v3/accounts", params={"count": "true"}, headers=sub)
    assert sorted(a["nativeIdentity"] for a in listed.json()) == ["a1", "a2"]
    assert listed.headers["X-Total-Count"] == "2"
    other = client.get("/v3/accounts", params={"filters": f'sourceId eq "{world["theirs"]}"'},
                       headers=auth).json()[0]
    assert client.get(f"/v3/accounts/{other['id']}", headers=sub).status_code == 403
    assert client.get(f"/v3/accounts/{other['id']}", headers=auth).status_code == 200


def test_it_follows_only_tasks_of_its_sources(client, auth, world, runtime) -> None:
    sub, mine, theirs = world["sub"], world["mine"], world["theirs"]
    tasks = client.get("/v2025/task-status", headers=auth).json()
    by_source = {t["target"]["id"]: t["id"] for t in tasks}
    assert set(by_source) == {mine, theirs}
    for prefix in ("/v2025/task-status", "/beta/task-status", "/task-status/v1"):
        assert client.get(f"{prefix}/{by_source[mine]}", headers=sub).status_code == 200
        refused = client.get(f"{prefix}/{by_source[theirs]}", headers=sub)
        assert refused.status_code == 403, (prefix, refused.text)
        assert client.get(f"{prefix}/{by_source[theirs]}", headers=auth).status_code == 200
    listed = client.get("/v2025/task-status", params={"count": "true"}, headers=sub)
    assert [t["id"] for t in listed.json()] == [by_source[mine]]
    assert listed.headers["X-Total-Count"] == "1"
    everything = client.get("/v2025/task-status", params={"filters": f'sourceId eq "{theirs}"'},
                            headers=sub)
    assert everything.json() == []
    pending = client.head("/beta/task-status/pending-tasks", headers=sub)
    assert pending.headers["X-Total-Count"] == "0"
    status = client.get(f"/v2025/account-aggregations/{by_source[theirs]}/status", headers=sub)
    assert status.status_code == 403
    # an organisation-wide reader (here HELPDESK beside SOURCE_SUBADMIN) still sees all
    with runtime.db.write() as session:
        cred, secret = credentials.create(session, "both", ["SOURCE_SUBADMIN", "HELPDESK"],
                                          ["g-hr"])
    token = client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": cred.client_id,
        "client_secret": secret}).json()["access_token"]
    wide = client.get("/v2025/task-status", headers={"Authorization": f"Bearer {token}"})
    assert {t["id"] for t in wide.json()} == set(by_source.values())


def test_a_task_whose_source_is_gone_is_refused_to_it(client, auth, world) -> None:
    """The task read joins the job to its source in one statement; a task left by a
    deleted source is no SOURCE_SUBADMIN's (403), while an ORG_ADMIN still reads it."""
    tasks = client.get("/v2025/task-status", headers=auth).json()
    task = next(t["id"] for t in tasks if t["target"]["id"] == world["mine"])
    assert client.get(f"/v2025/task-status/{task}", headers=world["sub"]).status_code == 200
    assert client.delete(f"/v3/sources/{world['mine']}", headers=auth).status_code in (200, 202)
    refused = client.get(f"/v2025/task-status/{task}", headers=world["sub"])
    assert refused.status_code == 403
    assert "not about a source" in refused.text
    kept = client.get(f"/v2025/task-status/{task}", headers=auth)
    assert kept.status_code == 200 and kept.json()["id"] == task
    unknown = client.get("/v2025/task-status/0123456789abcdef0123456789abcdef",
                         headers=world["sub"])
    assert unknown.status_code == 404


def test_pending_tasks_are_the_queued_and_running_ones(
    client: TestClient, runtime: Runtime, auth: dict[str, str],
) -> None:
    now = utcnow()
    with runtime.db.write() as session:
        for status in ("running", "succeeded", "queued", "failed"):
            session.add(Job(id=status.ljust(32, "0"), type=LOAD_ACCOUNTS, status=status,
                            payload={}, max_attempts=3, created_at=now, updated_at=now,
                            run_after=now, messages=[], counters={}))
    listed = client.get("/v2025/task-status/pending-tasks", params={"count": "true"},
                        headers=auth)
    assert listed.status_code == 200, listed.text
    assert sorted(t["id"] for t in listed.json()) == ["queued".ljust(32, "0"),
                                                      "running".ljust(32, "0")]
    assert listed.headers["X-Total-Count"] == "2"
