"""The MX Platform API through the real app: auth, users, institutions, members, the
aggregation lifecycle (challenges, resume, failures), data and paging, bad input."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from sheaf.app import create_app
from sheaf.auth import mx
from sheaf.config import Settings
from sheaf.finance.models import Challenge, FinTransaction, Member
from sheaf.finance.vault import KEY_FILE
from sheaf.jobs.models import Job
from sheaf.runtime import Runtime
from tests.finance.conftest import MXBANK_PASSWORD, basic, credentials

MEDIA = "application/vnd.mx.api.v1+json"


def _job(runtime: Runtime, member_guid: str) -> Job:
    with runtime.db.read() as session:
        return session.execute(select(Job).where(Job.subject_id == member_guid)
                               .order_by(Job.created_at.desc())).scalars().first()


def _jobs(runtime: Runtime, member_guid: str) -> int:
    with runtime.db.read() as session:
        return len(session.execute(select(Job.id).where(Job.subject_id == member_guid)).all())


def _status(client: TestClient, auth: dict[str, str], user: str, member: str) -> dict[str, Any]:
    r = client.get(f"/users/{user}/members/{member}/status", headers=auth)
    assert r.status_code == 200, r.text
    return dict(r.json()["member"])


# -- auth and scope ------------------------------------------------------------------------

def test_basic_auth_is_required_and_errors_use_mx_envelope(client: TestClient,
                                                           mx_auth: dict[str, str]) -> None:
    r = client.get("/users")
    assert r.status_code == 401 and r.json()["error"]["status"] == 401
    assert "Basic" in r.json()["error"]["message"]
    client_id = base64.b64decode(mx_auth["Authorization"].split()[1]).decode().split(":")[0]
    assert client.get("/users", headers=basic(client_id, "0" * 40)).status_code == 401
    assert client.get("/users", headers={"Authorization": "Basic !!"}).status_code == 401
    ok = client.get("/users", headers=mx_auth)
    assert ok.status_code == 200 and ok.headers["content-type"].startswith(MEDIA)
    # application/json is tolerated too
    assert client.get("/users", headers={**mx_auth, "Accept": "application/json"}
                      ).status_code == 200


def test_a_client_sees_only_its_own_users(client: TestClient, mx_auth: dict[str, str],
                                          make_mx_client: Callable[[], tuple[str, str]],
                                          new_user: Callable[..., str],
                                          new_member: Callable[..., dict[str, Any]]) -> None:
    user = new_user(id="partner-1", email="a@example.com")
    member = new_member(user)["guid"]
    other = basic(*make_mx_client())
    assert client.get("/users", headers=other).json()["users"] == []
    for path in (f"/users/{user}", f"/users/{user}/members", f"/users/{user}/members/{member}",
                 f"/users/{user}/members/{member}/accounts",
                 f"/users/{user}/members/{member}/transactions", f"/users/{user}/accounts"):
        r = client.get(path, headers=other)
        assert r.status_code == 404, path
        assert "error" in r.json()
    assert client.post(f"/users/{user}/members/{member}/aggregate", headers=other
                       ).status_code == 404
    assert client.delete(f"/users/{user}", headers=other).status_code == 404
    # the same partner id may exist under another client
    assert client.post("/users", json={"user": {"id": "partner-1"}}, headers=other
                       ).status_code == 200


# -- users ---------------------------------------------------------------------------------

def test_user_crud(client: TestClient, mx_auth: dict[str, str]) -> None:
    r = client.post("/users", json={"user": {"id": "u-1", "email": "x@example.com",
                                             "metadata": "{}"}}, headers=mx_auth)
    assert r.status_code == 200
    user = r.json()["user"]
    assert user["guid"].startswith("USR-") and user["is_disabled"] is False
    assert client.post("/users", json={"user": {"id": "u-1"}}, headers=mx_auth
                       ).status_code == 409
    r = client.put(f"/users/{user['guid']}", json={"user": {"email": "y@example.com",
                                                            "is_disabled": True}},
                   headers=mx_auth)
    assert r.json()["user"]["email"] == "y@example.com" and r.json()["user"]["is_disabled"]
    listed = client.get("/users?email=y@example.com", headers=mx_auth).json()
    assert [u["guid"] for u in listed["users"]] == [user["guid"]]
    assert listed["pagination"] == {"current_page": 1, "per_page": 25, "total_entries": 1,
                                    "total_pages": 1}
    assert client.delete(f"/users/{user['guid']}", headers=mx_auth).status_code == 204
    assert client.get(f"/users/{user['guid']}", headers=mx_auth).status_code == 404


def test_user_bad_bodies(client: TestClient, mx_auth: dict[str, str]) -> None:
    for body in (b"", b"{", b"[]", b'{"user": 3}', b'{"user": {"email": 5}}',
                 b'{"user": {"is_disabled": "yes"}}'):
        r = client.post("/users", content=body, headers={**mx_auth,
                                                         "Content-Type": "application/json"})
        assert r.status_code == 400, body
        assert r.json()["error"]["message"]


# -- institutions --------------------------------------------------------------------------

def test_institutions_and_their_credentials(client: TestClient, mx_auth: dict[str, str]) -> None:
    listed = client.get("/institutions?name=mx", headers=mx_auth).json()
    assert [i["code"] for i in listed["institutions"]] == ["mxbank"]
    assert client.get("/institutions/mxbank", headers=mx_auth).json()["institution"]["name"] \
        == "MX Bank"
    fields = client.get("/institutions/mxbank/credentials", headers=mx_auth).json()
    assert [f["field_name"] for f in fields["credentials"]] == ["username", "password"]
    assert fields["credentials"][1]["guid"] == MXBANK_PASSWORD
    r = client.get("/institutions/nope/credentials", headers=mx_auth)
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]


# -- members and aggregation ---------------------------------------------------------------

def test_connected_member_has_accounts_transactions_and_holdings(
        client: TestClient, mx_auth: dict[str, str], runtime: Runtime,
        new_user: Callable[..., str], new_member: Callable[..., dict[str, Any]]) -> None:
    user = new_user()
    created = new_member(user)
    guid = created["guid"]
    assert created["guid"].startswith("MBR-") and created["most_recent_job_guid"] is None
    member = client.get(f"/users/{user}/members/{guid}", headers=mx_auth).json()["member"]
    assert member["connection_status"] == "CONNECTED" and not member["is_being_aggregated"]
    assert member["successfully_aggregated_at"] and member["aggregated_at"]
    status = _status(client, mx_auth, user, guid)
    assert status["is_authenticated"] and status["has_processed_accounts"]
    assert status["has_processed_transactions"] and status["challenges"] == []

    accounts = client.get(f"/users/{user}/members/{guid}/accounts", headers=mx_auth).json()
    assert {a["type"] for a in accounts["accounts"]} == {"CHECKING", "SAVINGS", "CREDIT_CARD",
                                                          "INVESTMENT"}
    assert all(isinstance(a["balance"], float) for a in accounts["accounts"])
    txns = client.get(f"/users/{user}/members/{guid}/transactions",
                      params={"from_date": "2000-01-01", "records_per_page": 1000},
                      headers=mx_auth).json()
    assert txns["pagination"]["total_entries"] == 351  # 180 + 24 + 120 + 24 + 3 pending
    assert sum(t["status"] == "PENDING" for t in txns["transactions"]) == 3
    assert all(isinstance(t["amount"], float) for t in txns["transactions"])
    dates = [t["date"] for t in txns["transactions"]]
    assert dates == sorted(dates, reverse=True)
    holdings = client.get(f"/users/{user}/members/{guid}/investment_holdings",
                          headers=mx_auth).json()["investment_holdings"]
    assert len(holdings) == 5 and all(isinstance(h["quantity"], str) for h in holdings)
    legacy = client.get(f"/users/{user}/members/{guid}/holdings", headers=mx_auth).json()
    assert len(legacy["holdings"]) == 5 and isinstance(legacy["holdings"][0]["shares"], float)
    # per user
    assert client.get(f"/users/{user}/accounts", headers=mx_auth
                      ).json()["pagination"]["total_entries"] == 4
    default_window = client.get(f"/users/{user}/transactions", headers=mx_auth).json()
    assert 0 < default_window["pagination"]["total_entries"] < 351
    counters = _job(runtime, guid).counters
    assert counters["transactions_created"] == 351 and counters["accounts_created"] == 4
    assert counters["holdings_created"] == 5


def test_unchanged_reaggregation_writes_no_row_and_pending_posts_once(
        client: TestClient, mx_auth: dict[str, str], runtime: Runtime,
        new_user: Callable[..., str], new_member: Callable[..., dict[str, Any]]) -> None:
    user = new_user()
    guid = new_member(user)["guid"]

    def stored() -> list[tuple[str, str]]:
        with runtime.db.read() as session:
            return sorted(session.execute(select(FinTransaction.id, FinTransaction.guid)
                                          .where(FinTransaction.member_guid == guid)).all())

    first = stored()
    r = client.post(f"/users/{user}/members/{guid}/aggregate", headers=mx_auth)
    assert r.status_code == 202
    counters = _job(runtime, guid).counters
    # the sandbox posted its 3 pending transactions under new ids, and added 3 new pending
    assert counters["transactions_created"] == 6 and counters["transactions_deleted"] == 3
    assert counters["transactions_updated"] == 0 and counters["accounts_updated"] == 0
    second = stored()
    ids = [i for i, _ in second]
    assert len(ids) == len(set(ids)) == len(first) + 3
    assert not any(i.startswith("pending-0-") for i in ids)
    assert sum(i.startswith("posted-0-") for i in ids) == 3
    kept = {i: g for i, g in first if not i.startswith("pending-")}
    assert all(dict(second)[i] == g for i, g in kept.items())  # guids are stable

    # a third run repeats the sandbox's change; with include_* off nothing is written
    client.post(f"/users/{user}/members/{guid}/aggregate",
                params={"include_transactions": "False", "include_holdings": "FALSE"},
                headers=mx_auth)
    counters = _job(runtime, guid).counters
    assert counters["rows_written"] == 0 and "transactions_created" not in counters
    assert stored() == second


def test_aggregate_while_running_is_202_without_a_new_job(
        client: TestClient, mx_auth: dict[str, str], runtime: Runtime,
        new_user: Callable[..., str], new_member: Callable[..., dict[str, Any]]) -> None:
    user = new_user()
    guid = new_member(user)["guid"]
    runtime.executor.paused = True  # type: ignore[attr-defined]
    r = client.post(f"/users/{user}/members/{guid}/aggregate", headers=mx_auth)
    assert r.status_code == 202 and r.json()["member"]["is_being_aggregated"] is True
    again = client.post(f"/users/{user}/members/{guid}/aggregate", headers=mx_auth)
    assert again.status_code == 202 and again.json()["member"]["is_being_aggregated"]
    assert _jobs(runtime, guid) == 2  # the create's and this one
    assert _status(client, mx_auth, user, guid)["is_being_aggregated"] is True
    runtime.executor.drain()  # type: ignore[attr-defined]
    assert _status(client, mx_auth, user, guid)["is_being_aggregated"] is False


def test_aggregate_is_scoped_to_the_client_and_user(
        client: TestClient, mx_auth: dict[str, str], runtime: Runtime,
        make_mx_client: Callable[[], tuple[str, str]], new_user: Callable[..., str],
        new_member: Callable[..., dict[str, Any]]) -> None:
    user, stranger = new_user(), new_user()
    guid = new_member(user)["guid"]
    other = basic(*make_mx_client())
    for auth, owner in ((other, user), (mx_auth, stranger), (mx_auth, "USR-nobody")):
        r = client.post(f"/users/{owner}/members/{guid}/aggregate", headers=auth)
        assert r.status_code == 404 and r.json()["error"]["message"], (owner, r.text)
    assert _jobs(runtime, guid) == 1  # only the create's


def test_minimum_interval_after_success(client: TestClient, mx_auth: dict[str, str],
                                        runtime: Runtime, new_user: Callable[..., str],
                                        new_member: Callable[..., dict[str, Any]]) -> None:
    from sheaf.finance import service

    with runtime.db.write() as session:
        service.create_institution(session, "throttled", "Throttled Bank", "sandbox",
                                   {"throttled": True})
        fields = session.get(type(service.get_institution(session, "throttled")),
                             "throttled").credentials
    user = new_user()
    body = {"member": {"institution_code": "throttled", "credentials": [
        {"guid": fields[0]["guid"], "value": "mxuser"},
        {"guid": fields[1]["guid"], "value": "pw"}]}}
    guid = client.post(f"/users/{user}/members", json=body, headers=mx_auth).json()["member"][
        "guid"]
    assert _jobs(runtime, guid) == 1
    r = client.post(f"/users/{user}/members/{guid}/aggregate", headers=mx_auth)
    assert r.status_code == 202 and _jobs(runtime, guid) == 1
    # mxbank has no interval
    mx = new_member(user)["guid"]
    client.post(f"/users/{user}/members/{mx}/aggregate", headers=mx_auth)
    assert _jobs(runtime, mx) == 2


def _challenged(client: TestClient, auth: dict[str, str], user: str,
                new_member: Callable[..., dict[str, Any]], password: str) -> str:
    guid = new_member(user, password)["guid"]
    status = _status(client, auth, user, guid)
    assert status["connection_status"] == "CHALLENGED" and not status["is_being_aggregated"]
    assert len(status["challenges"]) == 1
    return guid


def test_text_challenge_answered_correctly_connects(
        client: TestClient, mx_auth: dict[str, str], runtime: Runtime,
        new_user: Callable[..., str],
        new_member: Callable[..., dict[str, Any]]) -> None:
    user = new_user()
    guid = _challenged(client, mx_auth, user, new_member, "challenge")
    listed = client.get(f"/users/{user}/members/{guid}/challenges", headers=mx_auth).json()
    challenge = listed["challenges"][0]
    assert challenge["type"] == "TEXT" and challenge["guid"].startswith("CRD-")
    assert client.get(f"/users/{user}/members/{guid}/accounts", headers=mx_auth
                      ).json()["accounts"] == []
    runtime.executor.paused = True  # type: ignore[attr-defined]
    r = client.put(f"/users/{user}/members/{guid}/resume", headers=mx_auth, json={
        "member": {"challenges": [{"guid": challenge["guid"], "value": "correct"}]}})
    assert r.status_code == 202, r.text
    assert r.json()["member"]["connection_status"] == "RESUMED"
    assert r.json()["member"]["is_being_aggregated"] is True
    runtime.executor.drain()  # type: ignore[attr-defined]
    assert _status(client, mx_auth, user, guid)["connection_status"] == "CONNECTED"
    assert len(client.get(f"/users/{user}/members/{guid}/accounts", headers=mx_auth
                          ).json()["accounts"]) == 4
    # not challenged any more: 204 for the list, 405 for resume
    assert client.get(f"/users/{user}/members/{guid}/challenges", headers=mx_auth
                      ).status_code == 204
    again = client.put(f"/users/{user}/members/{guid}/resume", headers=mx_auth, json={
        "member": {"challenges": [{"guid": challenge["guid"], "value": "correct"}]}})
    assert again.status_code == 405 and "CONNECTED" in again.json()["error"]["message"]


def test_wrong_answer_is_rejected(client: TestClient, mx_auth: dict[str, str],
                                  runtime: Runtime, new_user: Callable[..., str],
                                  new_member: Callable[..., dict[str, Any]]) -> None:
    user = new_user()
    guid = _challenged(client, mx_auth, user, new_member, "challenge")
    challenge = _status(client, mx_auth, user, guid)["challenges"][0]
    client.put(f"/users/{user}/members/{guid}/resume", headers=mx_auth, json={
        "member": {"challenges": [{"guid": challenge["guid"], "value": "Paris"}]}})
    member = client.get(f"/users/{user}/members/{guid}", headers=mx_auth).json()["member"]
    assert member["connection_status"] == "REJECTED"
    assert _job(runtime, guid).status == "failed"


def test_options_and_image_challenges(client: TestClient, mx_auth: dict[str, str],
                                      new_user: Callable[..., str],
                                      new_member: Callable[..., dict[str, Any]]) -> None:
    user = new_user()
    options = _challenged(client, mx_auth, user, new_member, "options")
    challenge = _status(client, mx_auth, user, options)["challenges"][0]
    assert challenge["type"] == "OPTIONS"
    right = next(o for o in challenge["options"] if o["value"] == "correct")
    client.put(f"/users/{user}/members/{options}/resume", headers=mx_auth, json={
        "member": {"challenges": [{"guid": challenge["guid"], "value": right["guid"]}]}})
    assert _status(client, mx_auth, user, options)["connection_status"] == "CONNECTED"

    image = _challenged(client, mx_auth, user, new_member, "image")
    challenge = _status(client, mx_auth, user, image)["challenges"][0]
    assert challenge["type"] == "IMAGE_DATA" and challenge["image_data"].startswith("data:")
    client.put(f"/users/{user}/members/{image}/resume", headers=mx_auth, json={
        "member": {"challenges": [{"guid": challenge["guid"], "value": "correct"}]}})
    assert _status(client, mx_auth, user, image)["connection_status"] == "CONNECTED"


def test_unanswered_challenge_expires(client: TestClient, mx_auth: dict[str, str],
                                      runtime: Runtime, new_user: Callable[..., str],
                                      new_member: Callable[..., dict[str, Any]]) -> None:
    runtime.settings.finance.challenge_timeout_seconds = 0.01
    user = new_user()
    guid = new_member(user, "challenge")["guid"]
    import time

    time.sleep(0.05)
    status = _status(client, mx_auth, user, guid)
    assert status["connection_status"] == "EXPIRED" and status["challenges"] == []
    with runtime.db.read() as session:
        challenge = session.execute(select(Challenge.guid)).scalar_one()
    r = client.put(f"/users/{user}/members/{guid}/resume", headers=mx_auth, json={
        "member": {"challenges": [{"guid": challenge, "value": "correct"}]}})
    assert r.status_code == 405 and "EXPIRED" in r.json()["error"]["message"]
    with runtime.db.read() as session:
        assert session.get(Member, guid).connection_status == "EXPIRED"  # written down
    # aggregating again starts over: a new challenge
    runtime.settings.finance.challenge_timeout_seconds = 600
    client.post(f"/users/{user}/members/{guid}/aggregate", headers=mx_auth)
    assert _status(client, mx_auth, user, guid)["connection_status"] == "CHALLENGED"


def test_failures_keep_the_previous_data(client: TestClient, mx_auth: dict[str, str],
                                         runtime: Runtime, new_user: Callable[..., str],
                                         new_member: Callable[..., dict[str, Any]]) -> None:
    user = new_user()
    guid = new_member(user)["guid"]
    before = client.get(f"/users/{user}/members/{guid}/accounts", headers=mx_auth).json()
    for password, status in (("UNAUTHORIZED", "DENIED"), ("BAD_REQUEST", "FAILED")):
        r = client.put(f"/users/{user}/members/{guid}", headers=mx_auth, json={
            "member": {"credentials": [{"guid": MXBANK_PASSWORD, "value": password}]}})
        assert r.status_code == 200, r.text
        member = client.get(f"/users/{user}/members/{guid}", headers=mx_auth).json()["member"]
        assert member["connection_status"] == status, password
        assert member["connection_status_message"]
        assert client.get(f"/users/{user}/members/{guid}/accounts", headers=mx_auth
                          ).json() == before
    assert _job(runtime, guid).status == "failed"
    denied = new_member(user, "UNAUTHORIZED")
    assert client.get(f"/users/{user}/members/{denied['guid']}", headers=mx_auth
                      ).json()["member"]["needs_updated_credentials"] is True
    wrong_user = client.post(f"/users/{user}/members", headers=mx_auth, json={
        "member": {"institution_code": "mxbank", "credentials": credentials("x", "someone")}})
    assert wrong_user.json()["member"]["guid"]
    assert client.get(f"/users/{user}/members/{wrong_user.json()['member']['guid']}",
                      headers=mx_auth).json()["member"]["connection_status"] == "DENIED"


def test_use_cases_without_pfm_refuse_aggregation(
        client: TestClient, mx_auth: dict[str, str], new_user: Callable[..., str],
        new_member: Callable[..., dict[str, Any]]) -> None:
    user = new_user()
    guid = new_member(user, skip=True, use_cases=["MONEY_MOVEMENT"])["guid"]
    r = client.post(f"/users/{user}/members/{guid}/aggregate", headers=mx_auth)
    assert r.status_code == 403 and "PFM" in r.json()["error"]["message"]
    member = client.get(f"/users/{user}/members/{guid}", headers=mx_auth).json()["member"]
    assert member["connection_status"] == "CREATED" and member["use_cases"] == ["MONEY_MOVEMENT"]


def test_member_bad_input(client: TestClient, mx_auth: dict[str, str],
                          new_user: Callable[..., str]) -> None:
    user = new_user()
    cases = [
        ({"member": {"credentials": credentials("x")}}, 400, "institution_code"),
        ({"member": {"institution_code": "nope", "credentials": credentials("x")}}, 422,
         "nope"),
        ({"member": {"institution_code": "mxbank",
                     "credentials": [{"guid": "CRD-x", "value": "a"}]}}, 422, "CRD-x"),
        ({"member": {"institution_code": "mxbank", "credentials": "x"}}, 400, "credentials"),
        ({"member": {"institution_code": "mxbank", "credentials": credentials("x")[:1]}}, 400,
         "password"),
        ({"member": {"institution_code": "mxbank", "credentials": credentials("x"),
                     "use_cases": ["NOPE"]}}, 400, "use_cases"),
        ({"nomember": 1}, 400, "member"),
    ]
    for body, status, word in cases:
        r = client.post(f"/users/{user}/members", json=body, headers=mx_auth)
        assert r.status_code == status, (body, r.text)
        assert word in r.json()["error"]["message"], r.text
    assert client.post("/users/USR-nope/members", json=cases[0][0], headers=mx_auth
                       ).status_code == 404
    # (found by the fuzz: a string where a boolean belongs was a 500 on update)
    member = client.post(f"/users/{user}/members", headers=mx_auth, json={"member": {
        "institution_code": "mxbank", "credentials": credentials("x"),
        "skip_aggregation": True}}).json()["member"]["guid"]
    for fields in ({"background_aggregation_is_disabled": "AAA"}, {"metadata": 5},
                   {"id": []}, {"skip_aggregation": "yes"}, {"use_cases": [[1]]},
                   {"credentials": [{"guid": 1, "value": "x"}]}):
        r = client.put(f"/users/{user}/members/{member}", headers=mx_auth,
                       json={"member": fields})
        assert r.status_code == 400, (fields, r.text)
    assert client.get(f"/users/{user}/members/MBR-nope", headers=mx_auth).status_code == 404
    assert client.put(f"/users/{user}/members/MBR-nope/resume", json={}, headers=mx_auth
                      ).status_code in (400, 404)


def test_paging_and_dates(client: TestClient, mx_auth: dict[str, str],
                          new_user: Callable[..., str],
                          new_member: Callable[..., dict[str, Any]]) -> None:
    user = new_user()
    guid = new_member(user)["guid"]
    path = f"/users/{user}/members/{guid}/transactions"
    base = {"from_date": "2000-01-01"}
    first = client.get(path, params={**base, "records_per_page": 10}, headers=mx_auth).json()
    second = client.get(path, params={**base, "records_per_page": 10, "page": 2},
                        headers=mx_auth).json()
    assert first["pagination"]["per_page"] == 10 and first["pagination"]["total_pages"] == 36
    assert not {t["guid"] for t in first["transactions"]} & {t["guid"] for t in
                                                             second["transactions"]}
    assert client.get(path, params={**base, "records_per_page": 5000}, headers=mx_auth
                      ).json()["pagination"]["per_page"] == 25
    assert client.get(path, params={**base, "records_per_page": 3}, headers=mx_auth
                      ).json()["pagination"]["per_page"] == 10
    beyond = client.get(path, params={**base, "page": 99}, headers=mx_auth).json()
    assert beyond["transactions"] == [] and beyond["pagination"]["current_page"] == 99
    for bad in ({"page": 0}, {"page": "x"}, {"records_per_page": -1}, {"from_date": "2020-13-01"},
                {"to_date": "yesterday"}, {"from_date": "2020-02-01", "to_date": "2020-01-01"},
                {"page": "9" * 30}):
        r = client.get(path, params=bad, headers=mx_auth)
        assert r.status_code == 400, bad
        assert r.json()["error"]["message"]
    window = client.get(path, params={"from_date": "2026-01-01", "to_date": "2026-01-31"},
                        headers=mx_auth).json()["transactions"]
    assert all("2026-01-01" <= t["date"] <= "2026-01-31" for t in window)


def test_delete_member(client: TestClient, mx_auth: dict[str, str], runtime: Runtime,
                       new_user: Callable[..., str],
                       new_member: Callable[..., dict[str, Any]]) -> None:
    user = new_user()
    guid = new_member(user)["guid"]
    assert client.delete(f"/users/{user}/members/{guid}", headers=mx_auth).status_code == 204
    assert client.get(f"/users/{user}/members/{guid}", headers=mx_auth).status_code == 404
    with runtime.db.read() as session:
        assert session.execute(select(FinTransaction.guid)
                               .where(FinTransaction.member_guid == guid)).first() is None


def test_credentials_are_sealed_at_rest(client: TestClient, mx_auth: dict[str, str],
                                        runtime: Runtime, new_user: Callable[..., str],
                                        new_member: Callable[..., dict[str, Any]]) -> None:
    user = new_user()
    guid = new_member(user, "s3cret-pass")["guid"]
    with runtime.db.read() as session:
        sealed = session.get(Member, guid).credentials
    assert sealed and "s3cret-pass" not in sealed and "mxuser" not in sealed
    key = runtime.settings.data_dir / KEY_FILE
    assert oct(os.stat(key).st_mode & 0o777) == "0o600"
    member = client.get(f"/users/{user}/members/{guid}", headers=mx_auth).text
    assert "s3cret-pass" not in member


def test_read_one_account_and_one_transaction_by_guid(
        client: TestClient, mx_auth: dict[str, str],
        make_mx_client: Callable[[], tuple[str, str]], new_user: Callable[..., str],
        new_member: Callable[..., dict[str, Any]]) -> None:
    user, stranger = new_user(), new_user()
    new_member(user)
    accounts = client.get(f"/users/{user}/accounts", headers=mx_auth).json()["accounts"]
    for listed in accounts:
        one = client.get(f"/users/{user}/accounts/{listed['guid']}", headers=mx_auth)
        assert one.status_code == 200 and one.json() == {"account": listed}
    # (an old one: reading by guid knows no date window)
    oldest = client.get(f"/users/{user}/transactions", headers=mx_auth,
                        params={"from_date": "2000-01-01", "records_per_page": 1000}
                        ).json()["transactions"][-1]
    one = client.get(f"/users/{user}/transactions/{oldest['guid']}", headers=mx_auth)
    assert one.status_code == 200 and one.json() == {"transaction": oldest}

    other = basic(*make_mx_client())
    account, transaction = accounts[0]["guid"], oldest["guid"]
    for auth, owner, path in (
            (mx_auth, user, "accounts/ACT-nope"), (mx_auth, user, "transactions/TRN-nope"),
            (mx_auth, user, f"accounts/{transaction}"), (mx_auth, user, f"transactions/{account}"),
            (mx_auth, stranger, f"accounts/{account}"),
            (mx_auth, stranger, f"transactions/{transaction}"),
            (other, user, f"accounts/{account}"), (other, user, f"transactions/{transaction}")):
        r = client.get(f"/users/{owner}/{path}", headers=auth)
        assert r.status_code == 404 and r.json()["error"]["message"], (owner, path, r.text)


def test_a_client_over_its_rate_limit_gets_429_in_mx_s_envelope(settings: Settings) -> None:
    """Each client has its budget (3 requests a 10 s window here); past it, 429 with
    Retry-After in MX's error envelope; another client still passes."""
    auth = settings.auth.model_copy(update={"rate_limit_requests": 3,
                                            "rate_limit_window_seconds": 10.0})
    runtime = Runtime.build(settings.model_copy(update={"auth": auth}))
    try:
        with runtime.db.write() as session:
            one, one_key = mx.create_client(session, "one")
            two, two_key = mx.create_client(session, "two")
            first, second = basic(one.client_id, one_key), basic(two.client_id, two_key)
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            for _ in range(3):
                assert client.get("/institutions", headers=first).status_code == 200
            refused = client.get("/users", headers=first)
            assert refused.status_code == 429
            assert "error" in refused.json()
            assert 1 <= int(refused.headers["Retry-After"]) <= 10
            assert client.get("/institutions", headers=second).status_code == 200
    finally:
        runtime.close()
