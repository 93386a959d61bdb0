"""One member aggregation: log in (through challenges), fetch, reconcile, apply.

Every write here is fenced on the job still being this worker's (a job ended from
outside, or taken over after its lease ran out, can never write), and the data with the
member's outcome (connection status, counters on the job row) is one transaction: a crash
at any point leaves the member's previous data, and the member tells the truth about it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import polars as pl
from sqlalchemy import delete, select, update
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
from sheaf.finance.engine import KindDiff, diff, drop_posted_twins_frame, encode
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

    start = {"aggregated_at": utcnow(), "job_id": run.job_id, "is_authenticated": False,
             "has_processed_accounts": False, "has_processed_transactions": False}
    if answers is not None:
        start.update(connection_status="RESUMED",
                     connection_status_message=message_for("RESUMED", name))
    clock = Clock()
    run.member_update(member_guid, **start)
    progress(0, 4, "Logging in")
    connector = connector_for(institution.connector, config)
    try:
        login = connector.login(credentials, answers)
        if login.status == "CHALLENGED":
            return _challenged(run, member_guid, login, name)
        clock.lap("login")
        run.member_update(member_guid, is_authenticated=True)
        progress(1, 4, "Gathering accounts, transactions and holdings")
        context = MemberContext(member.guid, member.created_at.date(), member.generation)
        snapshot = connector.fetch(
            context, credentials, transactions=bool(payload.get("include_transactions", True)),
            holdings=bool(payload.get("include_holdings", True)))
        clock.lap("fetch")
    except ConnectorError as refused:
        _refused(run, member_guid, refused, name)
        raise JobFailed(refused.status.lower(), refused.message) from None
    run.member_update(member_guid, has_processed_accounts=True,
                      has_processed_transactions=snapshot.transactions is not None)
    progress(2, 4, "Reconciling")
    counters = _apply(run, member, snapshot, name, clock)
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


KINDS = (("accounts", FinAccount, "ACT"), ("transactions", FinTransaction, "TRN"),
         ("holdings", FinHolding, "HOL"))
# the columns each kind writes besides the constant ones (member, user, timestamps)
COLUMNS = {"accounts": ["guid", "id", "content_hash", "data"],
           "transactions": ["guid", "id", "account_guid", "date", "content_hash", "data"],
           "holdings": ["guid", "id", "account_guid", "content_hash", "data"]}


def _apply(run: Run, member: Member, snapshot: Snapshot, name: str, clock: Clock
           ) -> dict[str, Any]:
    """Write the diff in one transaction with the member's new status and the counters.

    Encoding, hashing and the diff happen before it, against a read of the member's data:
    the write lock is held only to write. (Held to diff as well, a worker running at a
    lower priority than the API while 50 clients called it held the lock for 230 ms on
    average, and every job submission waited behind it.) Only this member's aggregation
    writes its data, and there is one at a time, fenced on its job; the generation read
    with the data is checked under the lock all the same, and a changed one is diffed
    again there."""
    counters: dict[str, Any] = {}
    transactions = snapshot.transactions
    if transactions is not None:
        transactions, twins = drop_posted_twins_frame(transactions)
        counters["pending_replaced_by_posted"] = len(twins)
    clock.lap("status")
    incoming = {kind: encode(records) for kind, records in (
        ("accounts", snapshot.accounts), ("transactions", transactions),
        ("holdings", snapshot.holdings)) if records is not None}
    clock.lap("encode")
    with run.db.read() as session:
        generation = _generation(session, member.guid)
        diffs, ignored = _plan(session, member.guid, incoming)
    clock.lap("diff")
    now = utcnow()
    with run.db.write() as session:
        run.fence(session)
        clock.lap("lock")
        if _generation(session, member.guid) != generation:
            diffs, ignored = _plan(session, member.guid, incoming)
        _write(session, member, diffs, now)
        clock.lap("write")
        for kind, d in diffs.items():
            counters[f"{kind}_created"] = d.created.height
            counters[f"{kind}_updated"] = d.updated.height
            counters[f"{kind}_deleted"] = len(d.deleted)
            counters[f"{kind}_unchanged"] = d.unchanged
        counters["ignored"] = ignored + sum(d.duplicates for d in diffs.values())
        counters["rows_written"] = sum(d.writes for d in diffs.values())
        session.execute(delete(Challenge).where(Challenge.member_guid == member.guid))
        _set_member(session, member.guid, connection_status="CONNECTED",
                    connection_status_message=message_for("CONNECTED", name),
                    successfully_aggregated_at=now, challenge_expires_at=None,
                    generation=Member.generation + 1, is_authenticated=True,
                    has_processed_accounts=True,
                    has_processed_transactions=snapshot.transactions is not None)
        run.fence(session, counters=counters)
    clock.lap("commit")
    log.info("member %s aggregated: %s (seconds: %s)", member.guid, counters, clock)
    return counters


def _generation(session: Session, member_guid: str) -> int | None:
    """How many aggregations of the member have committed (None: it is gone)."""
    return session.scalar(select(Member.generation).where(Member.guid == member_guid))


class Clock:
    """Seconds spent in each phase, for the log (where time goes, on a real server)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 4)
        self._last = now

    def __str__(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.laps.items())


def _plan(session: Session, member_guid: str, incoming: dict[str, pl.DataFrame]
          ) -> tuple[dict[str, KindDiff], int]:
    """Each kind's diff against what is stored (created records get their guids, and
    transactions and holdings their account's guid), and how many records were ignored
    for naming an account the snapshot lacks."""
    accounts = diff(incoming["accounts"], repository.stored(session, FinAccount, member_guid))
    accounts.created = accounts.created.with_columns(
        pl.Series("guid", new_guids("ACT", accounts.created.height), dtype=pl.String))
    # (only the snapshot's accounts: records of a deleted one go with it)
    owners = pl.concat([
        incoming["accounts"].select("id").unique().join(
            repository.stored(session, FinAccount, member_guid).select("id", "guid"), on="id"),
        accounts.created.select("id", "guid")]).rename(
        {"id": "account_id", "guid": "account_guid"})
    diffs = {"accounts": accounts}
    ignored = 0
    for kind, model, prefix in KINDS[1:]:
        if kind not in incoming:
            continue
        known = incoming[kind].join(owners, on="account_id", maintain_order="left")
        ignored += incoming[kind].height - known.height
        d = diff(known, repository.stored(session, model, member_guid))
        d.created = d.created.with_columns(
            pl.Series("guid", new_guids(prefix, d.created.height), dtype=pl.String))
        diffs[kind] = d
    return diffs, ignored


def _write(session: Session, member: Member, diffs: dict[str, KindDiff], now: Any) -> None:
    """Beneath the ORM (a first aggregation inserts tens of thousands of rows): deletes
    first, as a removed account takes its records with it; then inserts and updates."""
    conn = session.connection()
    stamp = bulk.timestamp(conn, now)
    for kind, model, _ in reversed(KINDS):
        if kind in diffs:
            bulk.execute_frame(conn, f"DELETE FROM {model.__tablename__} WHERE guid = ?",
                               pl.DataFrame({"guid": diffs[kind].deleted}, schema={
                                   "guid": pl.String}))
    constants = {"member_guid": member.guid, "user_guid": member.user_guid,
                 "created_at": stamp, "updated_at": stamp}
    for kind, model, _ in KINDS:
        if kind not in diffs:
            continue
        d, table, columns = diffs[kind], model.__tablename__, COLUMNS[kind]
        bulk.insert_frame(conn, table, d.created.select(columns), constants=constants)
        changed = [c for c in columns if c not in ("guid", "id")]
        bulk.execute_frame(
            conn, f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in changed)}, "
                  "updated_at = ? WHERE guid = ?",
            d.updated.select(*changed, pl.lit(stamp).alias("updated_at"), "guid"))
