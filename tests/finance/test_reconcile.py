"""Reconciliation against the database: for any sequence of institution snapshots the
stored transactions equal the latest one (less pending ones whose posted twin is there),
with no duplicate; and an aggregation whose job is no longer its worker's writes nothing."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from sheaf.config import Settings
from sheaf.finance import service
from sheaf.finance.aggregation import Run, aggregate
from sheaf.finance.connectors import CONNECTORS, Login, Snapshot
from sheaf.finance.connectors.base import MemberContext
from sheaf.finance.engine import drop_posted_twins
from sheaf.finance.models import FinTransaction, FinUser, Institution, Member
from sheaf.jobs.errors import JobCancelled
from sheaf.jobs.models import Job
from sheaf.kit.base import utcnow
from sheaf.runtime import Runtime

ACCOUNTS = [{"id": "a1", "name": "Checking", "type": "CHECKING", "balance": "1.00"},
            {"id": "a2", "name": "Card", "type": "CREDIT_CARD", "balance": "2.00"}]


class ScriptedConnector:
    """Answers whatever snapshot the institution's config holds."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def login(self, credentials: dict[str, str], answers: list[str] | None) -> Login:
        return Login("CONNECTED")

    def fetch(self, member: MemberContext, credentials: dict[str, str], *,
              transactions: bool, holdings: bool) -> Snapshot:
        return Snapshot(ACCOUNTS, list(self.config["transactions"]), [])


@pytest.fixture
def scripted(runtime: Runtime) -> tuple[str, str]:
    CONNECTORS["scripted"] = ScriptedConnector  # type: ignore[assignment]
    from sheaf.auth import mx

    with runtime.db.write() as session:
        client, _ = mx.create_client(session, "t")
        institution = service.create_institution(session, "scripted", "Scripted", "scripted",
                                                 {"transactions": []})
        user = service.create_user(session, client.client_id, {})
        fields = {c["field_name"]: c["guid"] for c in institution.credentials}
        member = service.create_member(session, runtime, user, {
            "institution_code": "scripted",
            "credentials": [{"guid": fields["username"], "value": "u"},
                            {"guid": fields["password"], "value": "p"}]})
        return client.client_id, member.guid


def _run(runtime: Runtime, client_id: str, member: str, transactions: list[dict[str, Any]]
         ) -> None:
    with runtime.db.write() as session:
        session.execute(update(Institution).where(Institution.code == "scripted")
                        .values(config={"transactions": transactions, "throttled": False}))
    submitted = service.aggregate(runtime, client_id, member)
    assert submitted.started
    assert runtime.jobs.get(submitted.job_id).status == "succeeded"  # type: ignore[arg-type,union-attr]


def _stored(runtime: Runtime, member: str) -> list[tuple[str, dict[str, Any]]]:
    with runtime.db.read() as session:
        return [(i, d) for i, d in session.execute(
            select(FinTransaction.id, FinTransaction.data)
            .where(FinTransaction.member_guid == member))]


DAY0 = date(2026, 1, 1)
transaction = st.fixed_dictionaries({
    "id": st.sampled_from([f"t{i}" for i in range(12)]),
    "account_id": st.sampled_from(["a1", "a2"]),
    "amount": st.sampled_from(["5.00", "12.50", "99.99"]),
    "status": st.sampled_from(["POSTED", "PENDING"]),
    "description": st.sampled_from(["Coffee Corner", "COFFEE CORNER", "Grocery Mart"]),
    "date": st.integers(0, 6).map(lambda d: (DAY0 + timedelta(days=d)).isoformat()),
})
snapshot = st.lists(transaction, max_size=12, unique_by=lambda t: t["id"])


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(snapshots=st.lists(snapshot, min_size=1, max_size=4))
def test_stored_transactions_equal_the_latest_snapshot(
        runtime: Runtime, scripted: tuple[str, str], snapshots: list[list[dict[str, Any]]]
) -> None:
    client_id, member = scripted
    for snap in snapshots:
        _run(runtime, client_id, member, snap)
        kept, dropped = drop_posted_twins(snap)
        stored = _stored(runtime, member)
        ids = [i for i, _ in stored]
        assert len(ids) == len(set(ids)), "duplicate transaction"
        assert dict(stored) == {t["id"]: t for t in kept}
        assert not set(dropped) & set(ids)
    _run(runtime, client_id, member, [])
    assert _stored(runtime, member) == []


def test_a_pending_transaction_with_its_posted_twin_is_dropped() -> None:
    pending = {"id": "p", "account_id": "a1", "amount": "5.00", "status": "PENDING",
               "description": "Coffee Corner", "date": "2026-01-01"}
    posted = {**pending, "id": "q", "status": "POSTED", "description": "COFFEE CORNER",
              "date": "2026-01-03"}
    assert drop_posted_twins([pending, posted]) == ([posted], ["p"])
    # a different amount, account, a date outside the window or another payee: no twin
    for change in ({"amount": "5.01"}, {"account_id": "a2"}, {"date": "2026-01-09"},
                   {"date": "2025-12-31"}, {"description": "Grocery Mart"}):
        other = {**posted, **change}
        assert drop_posted_twins([pending, other]) == ([pending, other], [])
    # one posted transaction stands for one pending one
    twin = {**pending, "id": "p2"}
    kept, dropped = drop_posted_twins([pending, twin, posted])
    assert dropped == ["p"] and kept == [twin, posted]


def test_an_aggregation_no_longer_its_workers_writes_nothing(
        runtime: Runtime, scripted: tuple[str, str], settings: Settings) -> None:
    client_id, member = scripted
    rows = [{"id": "t1", "account_id": "a1", "amount": "1.00", "status": "POSTED",
             "description": "x", "date": "2026-01-01"}]
    with runtime.db.write() as session:
        session.execute(update(Institution).where(Institution.code == "scripted")
                        .values(config={"transactions": rows}))
        # a job another worker took over (its lease ran out under this one)
        session.add(Job(id="f" * 32, type="finance.aggregate_member", status="running",
                        worker_id="someone-else", payload={}, messages=[], counters={},
                        created_at=utcnow(), updated_at=utcnow(), run_after=utcnow(),
                        lock_key=f"member:{member}"))
    run = Run(runtime.db, settings, "f" * 32, "me")
    with pytest.raises(JobCancelled):
        aggregate(run, {"member_guid": member}, lambda *a: None)
    assert _stored(runtime, member) == []
    with runtime.db.read() as session:
        assert session.get(Member, member).connection_status == "CREATED"
        assert session.execute(select(FinUser)).scalars().first() is not None
