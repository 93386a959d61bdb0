"""Shared fixtures: a real database per test, a runtime with the inline executor, an
HTTP client on the real app, and credentials."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
from fastapi.testclient import TestClient

from sheaf.app import create_app
from sheaf.auth import credentials
from sheaf.config import Settings
from sheaf.runtime import Runtime
from tests.fixtures.database import database_template, settings  # noqa: F401

# Property tests assert results, not speed (speed is bench/'s business): a first polars
# call on a busy CI machine must not fail one with DeadlineExceeded.
hypothesis.settings.register_profile("sheaf", deadline=None)
hypothesis.settings.load_profile("sheaf")


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:  # noqa: F811
    rt = Runtime.build(settings)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as c:
        yield c


def issue_token(client: TestClient, runtime: Runtime, *authorities: str) -> str:
    """A bearer token for a new credential, fetched through /oauth/token."""
    with runtime.db.write() as session:
        cred, secret = credentials.create(session, "test", list(authorities or ["ORG_ADMIN"]))
        client_id = cred.client_id
    response = client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def make_token(client: TestClient, runtime: Runtime) -> Callable[..., str]:
    def make(*authorities: str) -> str:
        return issue_token(client, runtime, *authorities)

    return make


@pytest.fixture
def auth(make_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('ORG_ADMIN')}"}


@pytest.fixture
def make_source(client: TestClient, auth: dict[str, str]) -> Callable[..., dict[str, Any]]:
    def make(name: str = "HR", **fields: Any) -> dict[str, Any]:
        body = {"name": name, "connector": "delimited-file", "deleteThreshold": 100, **fields}
        response = client.post("/v3/sources", json=body, headers=auth)
        assert response.status_code == 201, response.text
        return dict(response.json())

    return make


@pytest.fixture
def load(client: TestClient, auth: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """POST a CSV to load-accounts and return the task status after the (inline) run."""

    def run(source_id: str, csv: str | bytes, *, disable: bool = False,
            path: str = "/v2025/sources/{id}/load-accounts") -> dict[str, Any]:
        data = csv.encode() if isinstance(csv, str) else csv
        response = client.post(
            path.format(id=source_id), headers=auth,
            files={"file": ("accounts.csv", data, "text/csv")},
            data={"disableOptimization": "true" if disable else "false"},
        )
        assert response.status_code == 202, response.text
        task_id = response.json()["task"]["id"]
        status = client.get(f"/v2025/task-status/{task_id}", headers=auth)
        assert status.status_code == 200, status.text
        return dict(status.json())

    return run
