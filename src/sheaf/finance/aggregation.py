"""One member aggregation: log in (through challenges), fetch, reconcile, apply.

Every write here is fenced on the job still being this worker's (a job ended from
outside, or taken over after its lease ran out, can never write), and the data with the
member's outcome (connection status, counters on the job row) is one transaction: a crash
at any point leaves the member's previous data, and the member tells the truth about it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import polars as pl
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from sheaf.blobs import BlobStore
from sheaf.config import Settings
from sheaf.db import Database
from sheaf.finance import repository, vault
from sheaf.finance.connectors import (
    NO_CREDENTIALS,
    ConnectorError,
    Login,
    Snapshot,
    connector_for,
)
from sheaf.finance.connectors.base import MemberContext
from sheaf.finance.engine import KindDiff, diff, drop_posted_twins
from sheaf.finance.ids import new_guid, new_guids
from sheaf.finance.models import Challenge, FinAccount, FinHolding, FinTransaction, Member
from sheaf.finance.statuses import message_for
from sheaf.jobs.errors import JobCancelled, JobFailed
from sheaf.jobs.models import Job
from sheaf.jobs.registry import JobOutcome
from sheaf.jobs.states import JobStatus
from sheaf.kit import bulk
from sheaf.kit.base import utcnow

log = logging.getLogger(__name__)
CHUNK = 500

Progress = Callable[[int, int | None, str], None]


@dataclass(frozen=True)
class Run:
    """Who runs this aggregation: the job and worker every write is fenced on."""

    db: Database
    settings: Settings
    job_id: str
    worker_id: str

    def fence(self, session: Session, **values: Any) -> None:
        """Stop unless the job is still running under this worker (and lock its row, on
        PostgreSQL, until this transaction ends)."""
        done = session.execute(
            update(Job).where(Job.id == self.job_id, Job.status == JobStatus.RUNNING.value,
                              Job.worker_id == self.worker_id)
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise JobCancelled()

    def member_update(self, member_guid: str, **values: Any) -> None:
        with self.db.write() as session:
            self.fence(session)
            _set_member(session, member_guid, **values)


def _set_member(session: Session, member_guid: str, **values: Any) -> None:
    found = session.execute(
        update(Member).where(Member.guid == member_guid)
        .values(updated_at=utcnow(), **values).execution_options(synchronize_session=False))
    if found.rowcount != 1:  # type: ignore[attr-defined]
        raise JobFailed("member_not_found", f"Member {member_guid} was deleted during the run")


def aggregate(run: Run, payload: dict[str, Any], progress: Progress) -> JobOutcome:
    member_guid = str(payload["member_guid"])
    with run.db.read() as session:
        member = session.get(Member, member_guid)
        institution = repository.institution(session, member.institution_code) \
            if member else None
        answers = _answers(run, repository.challenges(session, member_guid)) \
            if member and payload.get("resume") else None
    if member is None or institution is None:
        raise JobFailed("member_not_found", f"Member {member_guid} no longer exists")
    name = institution.name
    if member.credentials is None and institution.connector not in NO_CREDENTIALS:
        raise JobFailed("no_credentials", f"Member {member_guid} has no credentials")
    credentials = vault.unseal(run.settings.data_dir, member.credentials) \
        if member.credentials else {}
    config = dict(institution.config or {})
    if payload.get("blob"):
        config["statement"] = str(BlobStore(run.settings.blob_dir).path(str(payload["blob"])))

    start = {"aggregated_at": utcnow(), "is_authenticated": False,
             "has_processed_accounts": False, "has_processed_transactions": False}
    if answers is not None:
        start.update(connection_status="RESUMED",
                     connection_status_message=message_for("RESUMED", name))
    run.member_update(member_guid, **start)
    progress(0, 4, "Logging in")
    connector = connector_for(institution.connector, config)
    try:
        login = connector.login(credentials, answers)
        if login.status == "CHALLENGED":
            return _challenged(run, member_guid, login, name)
        run.member_update(member_guid, is_authenticated=True)
        progress(1, 4, "Gathering accounts, transactions and holdings")
        context = MemberContext(member.guid, member.created_at.date(), member.generation)
        snapshot = connector.fetch(
            context, credentials, transactions=bool(payload.get("include_transactions", True)),
            holdings=bool(payload.get("include_holdings", True)))
    except ConnectorError as refused:
        _refused(run, member_guid, refused, name)
        raise JobFailed(refused.status.lower(), refused.message) from None
    run.member_update(member_guid, has_processed_accounts=True,
                      has_processed_transactions=snapshot.transactions is not None)
    progress(2, 4, "Reconciling")
    counters = _apply(run, member, snapshot, name)
    progress(4, 4, "Connected")
    return JobOutcome(counters=counters)


def _answers(run: Run, challenges: list[Challenge]) -> list[str] | None:
    if not challenges or any(c.answer is None for c in challenges):
        return None
    return [str(vault.unseal(run.settings.data_dir, c.answer or "")) for c in challenges]


def _challenged(run: Run, member_guid: str, login: Login, name: str) -> JobOutcome:
    now = utcnow()
    expires = now + timedelta(seconds=run.settings.finance.challenge_timeout_seconds)
    with run.db.write() as session:
        run.fence(session, counters={"challenges": len(login.challenges)})
        session.execute(delete(Challenge).where(Challenge.member_guid == member_guid))
        for position, c in enumerate(login.challenges):
            session.add(Challenge(
                guid=new_guid("CRD"), member_guid=member_guid, position=position,
                field_name=c.get("field_name"), label=c.get("label"), type=c["type"],
                options=[{**o, "guid": new_guid("CRD")} for o in c.get("options", [])],
                image_data=c.get("image_data"),
                image_options=[{**o, "guid": new_guid("CRD")}
                               for o in c.get("image_options", [])],
                answer=None, created_at=now))
        _set_member(session, member_guid, connection_status="CHALLENGED",
                    connection_status_message=message_for("CHALLENGED", name),
                    challenge_expires_at=expires, is_authenticated=False)
    return JobOutcome(messages=[{"level": "info", "key": "challenged",
                                 "text": "The institution asked a security question"}],
                      counters={"challenges": len(login.challenges)})


def _refused(run: Run, member_guid: str, refused: ConnectorError, name: str) -> None:
    """The member ends in the institution's failure status; its data stays as it was."""
    with run.db.write() as session:
        run.fence(session)
        session.execute(delete(Challenge).where(Challenge.member_guid == member_guid))
        _set_member(session, member_guid, connection_status=refused.status,
                    connection_status_message=f"{message_for(refused.status, name)} "
                                              f"({refused.message})",
                    challenge_expires_at=None)


def _apply(run: Run, member: Member, snapshot: Snapshot, name: str) -> dict[str, Any]:
    """Diff and write in one transaction with the member's new status and the counters."""
    counters: dict[str, Any] = {}
    transactions = snapshot.transactions
    if transactions is not None:
        transactions, twins = drop_posted_twins(transactions)
        counters["pending_replaced_by_posted"] = len(twins)
    now = utcnow()
    with run.db.write() as session:
        run.fence(session)
        accounts = diff(snapshot.accounts, repository.stored(session, FinAccount, member.guid))
        account_guids = {ident: guid for ident, (guid, _) in
                         repository.stored(session, FinAccount, member.guid).items()}
        created_accounts = _guids("ACT", accounts)
        account_guids.update(created_accounts)
        ignored = 0
        diffs: dict[str, KindDiff] = {"accounts": accounts}
        rows: dict[str, list[dict[str, Any]]] = {}
        for kind, model, records in (
                ("transactions", FinTransaction, transactions),
                ("holdings", FinHolding, snapshot.holdings)):
            if records is None:
                continue
            known = [r for r in records if str(r.get("account_id")) in account_guids]
            ignored += len(records) - len(known)
            diffs[kind] = diff(known, repository.stored(session, model, member.guid))
        # (deletes first: a removed account takes its records with it)
        gone: list[tuple[str, type[FinAccount | FinTransaction | FinHolding]]] = [
            ("transactions", FinTransaction), ("holdings", FinHolding), ("accounts", FinAccount)]
        for kind, gone_model in gone:
            if kind in diffs:
                for chunk in _chunks(diffs[kind].deleted):
                    session.execute(delete(gone_model).where(gone_model.guid.in_(chunk)))
        base = {"member_guid": member.guid, "user_guid": member.user_guid}
        rows["accounts"] = [
            {**base, "guid": created_accounts[str(r["id"])], "id": str(r["id"]),
             "content_hash": h, "data": r, "created_at": now, "updated_at": now}
            for r, h in accounts.created]
        _write(session, FinAccount, rows["accounts"], accounts, now, {})
        for kind, model, prefix in (("transactions", FinTransaction, "TRN"),
                                    ("holdings", FinHolding, "HOL")):
            if kind not in diffs:
                continue
            d = diffs[kind]
            guids = new_guids(prefix, len(d.created))
            extra = (lambda r: {"date": str(r["date"])}) if kind == "transactions" \
                else (lambda r: {})
            new = [{**base, "guid": g, "id": str(r["id"]),
                    "account_guid": account_guids[str(r["account_id"])],
                    "content_hash": h, "data": r, "created_at": now, "updated_at": now,
                    **extra(r)} for g, (r, h) in zip(guids, d.created, strict=True)]
            _write(session, model, new, d, now,
                   {"account_guid": account_guids} | ({"date": True} if kind == "transactions"
                                                      else {}))
        for kind, d in diffs.items():
            counters[f"{kind}_created"] = len(d.created)
            counters[f"{kind}_updated"] = len(d.updated)
            counters[f"{kind}_deleted"] = len(d.deleted)
            counters[f"{kind}_unchanged"] = d.unchanged
        counters["ignored"] = ignored + sum(d.duplicates for d in diffs.values())
        writes = sum(d.writes for d in diffs.values())
        counters["rows_written"] = writes
        session.execute(delete(Challenge).where(Challenge.member_guid == member.guid))
        _set_member(session, member.guid, connection_status="CONNECTED",
                    connection_status_message=message_for("CONNECTED", name),
                    successfully_aggregated_at=now, challenge_expires_at=None,
                    generation=Member.generation + 1, is_authenticated=True,
                    has_processed_accounts=True,
                    has_processed_transactions=snapshot.transactions is not None)
        run.fence(session, counters=counters)
    log.info("member %s aggregated: %s", member.guid, counters)
    return counters


def _guids(prefix: str, d: KindDiff) -> dict[str, str]:
    ids = [str(r["id"]) for r, _ in d.created]
    return dict(zip(ids, new_guids(prefix, len(ids)), strict=True))


def _write(session: Session, model: type[FinAccount | FinTransaction | FinHolding],
           new: list[dict[str, Any]], d: KindDiff, now: Any, extra: dict[str, Any]) -> None:
    if new:
        # (beneath the ORM: a first aggregation inserts tens of thousands of rows)
        conn = session.connection()
        stamp = bulk.timestamp(conn, now)
        constants = {"member_guid": new[0]["member_guid"], "user_guid": new[0]["user_guid"],
                     "created_at": stamp, "updated_at": stamp}
        columns = [c for c in new[0] if c not in constants]
        frame = pl.DataFrame(
            {c: [json.dumps(r[c]) if c == "data" else r[c] for r in new] for c in columns},
            schema={c: pl.String for c in columns})
        bulk.insert_frame(conn, model.__tablename__, frame, constants=constants)
    if not d.updated:
        return
    changes = []
    for guid, record, digest in d.updated:
        row: dict[str, Any] = {"guid": guid, "content_hash": digest, "data": record,
                               "updated_at": now}
        if "account_guid" in extra:
            row["account_guid"] = extra["account_guid"][str(record["account_id"])]
        if "date" in extra:
            row["date"] = str(record["date"])
        changes.append(row)
    for chunk in _chunks(changes):
        session.execute(update(model), chunk)


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]
