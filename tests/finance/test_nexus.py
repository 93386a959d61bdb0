"""MX Nexus: the API token and session lifecycle, members, aggregate / refresh, resume,
data with Nexus field shapes, and a session's reach (its own user only)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sheaf.runtime import Runtime

NEXUS = "application/vnd.mx.nexus.v1+json"


def _client_and_key(mx_auth: dict[str, str]) -> tuple[str, str]:
    client_id, _, key = base64.b64decode(mx_auth["Authorization"].split()[1]).decode() \
        .partition(":")
    return client_id, key


@pytest.fixture
def open_session(client: TestClient, mx_auth: dict[str, str]) -> Callable[[str], dict[str, str]]:
    client_id, key = _client_and_key(mx_auth)

    def open_(user: str) -> dict[str, str]:
        r = client.get(f"/{client_id}/users/{user}/api_token", headers={"MD-API-KEY": key})
        assert r.status_code == 200, r.text
        token = r.json()["api_token"]["token"]
        s = client.post("/sessions", headers={"MD-API-TOKEN": token, "Accept": NEXUS},
                        json={"session": {"skip_aggregation": True}})
        assert s.status_code == 200, s.text
        return {"MD-SESSION-TOKEN": s.json()["session"]["token"], "Accept": NEXUS}

    return open_


def test_api_token_is_one_time_and_needs_the_api_key(client: TestClient, mx_auth: dict[str, str],
                                                     new_user: Callable[..., str]) -> None:
    client_id, key = _client_and_key(mx_auth)
    user = new_user(id="partner-7")
    bad = client.get(f"/{client_id}/users/{user}/api_token", headers={"MD-API-KEY": "0" * 40})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == 4010
    assert client.get(f"/{client_id}/users/USR-nope/api_token",
                      headers={"MD-API-KEY": key}).status_code == 404
    # the partner id works too, and the SSO API's .xml form
    xml = client.get(f"/{client_id}/users/partner-7/api_token.xml", headers={"MD-API-KEY": key})
    assert xml.status_code == 200 and xml.text.startswith("<api_token><token>")
    token = client.get(f"/{client_id}/users/{user}/api_token",
                       headers={"MD-API-KEY": key}).json()["api_token"]["token"]
    assert client.post("/sessions", headers={"MD-API-TOKEN": token}).status_code == 200
    again = client.post("/sessions", headers={"MD-API-TOKEN": token})
    assert again.status_code == 401 and "already used" in again.json()["error"]["message"]
    assert client.post("/sessions").status_code == 401


def test_session_expires_after_idle_time_and_slides_with_use(
        client: TestClient, runtime: Runtime, new_user: Callable[..., str],
        open_session: Callable[[str], dict[str, str]]) -> None:
    runtime.settings.finance.session_ttl_seconds = 0.6
    headers = open_session(new_user())
    for _ in range(4):  # 4 x 0.3 s: longer than the TTL, but each call restarts it
        time.sleep(0.3)
        assert client.get("/members", headers=headers).status_code == 200
    time.sleep(0.8)
    expired = client.get("/members", headers=headers)
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == 4011
    assert expired.headers["content-type"].startswith(NEXUS)
    unknown = client.get("/accounts", headers={"MD-SESSION-TOKEN": "nope"})
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == 4011
    assert client.get("/transactions").json()["error"]["code"] == 4011


def test_members_aggregate_refresh_and_data(client: TestClient, runtime: Runtime,
                                            new_user: Callable[..., str],
                                            new_member: Callable[..., dict[str, Any]],
                                            open_session: Callable[[str], dict[str, str]]
                                            ) -> None:
    user = new_user()
    guid = new_member(user)["guid"]
    headers = open_session(user)
    members = client.get("/members", headers=headers).json()["members"]
    assert [m["guid"] for m in members] == [guid]
    assert members[0]["connection_status"] == "CONNECTED"
    assert members[0]["connection_status_id"] == 6
    assert members[0]["most_recent_job_guid"].startswith("JOB-")
    assert members[0]["aggregated_at"].endswith("+00:00")

    runtime.executor.paused = True  # type: ignore[attr-defined]
    r = client.get(f"/members/{guid}/aggregate", headers=headers)
    assert r.status_code == 200 and r.json()["member"]["is_being_aggregated"] is True
    queued = runtime.executor.pending[-1]  # type: ignore[attr-defined]
    # (the queued job, not the finished one before it, although it has not started)
    assert r.json()["member"]["most_recent_job_guid"] == f"JOB-{queued}"
    assert members[0]["most_recent_job_guid"] != f"JOB-{queued}"
    runtime.executor.drain()  # type: ignore[attr-defined]
    done = client.get(f"/members/{guid}", headers=headers).json()["member"]
    assert done["most_recent_job_guid"] == f"JOB-{queued}" and not done["is_being_aggregated"]
    for method, path in (("POST", "refresh"), ("GET", "refresh"), ("POST", "aggregate")):
        r = client.request(method, f"/members/{guid}/{path}", headers=headers,
                           json={"include_transactions": False, "include_holdings": False})
        assert r.status_code == 200 and r.json()["member"]["connection_status"] == "CONNECTED"
    everyone = client.get("/members/aggregate?include_holdings=false", headers=headers)
    assert everyone.status_code == 200 and len(everyone.json()["members"]) == 1

    accounts = client.get("/accounts", headers=headers).json()["accounts"]
    checking = next(a for a in accounts if a["account_type_name"] == "CHECKING")
    assert checking["account_type"] == 1 and checking["balance_set_by"] == 1
    assert checking["balance_set_by_name"] == "FEED"
    assert checking["feed_balance"] == checking["balance"]
    txns = client.get("/transactions", headers=headers,
                      params={"from_date": "2000-01-01", "account_guid": checking["guid"],
                              "records_per_page": 1000}).json()
    assert {t["account_guid"] for t in txns["transactions"]} == {checking["guid"]}
    first = txns["transactions"][0]
    assert first["amount_set_by"] == 1 and first["feed_amount"] == first["amount"]
    assert first["feed_transaction_type_name"] in {"DEBIT", "CREDIT"}
    holdings = client.get("/holdings", headers=headers).json()["holdings"]
    assert len(holdings) == 5 and isinstance(holdings[0]["shares"], float)
    assert client.get("/transactions?from_date=nope", headers=headers).status_code == 400


def test_update_resume_and_pfm(client: TestClient, new_user: Callable[..., str],
                               new_member: Callable[..., dict[str, Any]],
                               open_session: Callable[[str], dict[str, str]]) -> None:
    from tests.finance.conftest import MXBANK_PASSWORD

    user = new_user()
    guid = new_member(user)["guid"]
    headers = open_session(user)
    resumed = client.put(f"/members/{guid}/resume", headers=headers,
                         json={"member": {"challenges": [{"guid": "CRD-x", "value": "x"}]}})
    assert resumed.status_code == 405 and resumed.json()["error"]["code"] == 4050
    # not rooted: Nexus accepts the bare object
    r = client.put(f"/members/{guid}", headers=headers, json={
        "credentials": [{"guid": MXBANK_PASSWORD, "value": "challenge"}]})
    assert r.status_code == 200 and r.json()["member"]["connection_status"] == "CHALLENGED"
    assert r.json()["member"]["connection_status_id"] == 3
    status = client.get(f"/members/{guid}", headers=headers).json()["member"]
    assert status["connection_status"] == "CHALLENGED"
    from sqlalchemy import select

    from sheaf.finance.models import Challenge

    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.db.read() as session:
        challenge = session.execute(select(Challenge.guid)).scalar_one()
    r = client.put(f"/members/{guid}/resume", headers=headers,
                   json={"challenges": [{"guid": challenge, "value": "correct"}]})
    assert r.status_code == 200 and r.json()["member"]["connection_status"] == "CONNECTED"
    r = client.put(f"/members/{guid}", headers=headers,
                   json={"member": {"use_cases": ["MONEY_MOVEMENT"]}})
    assert r.status_code == 200
    refused = client.post(f"/members/{guid}/aggregate", headers=headers)
    assert refused.status_code == 403 and "PFM" in refused.json()["error"]["message"]
    assert client.get("/members/aggregate", headers=headers).status_code == 200
    assert client.delete(f"/members/{guid}", headers=headers).json() == {}
    assert client.get(f"/members/{guid}", headers=headers).status_code == 404


def test_a_session_sees_only_its_users_data(client: TestClient, new_user: Callable[..., str],
                                            new_member: Callable[..., dict[str, Any]],
                                            open_session: Callable[[str], dict[str, str]]
                                            ) -> None:
    mine, theirs = new_user(), new_user()
    new_member(mine)
    other = new_member(theirs)["guid"]
    headers = open_session(mine)
    assert client.get(f"/members/{other}", headers=headers).status_code == 404
    assert client.post(f"/members/{other}/aggregate", headers=headers).status_code == 404
    assert client.put(f"/members/{other}", headers=headers, json={}).status_code == 404
    accounts = client.get("/accounts", headers=headers).json()["accounts"]
    assert len(accounts) == 4 and all(a["user_guid"] == mine for a in accounts)
