"""OFX Direct Connect against a loopback OFX server, and OFX statement-file upload."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from sheaf.finance import service
from sheaf.finance.models import Institution
from sheaf.jobs.models import Job
from sheaf.runtime import Runtime
from tests.finance.ofx_bank import Bank, document, ofx_bank

ACCOUNTS = [{"id": "1111", "type": "CHECKING"}, {"id": "4444", "type": "CREDITCARD"},
            {"id": "7777", "type": "INVESTMENT"}]


@pytest.fixture
def bank() -> Iterator[Bank]:
    with ofx_bank() as b:
        yield b


@pytest.fixture
def ofx_member(client: TestClient, mx_auth: dict[str, str], runtime: Runtime, bank: Bank,
               new_user: Callable[..., str]) -> Callable[[str], tuple[str, str]]:
    def make(password: str = "pw") -> tuple[str, str]:
        with runtime.db.write() as session:
            if session.get(Institution, "fakebank") is None:
                service.create_institution(session, "fakebank", "Fake Bank", "ofx", {
                    "url": f"{bank.url}/ofx", "org": "FAKE", "fid": "1234",
                    "bank_id": "121000248", "broker_id": "broker.example",
                    "accounts": ACCOUNTS, "timeout_seconds": 0.5, "throttled": False})
            fields = {c["field_name"]: c["guid"] for c in
                      service.get_institution(session, "fakebank").credentials}
        user = new_user()
        r = client.post(f"/users/{user}/members", headers=mx_auth, json={"member": {
            "institution_code": "fakebank", "credentials": [
                {"guid": fields["username"], "value": "alice"},
                {"guid": fields["password"], "value": password}]}})
        assert r.status_code == 202, r.text
        return user, r.json()["member"]["guid"]

    return make


def _data(client: TestClient, auth: dict[str, str], user: str, member: str) -> dict[str, Any]:
    base = f"/users/{user}/members/{member}"
    return {
        "member": client.get(base, headers=auth).json()["member"],
        "accounts": client.get(f"{base}/accounts", headers=auth).json()["accounts"],
        "transactions": client.get(f"{base}/transactions", headers=auth,
                                   params={"from_date": "2000-01-01"}).json()["transactions"],
        "holdings": client.get(f"{base}/investment_holdings", headers=auth
                               ).json()["investment_holdings"],
    }


def _point(runtime: Runtime, path: str) -> None:
    with runtime.db.write() as session:
        institution = session.get(Institution, "fakebank")
        assert institution is not None
        session.execute(update(Institution).where(Institution.code == "fakebank").values(
            config={**institution.config, "url": f"{institution.config['url'].rsplit('/', 1)[0]}"
                                                 f"/{path}"}))


def test_direct_connect_gathers_bank_card_and_investment_statements(
        client: TestClient, mx_auth: dict[str, str], runtime: Runtime, bank: Bank,
        ofx_member: Callable[[str], tuple[str, str]]) -> None:
    user, member = ofx_member("pw")
    data = _data(client, mx_auth, user, member)
    assert data["member"]["connection_status"] == "CONNECTED"
    assert sorted(a["type"] for a in data["accounts"]) == ["CHECKING", "CREDIT_CARD",
                                                            "INVESTMENT"]
    assert {t["id"] for t in data["transactions"]} == {"F1", "F2", "C1", "I1"}
    coffee = next(t for t in data["transactions"] if t["id"] == "F1")
    assert coffee["amount"] == 12.34 and coffee["type"] == "DEBIT"
    assert [(h["symbol"], h["quantity"], h["market_value"]) for h in data["holdings"]] == [
        ("VTI", "10", 2500.0)]
    assert "<USERID>alice" in bank.requests[0] and "<USERPASS>pw" in bank.requests[0]

    # the bank drops F1 and changes F2: one deleted, one updated, the rest unchanged
    bank.checking = [("F2", "1000.01", "20251215", "Payroll"),
                     ("F3", "-3.00", "20251220", "Book Nook")]
    client.post(f"/users/{user}/members/{member}/aggregate", headers=mx_auth)
    with runtime.db.read() as session:
        job = session.query(Job).filter(Job.subject_id == member) \
            .order_by(Job.created_at.desc()).first()
        assert job is not None
        counters = job.counters
    assert (counters["transactions_created"], counters["transactions_updated"],
            counters["transactions_deleted"], counters["transactions_unchanged"]) == (1, 1, 1, 2)
    assert counters["accounts_updated"] == 0 and counters["holdings_unchanged"] == 1


@pytest.mark.parametrize("path,password,status,words", [
    ("ofx", "wrong", "DENIED", "15500"),
    ("ofx", "lock-me-out", "LOCKED", "15502"),
    ("malformed", "pw", "FAILED", "could not be read"),
    ("slow", "pw", "DEGRADED", "did not answer"),
    ("error", "pw", "DEGRADED", "HTTP 500"),
])
def test_institution_failures_keep_previous_data(
        client: TestClient, mx_auth: dict[str, str], runtime: Runtime, bank: Bank,
        ofx_member: Callable[[str], tuple[str, str]], path: str, password: str, status: str,
        words: str) -> None:
    user, member = ofx_member("pw")
    before = _data(client, mx_auth, user, member)
    _point(runtime, path)
    fields = {c["field_name"]: c["guid"] for c in client.get(
        "/institutions/fakebank/credentials", headers=mx_auth).json()["credentials"]}
    r = client.put(f"/users/{user}/members/{member}", headers=mx_auth, json={"member": {
        "credentials": [{"guid": fields["password"], "value": password}]}})
    assert r.status_code == 200
    after = _data(client, mx_auth, user, member)
    assert after["member"]["connection_status"] == status
    assert words in after["member"]["connection_status_message"]
    assert password not in after["member"]["connection_status_message"] or password == "pw"
    for kind in ("accounts", "transactions", "holdings"):
        assert after[kind] == before[kind], kind


def test_statement_file_upload(client: TestClient, mx_auth: dict[str, str],
                               new_user: Callable[..., str]) -> None:
    user = new_user()
    r = client.post(f"/users/{user}/members", headers=mx_auth, json={
        "member": {"institution_code": "statement_file", "credentials": []}})
    assert r.status_code == 200 and r.json()["member"]["is_manual"] is True
    member = r.json()["member"]["guid"]
    refused = client.post(f"/users/{user}/members/{member}/aggregate", headers=mx_auth)
    assert refused.status_code == 400 and "statement_file" in refused.json()["error"]["message"]

    path = f"/users/{user}/members/{member}/statement_file"
    ofx = document([("F1", "-12.34", "20251201", "Coffee Corner")]).encode()
    up = client.post(path, headers={**mx_auth, "Content-Type": "application/x-ofx"}, content=ofx)
    assert up.status_code == 202, up.text
    data = _data(client, mx_auth, user, member)
    assert data["member"]["connection_status"] == "CONNECTED"
    assert len(data["accounts"]) == 3 and len(data["transactions"]) == 3
    # multipart works too; a malformed file fails the member and keeps the data
    broken = b"OFXHEADER:100\n<OFX><broken"
    bad = client.post(path, headers=mx_auth,
                      files={"file": ("x.qfx", broken, "application/x-ofx")})
    assert bad.status_code == 202
    after = _data(client, mx_auth, user, member)
    assert after["member"]["connection_status"] == "FAILED"
    assert "could not be read" in after["member"]["connection_status_message"]
    assert after["transactions"] == data["transactions"]
    assert client.post(path, headers=mx_auth, content=b"").status_code == 400
    assert client.post(path, headers=mx_auth, files={"nope": ("x", b"x")}).status_code == 400
