"""Issue 9, section 3: inputs that used to answer 500 (or a wrong 200) now get a 400 in the
dialect's error envelope with a message that says what to fix, or a correct 200; and
answers carry no null where SailPoint's schema documents a string or an object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.identity.test_bad_input import THREE, assert_error_dto, stored

Headers = dict[str, str]
INT64_MAX = 2**63 - 1
MAX_DEPTH, MAX_TERMS = 32, 100  # the documented filter limits (sheaf.kit.filters)
LISTS = ["/v3/accounts", "/v3/sources", "/v2025/identities", "/beta/task-status",
         "/v2025/task-status", "/task-status/v1", "/v2025/task-status/pending-tasks"]


@pytest.fixture
def world(client: TestClient, auth: Headers, make_source: Callable[..., dict[str, Any]],
          load: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """One source with three accounts correlated to identities, and its finished task."""
    source = make_source(authoritative=True, connectorAttributes={"correlation": [
        {"accountAttribute": "email", "identityAttribute": "email"}]})
    task = load(source["id"], THREE)
    assert task["completionStatus"] == "SUCCESS", task["messages"]
    return {"source": source, "task": task}


def text(response: Any) -> str:
    return str(response.json()["messages"][0]["text"])


# --- paging ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", LISTS)
def test_an_offset_beyond_64_bits_is_a_400_and_the_largest_one_an_empty_page(
        client: TestClient, auth: Headers, world: dict[str, Any], path: str) -> None:
    response = client.get(path, params={"offset": str(2**64)}, headers=auth)
    assert_error_dto(response, 400)
    assert "offset must be between 0 and 9223372036854775807" in text(response)
    response = client.get(path, params={"offset": str(INT64_MAX)}, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json() == []


def test_native_jobs_list_bounds_offset_in_its_own_envelope(client: TestClient,
                                                           auth: Headers) -> None:
    response = client.get("/api/jobs", params={"offset": str(2**64)}, headers=auth)
    assert response.status_code == 400, response.text
    assert "offset" in response.json()["error"]["message"]
    assert client.get("/api/jobs", params={"offset": str(INT64_MAX)},
                      headers=auth).json() == []


# --- filters ---------------------------------------------------------------------------

def test_a_number_for_a_string_field_is_refused_with_the_quoted_form(
        client: TestClient, auth: Headers, world: dict[str, Any]) -> None:
    response = client.get("/v3/accounts", params={"filters": "id eq 99999999999999999999"},
                          headers=auth)
    assert_error_dto(response, 400)
    assert "'id' expects a quoted string" in text(response)
    response = client.get("/v3/sources", params={"filters": 'authoritative eq "yes"'},
                          headers=auth)
    assert_error_dto(response, 400)
    assert "'authoritative' expects true or false" in text(response)


def test_created_and_modified_compare_as_dates(client: TestClient, auth: Headers,
                                              world: dict[str, Any]) -> None:
    def names(filters: str) -> list[str]:
        response = client.get("/v3/accounts", params={"filters": filters}, headers=auth)
        assert response.status_code == 200, (filters, response.text)
        return sorted(a["nativeIdentity"] for a in response.json())

    every = ["a1", "a2", "a3"]
    assert names('created gt "2000-01-01T00:00:00Z"') == every
    assert names("created ge 2000-01-01T00:00:00.000Z") == every  # unquoted, as SailPoint
    assert names("modified lt 2000-01-01") == []
    assert names('modified le "2999-12-31T23:59:59+02:00"') == every
    created = client.get("/v3/accounts", headers=auth).json()[0]
    assert names(f'created eq "{created["created"]}" and id eq "{created["id"]}"') == [
        created["nativeIdentity"]]
    for bad in ('created gt "yesterday"', "created gt 5", 'modified lt "2024-13-01"'):
        response = client.get("/v3/accounts", params={"filters": bad}, headers=auth)
        assert_error_dto(response, 400)
        assert "expects an ISO-8601 date-time" in text(response), bad


def test_a_filter_is_bounded_in_depth_and_size(client: TestClient, auth: Headers,
                                              world: dict[str, Any]) -> None:
    cases = {
        "(" * 600 + 'id eq "x"' + ")" * 600: f"more than {MAX_DEPTH} deep",
        "not " * 2000 + 'id eq "x"': f"more than {MAX_DEPTH} deep",
        " and ".join(['id eq "x"'] * 2000): f"more than {MAX_TERMS} comparisons",
        " or ".join(['id eq "x"'] * 2000): f"more than {MAX_TERMS} comparisons",
    }
    for filters, message in cases.items():
        for path in ("/v3/accounts", "/v2025/task-status"):
            response = client.get(path, params={"filters": filters}, headers=auth)
            assert_error_dto(response, 400)
            assert message in text(response)
    # right at the limits, the filter works
    deep = "(" * MAX_DEPTH + 'nativeIdentity eq "a1"' + ")" * MAX_DEPTH
    many = " or ".join(['nativeIdentity eq "a1"'] * MAX_TERMS)
    for filters in (deep, many):
        response = client.get("/v3/accounts", params={"filters": filters}, headers=auth)
        assert response.status_code == 200, response.text
        assert [a["nativeIdentity"] for a in response.json()] == ["a1"]


def test_sorters_name_each_field_once(client: TestClient, auth: Headers,
                                      world: dict[str, Any]) -> None:
    """3,000 sort terms used to reach the database (SQLite: too many ORDER BY terms)."""
    response = client.get("/v3/accounts", params={"sorters": ",".join(["name"] * 3000)},
                          headers=auth)
    assert_error_dto(response, 400)
    assert "sorters names 'name' more than once" in text(response)
    response = client.get("/v3/accounts", params={"sorters": "-name,nativeIdentity"},
                          headers=auth)
    assert [a["nativeIdentity"] for a in response.json()] == ["a3", "a2", "a1"]


# --- JSON Patch and JSON bodies -----------------------------------------------------------

@pytest.mark.parametrize(("op", "message"), [
    ({"op": "replace", "path": "description", "value": "x"}, "starting with '/'"),
    ({"op": "replace", "path": "/description~9", "value": "x"}, "'~' must be followed"),
    ({"op": "replace", "path": "~9", "value": "x"}, "starting with '/'"),
    ({"op": "replace", "path": "", "value": "x"}, "starting with '/'"),
    ({"op": "replace", "path": 5, "value": "x"}, "must be a JSON Pointer string"),
    ({"op": "replace", "path": ["a"], "value": "x"}, "must be a JSON Pointer string"),
    ({"op": "move", "from": "nope", "path": "/description"}, "'from' must be"),
    ({"op": "replace", "path": "/description"}, "needs a 'value'"),
    ({"op": "frobnicate", "path": "/description"}, "'op' is one of"),
    ({"op": "replace", "path": "/nope/deeper", "value": 1}, "does not apply"),
    ({"op": "replace", "path": "/name/0", "value": 1}, "does not apply"),
    ({"op": "replace", "path": "/connectorAttributes/correlation", "value": "email"},
     "connectorAttributes.correlation must be a list"),
    ({"op": "replace", "path": "/connectorAttributes/correlation", "value": {"a": 1}},
     "connectorAttributes.correlation must be a list"),
    ({"op": "replace", "path": "/connectorAttributes/correlation", "value": [1]},
     "connectorAttributes.correlation must be a list"),
    ({"op": "add", "path": "/connectorAttributes/delimiter", "value": "é"},
     "one ASCII character"),
])
def test_a_malformed_json_patch_is_a_400_naming_the_problem(
        client: TestClient, auth: Headers, world: dict[str, Any], op: dict[str, Any],
        message: str) -> None:
    source_id = world["source"]["id"]
    before = client.get(f"/v3/sources/{source_id}", headers=auth).json()
    response = client.patch(f"/v3/sources/{source_id}", json=[op], headers=auth)
    assert_error_dto(response, 400)
    assert message in text(response), text(response)
    assert client.get(f"/v3/sources/{source_id}", headers=auth).json() == before


@pytest.mark.parametrize("path", [["completionStatus"], {"a": 1}, 5, None, "completionStatus"])
def test_task_status_patch_paths_must_be_patchable_strings(
        client: TestClient, auth: Headers, world: dict[str, Any], path: Any) -> None:
    """A list as the path used to be looked up in a set: TypeError, 500."""
    response = client.patch(f"/v2025/task-status/{world['task']['id']}", headers=auth,
                            json=[{"op": "replace", "path": path, "value": "Error"}])
    assert_error_dto(response, 400)
    assert "cannot be changed; patchable: /completed, /completionStatus, /progress" in text(
        response)


@pytest.mark.parametrize("body", ["[" * 5000 + "]" * 5000, '{"a":' * 5000 + "1" + "}" * 5000,
                                  "[" * 40 + "]" * 40, '[{"op": "test", "path": "/x", '
                                  '"value": NaN}]'])
def test_deep_or_non_json_bodies_are_a_400_everywhere(client: TestClient, auth: Headers,
                                                      world: dict[str, Any], body: str) -> None:
    source_id, task_id = world["source"]["id"], world["task"]["id"]
    json_headers = {**auth, "Content-Type": "application/json"}
    for method, path in [("PATCH", f"/v3/sources/{source_id}"),
                         ("PATCH", f"/v2025/task-status/{task_id}"),
                         ("POST", "/v3/sources"), ("PUT", f"/v3/sources/{source_id}")]:
        response = client.request(method, path, content=body, headers=json_headers)
        assert_error_dto(response, 400)


def test_connector_attributes_must_stay_renderable(client: TestClient, auth: Headers) -> None:
    nested: Any = "x"
    for _ in range(100):
        nested = [nested]
    for attributes in ({"deep": nested}, {"n": float("nan")}):
        body = {"name": "S", "connector": "delimited-file", "connectorAttributes": attributes}
        response = client.post("/v3/sources", headers={**auth, "Content-Type":
                                                       "application/json"},
                               content=_dumps(body))
        assert_error_dto(response, 400)
        assert "connectorAttributes" in text(response)
    assert client.get("/v3/sources", headers=auth).json() == []


def _dumps(value: Any) -> str:
    import json
    return json.dumps(value)  # (allows NaN, as a careless client would send it)


# --- source settings ---------------------------------------------------------------------

@pytest.mark.parametrize("correlation", ["email", {"accountAttribute": "email"}, [1], [["a"]],
                                         [{"accountAttribute": "", "identityAttribute": "e"}],
                                         [{"accountAttribute": 1, "identityAttribute": "e"}]])
def test_correlation_of_the_wrong_type_is_refused(client: TestClient, auth: Headers,
                                                  correlation: Any) -> None:
    body = {"name": "S", "connector": "delimited-file",
            "connectorAttributes": {"correlation": correlation}}
    response = client.post("/v3/sources", json=body, headers=auth)
    assert_error_dto(response, 400)
    assert "connectorAttributes.correlation must be a list" in text(response)


@pytest.mark.parametrize("delimiter", ["é", "€", ";;", "", '"', "\n", 5])
def test_a_delimiter_must_be_one_ascii_character(client: TestClient, auth: Headers,
                                                 make_source: Callable[..., dict[str, Any]],
                                                 delimiter: Any) -> None:
    body = {"name": "S", "connector": "delimited-file",
            "connectorAttributes": {"delimiter": delimiter}}
    response = client.post("/v3/sources", json=body, headers=auth)
    assert_error_dto(response, 400)
    assert "one ASCII character" in text(response)
    source = make_source("T", connectorAttributes={"delimiter": "\t"})  # a tab is fine
    response = client.put(f"/v3/sources/{source['id']}", headers=auth, json={
        **body, "name": "T"})
    assert_error_dto(response, 400)
    assert client.get(f"/v3/sources/{source['id']}",
                      headers=auth).json()["connectorAttributes"]["delimiter"] == "\t"


def test_the_account_schema_cannot_be_renamed(client: TestClient, auth: Headers,
                                             world: dict[str, Any],
                                             load: Callable[..., dict[str, Any]]) -> None:
    source_id = world["source"]["id"]
    schema = client.get(f"/v3/sources/{source_id}/schemas", headers=auth).json()[0]
    response = client.put(f"/v3/sources/{source_id}/schemas/{schema['id']}", headers=auth,
                          json={**schema, "name": "user"})
    assert_error_dto(response, 400)
    assert "The account schema's name cannot change" in text(response)
    assert client.get(f"/v3/sources/{source_id}/schemas",
                      headers=auth).json()[0]["name"] == "account"
    task = load(source_id, THREE + "a4,Di,di@x.org,Eng\n")
    assert task["completionStatus"] == "SUCCESS", task["messages"]
    assert set(stored(client, auth, source_id)) == {"a1", "a2", "a3", "a4"}


# --- answers match SailPoint's schemas ---------------------------------------------------------

def nulls(value: Any, where: str = "") -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nulls(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls(v, f"{where}[{i}]")]
    return [where] if value is None else []


def test_no_null_where_sailpoint_documents_a_string_or_object(
        client: TestClient, auth: Headers, world: dict[str, Any],
        make_source: Callable[..., dict[str, Any]],
        load: Callable[..., dict[str, Any]]) -> None:
    owned = make_source("Owned", owner={"type": "IDENTITY", "id": "i1"},
                        managementWorkgroup={"type": "GOVERNANCE_GROUP", "id": "g1"})
    load(owned["id"], THREE)  # (not authoritative: its accounts stay uncorrelated)
    source = client.get(f"/v3/sources/{owned['id']}", headers=auth).json()
    # SailPoint: description, managerCorrelationMapping are strings / objects, never null
    assert "description" not in source and "managerCorrelationMapping" not in source
    assert source["owner"] == {"type": "IDENTITY", "id": "i1"}
    assert source["managementWorkgroup"] == {"type": "GOVERNANCE_GROUP", "id": "g1"}
    schema = client.get(f"/v3/sources/{owned['id']}/schemas", headers=auth).json()[0]
    assert "hierarchyAttribute" not in schema
    assert schema["attributes"] and all(
        "description" not in a and "schema" not in a for a in schema["attributes"])
    accounts = client.get("/v3/accounts", headers=auth,
                          params={"filters": f'sourceId eq "{owned["id"]}"'}).json()
    for account in accounts:
        assert "identityId" not in account and "identity" not in account
        assert "ownerIdentity" not in account
        assert account["sourceOwner"] == {"type": "IDENTITY", "id": "i1"}
        assert account["uncorrelated"] is True
    correlated = client.get("/v3/accounts", headers=auth, params={
        "filters": f'sourceId eq "{world["source"]["id"]}"'}).json()
    assert all(a["identity"] == {"type": "IDENTITY", "id": a["identityId"],
                                 "name": a["identity"]["name"]} for a in correlated)
    for identity in client.get("/v2025/identities", headers=auth).json():
        assert "lifecycleState" not in identity
    # what is left null is documented nullable by SailPoint
    allowed = {".cluster", ".accountCorrelationConfig", ".accountCorrelationRule",
               ".managerCorrelationRule", ".beforeProvisioningRule", ".passwordPolicies",
               ".category"}
    assert set(nulls(source)) <= allowed, nulls(source)
    assert set(nulls(accounts[0])) <= {".cloudLifecycleState", ".identityState", ".type",
                                       ".description", ".uuid", ".features"}, nulls(accounts[0])


def test_a_nul_character_is_a_400_on_every_database(client: TestClient, auth: Headers,
                                                    world: dict[str, Any]) -> None:
    """PostgreSQL refuses NUL in text; that is the client's error, not a 500."""
    for path, params in [("/v3/accounts", {"filters": 'id eq "a\x00b"'}),
                         ("/v3/sources/a%00b", {}), ("/v3/accounts/a%00b", {}),
                         ("/v2025/task-status/a%00b", {}), ("/v2025/identities/a%00b", {}),
                         ("/api/jobs", {"type": "a\x00b"})]:
        response = client.get(path, params=params, headers=auth)
        # SQLite stores NUL: nothing matches (200 [] or 404); PostgreSQL refuses it (400)
        assert response.status_code in (200, 400, 404), (path, response.text)
        assert response.status_code != 200 or response.json() == []
        if response.status_code == 400:
            assert "NUL" in response.text
    response = client.post("/v3/sources", headers=auth, json={
        "name": "a\x00b", "connector": "delimited-file"})
    assert response.status_code in (201, 400), response.text
    if response.status_code == 400:
        assert "NUL" in text(response)
