"""The OpenAPI document says what the server does, and /docs works offline."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from sheaf.openapi import _DOCUMENTED_HERE

UNKNOWN = "0123456789abcdef0123456789abcdef"


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not ref:
        return schema
    name = ref.rsplit("/", 1)[-1]
    assert name in doc["components"]["schemas"], ref
    return dict(doc["components"]["schemas"][name])


def _declared(doc: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    """The schema the document declares for this answer (fails if it declares none)."""
    responses = doc["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered {status}, " \
                                     f"undeclared (declared: {sorted(responses)})"
    content = responses[str(status)].get("content", {}).get("application/json", {})
    return _resolve(doc, content.get("schema", {}))


def _matches(body: Any, schema: dict[str, Any]) -> None:
    for key in schema.get("required", []):
        assert key in body, f"{key!r} missing from {body}"


def test_docs_page_needs_no_network(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert re.findall(r"https?://", page.text) == []  # nothing from a CDN
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', page.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 1000, asset
    assert client.get("/redoc").status_code == 404  # (ReDoc would need a CDN font: not served)


def test_root_leads_to_the_console(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code in (302, 307) and answer.headers["location"] == "/console/"


def test_document_security_bodies_and_summaries(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["oauth2"]["flows"]["clientCredentials"]["tokenUrl"] == "/oauth/token"
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    every = [(p, m, op) for p, ops in doc["paths"].items() for m, op in ops.items()]
    # (the SailPoint dialect's, the token's and the job API's: other dialects say their own)
    ours = [(p, m, op) for p, m, op in every if _DOCUMENTED_HERE.match(p)]
    assert len(ours) > 60
    assert all("422" not in op["responses"] for _, _, op in ours)
    assert "HTTPValidationError" not in doc["components"]["schemas"]

    load = doc["paths"]["/v2025/sources/{id}/load-accounts"]["post"]
    assert load["summary"] == "Load accounts (v2025)"
    form = load["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["file"]["format"] == "binary"
    assert form["properties"]["disableOptimization"]["type"] == "string"
    assert {"400", "401", "403", "404", "413", "429"} <= set(load["responses"])
    assert load["security"] == [{"oauth2": []}, {"bearer": []}]
    assert _resolve(doc, load["responses"]["202"]["content"]["application/json"]["schema"])[
        "properties"]["task"]

    token = doc["paths"]["/oauth/token"]["post"]
    fields = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert set(fields["required"]) == {"grant_type", "client_id", "client_secret"}
    assert "security" not in token or token["security"] == []

    assert doc["paths"]["/v3/sources"]["post"]["summary"] == "Create source (v3)"
    assert doc["paths"]["/task-status/v1/{id}"]["get"]["summary"] == "Get task status (v1)"
    summaries = [op["summary"] for _, _, op in every]
    assert not [s for s in summaries if re.search(r"[a-z]v\d{4}|/[A-Z]", s)], summaries
    ids = [op["operationId"] for _, _, op in every]
    assert len(ids) == len(set(ids))


def test_declared_errors_are_the_ones_returned(
    client: TestClient, auth: dict[str, str], make_source: Any, make_token: Any
) -> None:
    doc = client.get("/openapi.json").json()
    path = "/v2025/task-status/{id}"
    for status, answer in [
        (401, client.get(f"/v2025/task-status/{UNKNOWN}")),
        (404, client.get(f"/v2025/task-status/{UNKNOWN}", headers=auth)),
        (400, client.get("/v2025/task-status", params={"limit": "x"}, headers=auth)),
    ]:
        assert answer.status_code == status, answer.text
        route = path if "{" in path and status != 400 else "/v2025/task-status"
        _matches(answer.json(), _declared(doc, route, "get", status))

    make_source("Payroll")
    again = client.post("/v3/sources", headers=auth,
                        json={"name": "Payroll", "connector": "delimited-file"})
    assert again.status_code == 409
    _matches(again.json(), _declared(doc, "/v3/sources", "post", 409))

    helpdesk = {"Authorization": f"Bearer {make_token('HELPDESK')}"}
    refused = client.post("/v3/sources", headers=helpdesk,
                          json={"name": "X", "connector": "delimited-file"})
    assert refused.status_code == 403
    _matches(refused.json(), _declared(doc, "/v3/sources", "post", 403))

    bad_grant = client.post("/oauth/token", data={"grant_type": "password"})
    assert bad_grant.status_code == 400
    _matches(bad_grant.json(), _declared(doc, "/oauth/token", "post", 400))

    job = client.get(f"/api/jobs/{UNKNOWN}", headers=auth)
    assert job.status_code == 404
    _matches(job.json(), _declared(doc, "/api/jobs/{job_id}", "get", 404))
