"""Finance fixtures: an MX client, Basic-auth headers, and helpers that drive the
Platform API through the real app (inline executor: an aggregation runs inside the call)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sheaf.auth import mx
from sheaf.runtime import Runtime

MXBANK_USERNAME = "CRD-9f61fb4c-912c-bd1e-b175-ccc7f0275cc1"
MXBANK_PASSWORD = "CRD-e3d7ea81-aac7-05e5-fbdd-af2f6b4e0d4e"
ACCEPT = "application/vnd.mx.api.v1+json"


def basic(client_id: str, api_key: str) -> dict[str, str]:
    token = base64.b64encode(f"{client_id}:{api_key}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Accept": ACCEPT}


@pytest.fixture
def make_mx_client(runtime: Runtime) -> Callable[[], tuple[str, str]]:
    def make() -> tuple[str, str]:
        with runtime.db.write() as session:
            client, key = mx.create_client(session, "test")
            return client.client_id, key

    return make


@pytest.fixture
def mx_auth(make_mx_client: Callable[[], tuple[str, str]]) -> dict[str, str]:
    return basic(*make_mx_client())


def credentials(password: str, username: str = "mxuser") -> list[dict[str, str]]:
    return [{"guid": MXBANK_USERNAME, "value": username},
            {"guid": MXBANK_PASSWORD, "value": password}]


@pytest.fixture
def new_user(client: TestClient, mx_auth: dict[str, str]) -> Callable[..., str]:
    def make(**fields: Any) -> str:
        r = client.post("/users", json={"user": fields or {"email": "u@example.com"}},
                        headers=mx_auth)
        assert r.status_code == 200, r.text
        return str(r.json()["user"]["guid"])

    return make


@pytest.fixture
def new_member(client: TestClient, mx_auth: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """Create an mxbank member (which aggregates at once unless skip=True)."""
    def make(user_guid: str, password: str = "password", *, code: str = "mxbank",
             skip: bool = False, **fields: Any) -> dict[str, Any]:
        body = {"member": {"institution_code": code, "credentials": credentials(password),
                           "skip_aggregation": skip, **fields}}
        r = client.post(f"/users/{user_guid}/members", json=body, headers=mx_auth)
        assert r.status_code == (200 if skip else 202), r.text
        return dict(r.json()["member"])

    return make
