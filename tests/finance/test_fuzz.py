"""Schema fuzzing of the finance dialect: schemathesis drives the real app in process with
requests generated from (a) sheaf's own OpenAPI, finance paths only, and (b) MX's own
v20111101 schema for the same paths (shared/specs). No answer may be a 5xx; against MX's
schema every documented answer must match it.

Deterministic (derandomized, no example database) and bounded by SHEAF_FUZZ_EXAMPLES per
operation. Two cases in three aim their path ids at a seeded user, member (CONNECTED, with
data) and institution, so requests reach the code behind the 404s.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from sheaf.app import create_app
from sheaf.auth import mx
from sheaf.config import Settings
from sheaf.finance.api import is_mx_path
from sheaf.runtime import Runtime
from tests.finance.conftest import basic, credentials

ROOT = Path(__file__).resolve().parents[2]
MX_SPEC = ROOT.parent / "shared" / "specs" / "mx-platform-v20111101-members.json"
MAX_EXAMPLES = int(os.environ.get("SHEAF_FUZZ_EXAMPLES", "4"))
FUZZ = settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck))


def _own_schema() -> dict[str, Any]:
    schema = create_app(Settings(data_dir=Path("/nonexistent")), migrate=False).openapi()
    schema["paths"] = {p: v for p, v in schema["paths"].items() if is_mx_path(p)}
    return schema


def _mx_schema() -> dict[str, Any] | None:
    if not MX_SPEC.is_file():
        if os.environ.get("CI") == "true":  # CI lays shared/ beside the clone: never skip there
            raise RuntimeError(f"{MX_SPEC} is missing: the MX-schema fuzz cannot run")
        return None
    return dict(json.loads(MX_SPEC.read_text()))


own = schemathesis.openapi.from_dict(_own_schema())
MX_SCHEMA = _mx_schema()


class Live:
    def __init__(self, runtime: Runtime) -> None:
        self.app = create_app(runtime=runtime)
        self.statuses: Counter[int] = Counter()
        self.server_errors: list[str] = []
        with runtime.db.write() as session:
            client_id, key = (lambda c: (c[0].client_id, c[1]))(mx.create_client(session, "f"))
        self.headers = basic(client_id, key)
        with TestClient(self.app) as client:
            user = client.post("/users", json={"user": {"id": "fuzz"}},
                               headers=self.headers).json()["user"]["guid"]
            member = client.post(f"/users/{user}/members", headers=self.headers, json={
                "member": {"institution_code": "mxbank",
                           "credentials": credentials("pw")}}).json()["member"]["guid"]
            token = client.get(f"/{client_id}/users/{user}/api_token",
                               headers={"MD-API-KEY": key}).json()["api_token"]["token"]
            session_token = client.post("/sessions", headers={"MD-API-TOKEN": token}
                                        ).json()["session"]["token"]
        self.headers["MD-SESSION-TOKEN"] = session_token
        self.ids = {"user_guid": user, "member_guid": member, "institution_code": "mxbank",
                    "client_id": client_id, "user_id": user}


@pytest.fixture
def live(runtime: Runtime) -> Live:
    return Live(runtime)


def _aim(case: Any, live: Live) -> None:
    params = case.path_parameters or {}
    if not params or case.method.upper() == "DELETE":
        return
    if zlib.crc32(json.dumps(params, sort_keys=True, default=str).encode()) % 3 == 0:
        return  # keep the generated ids: the not-found paths are fuzzed too
    for name in params:
        if name in live.ids:
            params[name] = live.ids[name]


def _run(case: Any, live: Live, checks: list[Any]) -> None:
    _aim(case, live)
    response = case.call(headers=live.headers, app=live.app)
    live.statuses[response.status_code] += 1
    if response.status_code >= 500:
        live.server_errors.append(f"{case.method} {case.formatted_path} -> "
                                  f"{response.status_code}")
    case.validate_response(response, checks=checks, headers=live.headers,
                           transport_kwargs={"app": live.app})


@own.parametrize()
@FUZZ
def test_own_schema_never_5xx(case: Any, live: Live) -> None:
    _run(case, live, [not_a_server_error])


# (a clone without shared/ beside it has no MX schema to fuzz against: an empty one made
# schemathesis fail the collection, and with it the whole suite)
if MX_SCHEMA is not None:
    vendor = schemathesis.openapi.from_dict(MX_SCHEMA)

    @vendor.parametrize()
    @FUZZ
    def test_mx_schema_no_5xx_and_answers_conform(case: Any, live: Live) -> None:
        _run(case, live, [not_a_server_error, response_schema_conformance])
else:
    def test_mx_schema_no_5xx_and_answers_conform() -> None:
        pytest.skip(f"{MX_SPEC} is not there (shared/ beside the repository; required in CI)")
