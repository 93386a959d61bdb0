"""Transaction date filters: ``from_date`` (default 120 days ago) and ``to_date`` (default
5 days ahead), both included, UTC days, on the Platform API's member and user listings
and Nexus' ``GET /transactions``; a malformed or reversed range is a 400 in the
dialect's envelope."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from sheaf.finance import service
from sheaf.finance.connectors import CONNECTORS
from sheaf.finance.models import Institution
from sheaf.runtime import Runtime
from tests.finance.conftest import basic
from tests.finance.test_nexus import NEXUS
from tests.finance.test_reconcile import ScriptedConnector

# days from today: just outside, on and inside both edges of the default window
OFFSETS = [-121, -120, -119, 0, 5, 6]


def _day(offset: int) -> str:
    # (today as the server sees it when the test runs, not when the suite was collected:
    # a run that crosses midnight UTC would compare against yesterday's window)
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


@pytest.fixture
def dated(client: TestClient, runtime: Runtime,
          make_mx_client: Callable[[], tuple[str, str]]) -> dict[str, Any]:
    """A member whose institution sent one transaction on each day of OFFSETS."""
    CONNECTORS["scripted"] = ScriptedConnector  # type: ignore[assignment]
    client_id, key = make_mx_client()
    transactions = [{"id": f"t{o}", "account_id": "a1", "amount": "1.00", "status": "POSTED",
                     "description": f"day {o}", "date": _day(o)} for o in OFFSETS]
    with runtime.db.write() as session:
        institution = service.create_institution(session, "dated", "Dated", "scripted",
                                                 {"transactions": transactions,
                                                  "throttled": False})
        user = service.create_user(session, client_id, {})
        fields = {c["field_name"]: c["guid"] for c in institution.credentials}
        member = service.create_member(session, runtime, user, {
            "institution_code": "dated",
            "credentials": [{"guid": fields["username"], "value": "u"},
                            {"guid": fields["password"], "value": "p"}]})
        ids = {"client_id": client_id, "key": key, "user": user.guid, "member": member.guid}
    assert service.aggregate(runtime, client_id, ids["member"]).started
    with runtime.db.write() as session:  # (the scripted institution is shared: reset it)
        session.execute(update(Institution).where(Institution.code == "dated")
                        .values(config={"transactions": [], "throttled": False}))
    return ids


def _days(body: dict[str, Any]) -> list[str]:
    return sorted(t["date"] for t in body["transactions"])


def test_platform_listings_default_to_120_days_back_and_5_ahead(
        client: TestClient, dated: dict[str, Any]) -> None:
    auth = basic(dated["client_id"], dated["key"])
    for path in (f"/users/{dated['user']}/members/{dated['member']}/transactions",
                 f"/users/{dated['user']}/transactions"):
        default = client.get(path, headers=auth)
        assert default.status_code == 200, default.text
        assert _days(default.json()) == [_day(o) for o in (-120, -119, 0, 5)]
        assert default.json()["pagination"]["total_entries"] == 4
        # one end given: the other keeps its default
        since = client.get(path, params={"from_date": _day(-121)}, headers=auth).json()
        assert _days(since) == [_day(o) for o in (-121, -120, -119, 0, 5)]
        until = client.get(path, params={"to_date": _day(6)}, headers=auth).json()
        assert _days(until) == [_day(o) for o in (-120, -119, 0, 5, 6)]
        one_day = client.get(path, params={"from_date": _day(0), "to_date": _day(0)},
                             headers=auth).json()
        assert _days(one_day) == [_day(0)]


@pytest.mark.parametrize("params", [
    {"from_date": "2020-13-01"}, {"to_date": "yesterday"}, {"from_date": "01/02/2020"},
    {"to_date": "2020-02-30"}, {"from_date": "2020-02-01", "to_date": "2020-01-31"}])
def test_malformed_dates_are_400_in_each_dialects_envelope(
        client: TestClient, dated: dict[str, Any], params: dict[str, str]) -> None:
    auth = basic(dated["client_id"], dated["key"])
    for path in (f"/users/{dated['user']}/members/{dated['member']}/transactions",
                 f"/users/{dated['user']}/transactions"):
        r = client.get(path, params=params, headers=auth)
        assert r.status_code == 400, (path, params, r.text)
        assert set(r.json()) == {"error"} and r.json()["error"]["message"]
    nexus = _nexus_session(client, dated)
    r = client.get("/transactions", params=params, headers=nexus)
    assert r.status_code == 400, (params, r.text)
    assert r.json()["error"]["message"]


def _nexus_session(client: TestClient, dated: dict[str, Any]) -> dict[str, str]:
    r = client.get(f"/{dated['client_id']}/users/{dated['user']}/api_token",
                   headers={"MD-API-KEY": dated["key"]})
    assert r.status_code == 200, r.text
    s = client.post("/sessions", headers={"MD-API-TOKEN": r.json()["api_token"]["token"],
                                          "Accept": NEXUS},
                    json={"session": {"skip_aggregation": True}})
    assert s.status_code == 200, s.text
    return {"MD-SESSION-TOKEN": s.json()["session"]["token"], "Accept": NEXUS}


def test_nexus_transactions_default_to_the_same_window(
        client: TestClient, dated: dict[str, Any]) -> None:
    nexus = _nexus_session(client, dated)
    default = client.get("/transactions", headers=nexus)
    assert default.status_code == 200, default.text
    assert sorted(t["date"] for t in default.json()["transactions"]) == [
        _day(o) for o in (-120, -119, 0, 5)]
    wide = client.get("/transactions", params={"from_date": _day(-200), "to_date": _day(9)},
                      headers=nexus).json()
    assert len(wide["transactions"]) == len(OFFSETS)
