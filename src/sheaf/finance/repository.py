"""Queries of the finance domain. Every lookup of a user is scoped to its client, and of
everything else to its user."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from sheaf.finance.models import (
    Challenge,
    FinAccount,
    FinHolding,
    FinTransaction,
    FinUser,
    Institution,
    Member,
)
from sheaf.jobs.models import IS_ACTIVE, Job

if TYPE_CHECKING:
    import polars as pl

Gathered = TypeVar("Gathered", FinAccount, FinTransaction, FinHolding)


def user(session: Session, client_id: str, user_guid: str) -> FinUser | None:
    found = session.get(FinUser, user_guid)
    return found if found is not None and found.client_id == client_id else None


def user_by_id(session: Session, client_id: str, ident: str) -> FinUser | None:
    """By guid or by the partner's own id (Nexus' SSO paths take either)."""
    found = user(session, client_id, ident)
    if found is not None:
        return found
    return session.execute(
        select(FinUser).where(FinUser.client_id == client_id, FinUser.id == ident)
    ).scalar_one_or_none()


def member(session: Session, user_guid: str, member_guid: str) -> Member | None:
    found = session.get(Member, member_guid)
    return found if found is not None and found.user_guid == user_guid else None


def institution(session: Session, code: str) -> Institution | None:
    return session.get(Institution, code)


# (built once: building the statement cost as much as running it)
_RUNNING = select(Job.id).where(Job.lock_key == bindparam("lock_key"), IS_ACTIVE) \
    .scalar_subquery()
_TARGET_OF_USER = (
    select(FinUser, Member, Institution, _RUNNING)
    .outerjoin(Member, (Member.guid == bindparam("member")) & (Member.user_guid == FinUser.guid))
    .outerjoin(Institution, Institution.code == Member.institution_code)
    .where(FinUser.guid == bindparam("user"), FinUser.client_id == bindparam("client")))
_TARGET = (select(Member, Institution, _RUNNING)
           .outerjoin(Institution, Institution.code == Member.institution_code)
           .where(Member.guid == bindparam("member")))


def aggregation_target(session: Session, client_id: str, user_guid: str | None,
                       member_guid: str, lock_key: str
                       ) -> tuple[FinUser | None, Member | None, Institution | None, str | None]:
    """(user, member, institution, the active job's id) in one statement, for the aggregate
    endpoint that clients call in a loop (four lookups were most of its time). With a
    user: None for the user when it is not the client's, and for the member when it is
    not that user's. Without: the user is None, and the member is any."""
    values = {"member": member_guid, "lock_key": lock_key}
    if user_guid is None:
        row = session.execute(_TARGET, values).one_or_none()
        return (None, *row) if row is not None else (None, None, None, None)
    row = session.execute(_TARGET_OF_USER,
                          {**values, "user": user_guid, "client": client_id}).one_or_none()
    return (*row,) if row is not None else (None, None, None, None)


def challenges(session: Session, member_guid: str) -> list[Challenge]:
    return list(session.execute(
        select(Challenge).where(Challenge.member_guid == member_guid)
        .order_by(Challenge.position)).scalars())


def of_user(session: Session, model: type[Gathered], user_guid: str, guid: str
            ) -> Gathered | None:
    """One gathered record (account, transaction, holding) by guid, if it is the user's."""
    found = session.get(model, guid)
    return found if found is not None and found.user_guid == user_guid else None


def stored(session: Session, model: type[FinAccount | FinTransaction | FinHolding],
           member_guid: str) -> pl.DataFrame:
    """A member's stored records of one kind: institution id, guid, content hash (read
    beneath the ORM: a member may have tens of thousands). Only a job reads these, so
    polars is imported here, not by the API processes that import this module."""
    from sheaf.finance.engine import STORED
    from sheaf.kit import bulk

    return bulk.fetch_frame(
        session.connection(),
        f"SELECT id, guid, content_hash FROM {model.__tablename__} WHERE member_guid = ?",
        [member_guid], STORED)


def page(session: Session, query: Select[Any], page_no: int, per_page: int
         ) -> tuple[list[Any], int]:
    """One page of ``query`` and the total number of rows it matches."""
    total = session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    rows = session.execute(query.limit(per_page).offset((page_no - 1) * per_page)).scalars()
    return list(rows), int(total)
