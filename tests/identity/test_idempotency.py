"""Idempotency keys on load-accounts are one client's, for one request: repeated, the
same request answers its first task; another client's equal key is another key; the same
key with another request is refused with 422 and changes nothing."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from sheaf.auth import credentials
from sheaf.identity.jobs import LOAD_ACCOUNTS
from sheaf.jobs.models import Job
from sheaf.jobs.service import IdempotencyKeyReused
from sheaf.runtime import Runtime

HR = {"type": "GOVERNANCE_GROUP", "id": "g-hr", "name": "HR admins"}
IT = {"type": "GOVERNANCE_GROUP", "id": "g-it", "name": "IT admins"}
LOAD = "/v2025/sources/{id}/load-accounts"


def subadmin(client: TestClient, runtime: Runtime, group: str) -> dict[str, str]:
    with runtime.db.write() as session:
        cred, secret = credentials.create(session, f"sub-{group}", ["SOURCE_SUBADMIN"], [group])
        client_id = cred.client_id
    token = client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
    }).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def post(client: TestClient, headers: dict[str, str], source_id: str, csv: str,
         key: str | None, path: str = LOAD, disable: bool = False) -> Any:
    extra = {} if key is None else {"Idempotency-Key": key}
    return client.post(path.format(id=source_id), headers={**headers, **extra},
                       files={"file": ("a.csv", csv.encode(), "text/csv")},
                       data={"disableOptimization": "true" if disable else "false"})


def accounts(client: TestClient, auth: dict[str, str], source_id: str) -> list[str]:
    response = client.get("/v3/accounts", headers=auth,
                          params={"filters": f'sourceId eq "{source_id}"'})
    assert response.status_code == 200, response.text
    return sorted(a["nativeIdentity"] for a in response.json())


@pytest.fixture
def two_groups(client: TestClient, runtime: Runtime, make_source) -> dict[str, Any]:
    return {
        "hr": make_source("HR", managementWorkgroup=HR)["id"],
        "it": make_source("IT", managementWorkgroup=IT)["id"],
        "hr_admin": subadmin(client, runtime, "g-hr"),
        "it_admin": subadmin(client, runtime, "g-it"),
    }


def test_the_same_request_with_the_same_key_answers_the_first_task(
        client: TestClient, runtime: Runtime, auth, two_groups) -> None:
    hr, me = two_groups["hr"], two_groups["hr_admin"]
    first = post(client, me, hr, "id,name\na1,Ann\n", "k-1")
    assert first.status_code == 202, first.text
    again = post(client, me, hr, "id,name\na1,Ann\n", "k-1")  # a retry: its copy is dropped
    assert again.status_code == 202, again.text
    assert again.json()["task"]["id"] == first.json()["task"]["id"]
    assert accounts(client, auth, hr) == ["a1"]
    # only the first upload is kept (the retry's file went back to the store's spare)
    assert [p.name for p in runtime.blobs.root.iterdir() if not p.name.startswith(".")] == []


def test_another_clients_key_is_another_key(client: TestClient, auth, two_groups) -> None:
    # The attack of issue 9: a SOURCE_SUBADMIN of another group sends the same key.
    hr, it = two_groups["hr"], two_groups["it"]
    first = post(client, two_groups["hr_admin"], hr, "id,name\na1,Ann\n", "shared-key")
    assert first.status_code == 202, first.text
    theirs = post(client, two_groups["it_admin"], it, "id,name\nb1,Bea\nb2,Cy\n", "shared-key")
    assert theirs.status_code == 202, theirs.text
    task = theirs.json()["task"]
    assert task["id"] != first.json()["task"]["id"]
    assert task["attributes"]["appId"] == it
    assert task["launcher"] != first.json()["task"]["launcher"]
    assert accounts(client, auth, it) == ["b1", "b2"]  # its own file was loaded
    assert accounts(client, auth, hr) == ["a1"]
    # an administrator's equal key is its own too
    admin = post(client, auth, hr, "id,name\na1,Ann\na3,Di\n", "shared-key")
    assert admin.status_code == 202 and admin.json()["task"]["id"] not in (
        first.json()["task"]["id"], task["id"])
    assert accounts(client, auth, hr) == ["a1", "a3"]


# "file": found from outside, the same key with another file answered the first task and
# dropped the new file without a word (the IETF Idempotency-Key draft: another payload, 422)
@pytest.mark.parametrize("change", ["source", "endpoint", "disableOptimization", "file"])
def test_the_same_key_with_another_request_is_422(
        change: str, client: TestClient, runtime: Runtime, auth, make_source) -> None:
    one, other = make_source("One")["id"], make_source("Two")["id"]
    first = post(client, auth, one, "id,name\na1,Ann\n", "k-2")
    assert first.status_code == 202, first.text
    if change == "source":
        refused = post(client, auth, other, "id,name\nb1,Bea\n", "k-2")
    elif change == "endpoint":
        refused = post(client, auth, one, "id,name\nb1,Bea\n", "k-2",
                       path="/beta/sources/{id}/load-accounts")
    elif change == "file":
        refused = post(client, auth, one, "id,name\na1,Ann\nb1,Bea\n", "k-2")
    else:
        refused = post(client, auth, one, "id,name\nb1,Bea\n", "k-2", disable=True)
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert set(body) == {"detailCode", "trackingId", "messages", "causes"}
    assert body["detailCode"].startswith("422")
    text = body["messages"][0]["text"]
    assert "Idempotency-Key 'k-2' was already used" in text
    assert first.json()["task"]["id"] in text  # the client's own task: it may see it
    # nothing was started or changed, and the refused upload is not kept
    assert accounts(client, auth, one) == ["a1"] and accounts(client, auth, other) == []
    tasks = client.get("/v2025/task-status", headers=auth).json()
    assert [t["id"] for t in tasks] == [first.json()["task"]["id"]]
    assert [p.name for p in runtime.blobs.root.iterdir() if not p.name.startswith(".")] == []


def test_a_key_too_long_to_store_is_400(client: TestClient, auth, make_source) -> None:
    source = make_source()["id"]
    for key in ("k" * 201, ""):
        refused = post(client, auth, source, "id,name\na1,Ann\n", key)
        assert refused.status_code == 400, refused.text
        assert "Idempotency-Key" in refused.json()["messages"][0]["text"]
    assert post(client, auth, source, "id,name\na1,Ann\n", "k" * 200).status_code == 202


def test_racing_requests_with_one_key_get_one_job(runtime: Runtime) -> None:
    # Both may find no job for the key; the unique (client, key) constraint lets one
    # insert, and the other answers the winner's job instead of failing.
    runtime.executor.paused = True  # type: ignore[attr-defined]
    barrier = threading.Barrier(6)
    ids: list[str] = []
    errors: list[BaseException] = []

    def submit() -> None:
        barrier.wait()
        try:
            job = runtime.jobs.submit(
                LOAD_ACCOUNTS, {"source_id": "s1"}, idempotency_key="race",
                idempotency_client="c1", request={"endpoint": "/x"}, subject_id="s1")
            ids.append(job.id)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(ids) == 6 and len(set(ids)) == 1


def test_a_key_stored_before_requests_were_recorded_matches_on_type_and_source(
        runtime: Runtime) -> None:
    runtime.executor.paused = True  # type: ignore[attr-defined]
    first = runtime.jobs.submit(LOAD_ACCOUNTS, {}, idempotency_key="old", subject_id="s1",
                                idempotency_client="c1", request={"endpoint": "/a"})
    with runtime.db.write() as session:  # as the migration leaves a job keyed before it
        session.execute(update(Job).where(Job.id == first.id).values(request_fingerprint=None))
    again = runtime.jobs.submit(LOAD_ACCOUNTS, {}, idempotency_key="old", subject_id="s1",
                                idempotency_client="c1", request={"endpoint": "/b"})
    assert again.id == first.id
    with pytest.raises(IdempotencyKeyReused):
        runtime.jobs.submit(LOAD_ACCOUNTS, {}, idempotency_key="old", subject_id="s2",
                            idempotency_client="c1", request={"endpoint": "/a"})
