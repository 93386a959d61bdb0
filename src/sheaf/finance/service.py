"""The rules of the finance domain: users, members, when an aggregation starts.

Functions taking a Session never commit; the caller's unit of work does. Submitting a job
commits on its own (the job core's), so those take the Runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sheaf.errors import BadRequest, Conflict, Forbidden, NotFound, SheafError
from sheaf.finance import repository, vault
from sheaf.finance.connectors import NO_CREDENTIALS
from sheaf.finance.errors import MethodNotAllowed, Unprocessable
from sheaf.finance.ids import new_guid
from sheaf.finance.jobs import AGGREGATE
from sheaf.finance.models import Challenge, FinUser, Institution, Member
from sheaf.finance.statuses import message_for
from sheaf.jobs.service import LockHeld
from sheaf.kit.base import utcnow
from sheaf.runtime import Runtime

USE_CASES = frozenset({"PFM", "MONEY_MOVEMENT"})


def lock_key(member_guid: str) -> str:
    return f"member:{member_guid}"


def effective_status(member: Member, now: datetime | None = None) -> str | None:
    """A challenge left unanswered past its deadline reads as EXPIRED at once (and is
    written so at the member's next aggregate or resume)."""
    if (member.connection_status == "CHALLENGED" and member.challenge_expires_at is not None
            and member.challenge_expires_at <= (now or utcnow())):
        return "EXPIRED"
    return member.connection_status


# -- users ---------------------------------------------------------------------------------

def create_user(session: Session, client_id: str, fields: dict[str, Any]) -> FinUser:
    ident = fields.get("id")
    if ident is not None and repository.user_by_id(session, client_id, ident) is not None:
        raise Conflict(f"A user with id {ident!r} already exists")
    user = FinUser(guid=new_guid("USR"), client_id=client_id, id=ident,
                   email=fields.get("email"), is_disabled=bool(fields.get("is_disabled")),
                   metadata_=fields.get("metadata"), created_at=utcnow())
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"A user with id {ident!r} already exists") from None
    return user


def get_user(session: Session, client_id: str, user_guid: str) -> FinUser:
    user = repository.user(session, client_id, user_guid)
    if user is None:
        raise NotFound(f"User {user_guid} was not found")
    return user


def update_user(session: Session, user: FinUser, fields: dict[str, Any]) -> FinUser:
    if "id" in fields and fields["id"] != user.id and fields["id"] is not None \
            and repository.user_by_id(session, user.client_id, fields["id"]) is not None:
        raise Conflict(f"A user with id {fields['id']!r} already exists")
    for key in ("id", "email", "is_disabled"):
        if key in fields:
            setattr(user, key, fields[key] if key != "is_disabled" else bool(fields[key]))
    if "metadata" in fields:
        user.metadata_ = fields["metadata"]
    session.flush()
    return user


# -- institutions --------------------------------------------------------------------------

def get_institution(session: Session, code: str) -> Institution:
    institution = repository.institution(session, code)
    if institution is None:
        raise NotFound(f"Institution {code} was not found")
    return institution


def create_institution(session: Session, code: str, name: str, connector: str,
                       config: dict[str, Any] | None = None, url: str | None = None
                       ) -> Institution:
    """An institution and its two credential fields (username and password)."""
    institution = Institution(
        code=code, guid=new_guid("INS"), name=name, connector=connector, config=config or {},
        url=url, created_at=utcnow(), credentials=[
            {"guid": new_guid("CRD"), "field_name": "username", "label": "Username",
             "type": "LOGIN", "field_type": "TEXT", "display_order": 0},
            {"guid": new_guid("CRD"), "field_name": "password", "label": "Password",
             "type": "PASSWORD", "field_type": "PASSWORD", "display_order": 1}])
    session.add(institution)
    session.flush()
    return institution


# -- members -------------------------------------------------------------------------------

def get_member(session: Session, user: FinUser, member_guid: str) -> Member:
    member = repository.member(session, user.guid, member_guid)
    if member is None:
        raise NotFound(f"Member {member_guid} was not found for user {user.guid}")
    return member


def _credential_values(institution: Institution, given: Any) -> dict[str, str]:
    """{field_name: value} from [{"guid", "value"}]; unknown guids are refused."""
    if not isinstance(given, list):
        raise BadRequest("credentials must be a list of {guid, value} objects")
    fields = {c["guid"]: c["field_name"] for c in institution.credentials}
    values: dict[str, str] = {}
    for item in given:
        if not isinstance(item, dict) or not isinstance(item.get("guid"), str) \
                or not isinstance(item.get("value"), str):
            raise BadRequest("each credential must be an object with string guid and value")
        if item["guid"] not in fields:
            raise Unprocessable(
                f"Credential {item['guid']} is not one of institution {institution.code}'s "
                f"({', '.join(fields)}); list them at /institutions/{institution.code}"
                "/credentials")
        values[fields[item["guid"]]] = item["value"]
    return values


_STRINGS = ("id", "metadata", "institution_code")
_BOOLEANS = ("skip_aggregation", "background_aggregation_is_disabled", "is_oauth")


def _check_types(fields: dict[str, Any]) -> None:
    for key in _STRINGS:
        if fields.get(key) is not None and not isinstance(fields[key], str):
            raise BadRequest(f"member.{key} must be a string")
    for key in _BOOLEANS:
        if fields.get(key) is not None and not isinstance(fields[key], bool):
            raise BadRequest(f"member.{key} must be true or false")


def _use_cases(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v in USE_CASES
                                              for v in value):
        raise BadRequest(f"use_cases must be a list of {', '.join(sorted(USE_CASES))}")
    return list(value)


def create_member(session: Session, runtime: Runtime, user: FinUser,
                  fields: dict[str, Any]) -> Member:
    _check_types(fields)
    code = fields.get("institution_code")
    if not isinstance(code, str) or not code:
        raise BadRequest("member.institution_code is required")
    institution = repository.institution(session, code)
    if institution is None:
        raise Unprocessable(f"Institution {code} was not found; list them at /institutions")
    manual = institution.connector in NO_CREDENTIALS
    values = _credential_values(institution, fields.get("credentials") or []) if manual \
        else _credential_values(institution, fields.get("credentials"))
    missing = [c["field_name"] for c in institution.credentials
               if c["field_name"] not in values]
    if missing:
        raise BadRequest(f"member.credentials lacks {', '.join(missing)}")
    ident = fields.get("id")
    if ident is not None and session.execute(
            select(Member.guid).where(Member.user_guid == user.guid, Member.id == ident)
    ).first() is not None:
        raise Conflict(f"A member with id {ident!r} already exists for this user")
    now = utcnow()
    member = Member(
        guid=new_guid("MBR"), user_guid=user.guid, institution_code=code, id=ident,
        name=institution.name, metadata_=fields.get("metadata"),
        credentials=None if manual else vault.seal(runtime.settings.data_dir, values),
        use_cases=_use_cases(fields.get("use_cases")),
        background_aggregation_is_disabled=bool(fields.get("background_aggregation_is_disabled")),
        is_oauth=bool(fields.get("is_oauth")), is_manual=manual,
        connection_status="CREATED",
        connection_status_message=message_for("CREATED", institution.name),
        generation=0, revision=1, created_at=now, updated_at=now)
    session.add(member)
    session.flush()
    return member


def update_member(session: Session, runtime: Runtime, member: Member,
                  fields: dict[str, Any]) -> bool:
    """Apply an update; True when new credentials call for an aggregation."""
    _check_types(fields)
    institution = get_institution(session, member.institution_code)
    renewed = False
    if "credentials" in fields and fields["credentials"] is not None:
        values = _credential_values(institution, fields["credentials"])
        current = vault.unseal(runtime.settings.data_dir, member.credentials) \
            if member.credentials else {}
        member.credentials = vault.seal(runtime.settings.data_dir, {**current, **values})
        member.connection_status = "UPDATED"
        member.connection_status_message = message_for("UPDATED", institution.name)
        renewed = True
    if "use_cases" in fields:
        member.use_cases = _use_cases(fields["use_cases"])
    for key in ("id", "background_aggregation_is_disabled"):
        if key in fields and fields[key] is not None:
            setattr(member, key, fields[key])
    if "metadata" in fields:
        member.metadata_ = fields["metadata"]
    member.revision += 1
    member.updated_at = utcnow()
    session.flush()
    return renewed


def delete_member(runtime: Runtime, client_id: str, user_guid: str, member_guid: str) -> None:
    with runtime.db.write() as session:
        member = get_member(session, get_user(session, client_id, user_guid), member_guid)
        session.delete(member)
    _cancel_active(runtime, member_guid)


def _cancel_active(runtime: Runtime, member_guid: str) -> None:
    from sheaf.jobs.service import active_holder

    with runtime.db.read() as session:
        job_id = active_holder(session, lock_key(member_guid))
    if job_id is not None:
        runtime.jobs.cancel(job_id)


# -- aggregation ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Submitted:
    started: bool  # False: one was queued or running, or inside the minimum interval
    job_id: str | None  # the job started, or the one queued or running
    busy: bool = False  # whether the member is being aggregated now (True if started)
    # the member, its institution and (given user_guid) user as read to decide, for the
    # caller's answer
    member: Member | None = None
    institution: Institution | None = None
    user: FinUser | None = None


def being_aggregated(session: Session, member_guids: list[str]) -> dict[str, str]:
    """Members with an aggregation queued or running, and its job id (from the job rows:
    the truth)."""
    from sheaf.jobs.models import IS_ACTIVE, Job

    if not member_guids:
        return {}
    keys = {lock_key(g): g for g in member_guids}
    rows = session.execute(select(Job.lock_key, Job.id).where(
        Job.lock_key.in_(list(keys)), IS_ACTIVE))
    return {keys[k]: job_id for k, job_id in rows if k in keys}


def being_aggregated_now(runtime: Runtime, member_guid: str) -> bool:
    with runtime.db.read() as session:
        return bool(being_aggregated(session, [member_guid]))


def aggregate(runtime: Runtime, client_id: str, member_guid: str, *,
              include_transactions: bool = True, include_holdings: bool = True,
              resume: bool = False, pfm_required: bool = True,
              blob: str | None = None, user_guid: str | None = None) -> Submitted:
    """Start an aggregation unless one is running or the last success is too recent.

    With ``user_guid``, the member must be that user's and the user the client's (checked
    in the same read). A statement-file member aggregates an uploaded file (``blob``,
    which belongs to the job from here on, or is deleted when no job starts)."""
    try:
        return _aggregate(runtime, client_id, member_guid, blob=blob, resume=resume,
                          pfm_required=pfm_required, include_holdings=include_holdings,
                          include_transactions=include_transactions, user_guid=user_guid)
    except BaseException:
        if blob:
            runtime.blobs.delete(blob)
        raise


def _aggregate(runtime: Runtime, client_id: str, member_guid: str, *,
               include_transactions: bool, include_holdings: bool, resume: bool,
               pfm_required: bool, blob: str | None, user_guid: str | None) -> Submitted:
    # (one read: "already running" must not queue behind an aggregation's write on SQLite,
    # and the answer is made from what it read: the endpoint is called in a loop)
    with runtime.db.read() as session:
        user, member, institution, running = repository.aggregation_target(
            session, client_id, user_guid, member_guid, lock_key(member_guid))
        if user_guid is not None and user is None:
            raise NotFound(f"User {user_guid} was not found")
        if member is None:
            raise NotFound(f"Member {member_guid} was not found"
                           + (f" for user {user_guid}" if user_guid is not None else ""))
        if institution is None:
            raise NotFound(f"Institution {member.institution_code} was not found")
        _check_aggregable(member, institution, pfm_required=pfm_required, blob=blob)
        if member.connection_status == "CHALLENGED" and effective_status(member) == "EXPIRED":
            _expire(runtime, member_guid, institution.name)
    done = _settled(runtime, user, member, institution, running, resume=resume)
    if done is not None:
        if blob:
            runtime.blobs.delete(blob)
        return done
    payload: dict[str, Any] = {
        "member_guid": member_guid, "include_transactions": include_transactions,
        "include_holdings": include_holdings, "resume": resume}
    if blob:
        payload["blob"] = blob
    try:
        job = runtime.jobs.submit(AGGREGATE, payload, lock_key=lock_key(member_guid),
                                  subject_id=member_guid, launcher=client_id, total=4)
    except LockHeld as held:
        if blob:
            runtime.blobs.delete(blob)
        return Submitted(False, held.holder_id, True, member, institution, user)
    # (member.job_id is written by the job as it starts: no second write here, and
    # until then readers take the queued job's id from the job rows)
    return Submitted(True, job.id, True, member, institution, user)


def settled(runtime: Runtime, client_id: str, user_guid: str, member_guid: str
            ) -> Submitted | None:
    """The aggregate endpoint's answer when one read decides it: an aggregation is queued
    or running, or the last success is too recent. None for everything else (an error to
    give, an expired challenge to write down, a job to start), which ``aggregate``
    decides. One statement without a transaction around it (``Database.one``): the fast
    path calls it on the event loop."""
    with runtime.db.one() as conn, Session(bind=conn) as session:
        user, member, institution, running = repository.aggregation_target(
            session, client_id, user_guid, member_guid, lock_key(member_guid))
    if user is None or member is None or institution is None:
        return None
    try:
        _check_aggregable(member, institution, pfm_required=True, blob=None)
    except SheafError:
        return None
    if effective_status(member) == "EXPIRED":
        return None
    return _settled(runtime, user, member, institution, running, resume=False)


def _check_aggregable(member: Member, institution: Institution, *, pfm_required: bool,
                      blob: str | None) -> None:
    if pfm_required and member.use_cases is not None and "PFM" not in member.use_cases:
        raise Forbidden(f"Member {member.guid}'s use_cases do not include PFM, which "
                        "aggregation needs")
    if institution.connector in NO_CREDENTIALS and blob is None:
        raise BadRequest(f"Member {member.guid} aggregates uploaded statement files: POST "
                         "one to .../statement_file")


def _settled(runtime: Runtime, user: FinUser | None, member: Member, institution: Institution,
             running: str | None, *, resume: bool) -> Submitted | None:
    """The answer that starts no job, if it is one: an aggregation is queued or running
    (``running``: its job id), or the last success is inside the minimum interval."""
    if running is not None:
        return Submitted(False, running, True, member, institution, user)
    interval = runtime.settings.finance.min_interval_seconds
    last = member.successfully_aggregated_at
    # (off for sandbox institutions, as on MX Bank, unless their config asks for it)
    throttled = bool((institution.config or {}).get(
        "throttled", institution.connector not in {"sandbox", *NO_CREDENTIALS}))
    if (not resume and throttled and last is not None
            and utcnow() - last < timedelta(seconds=interval)):
        return Submitted(False, member.job_id, False, member, institution, user)
    return None


def _expire(runtime: Runtime, member_guid: str, institution: str) -> None:
    """Write down that a challenge went unanswered past its deadline."""
    with runtime.db.write() as session:
        session.execute(update(Member).where(Member.guid == member_guid,
                                             Member.connection_status == "CHALLENGED")
                        .values(connection_status="EXPIRED",
                                connection_status_message=message_for("EXPIRED", institution),
                                updated_at=utcnow()))


def resume(runtime: Runtime, client_id: str, user: FinUser, member_guid: str,
           answers: Any) -> Submitted:
    """Record the answers to a member's challenges and aggregate with them."""
    if not isinstance(answers, list) or not answers:
        raise BadRequest("member.challenges must be a non-empty list of {guid, value}")
    with runtime.db.read() as session:
        member = get_member(session, user, member_guid)
        if member.connection_status == "CHALLENGED" and effective_status(member) == "EXPIRED":
            # (its own transaction: the 405 below must not roll it back)
            _expire(runtime, member_guid,
                    get_institution(session, member.institution_code).name)
    with runtime.db.write() as session:
        member = get_member(session, user, member_guid)
        institution = get_institution(session, member.institution_code)
        status = effective_status(member)
        if status != "CHALLENGED" or being_aggregated(session, [member_guid]):
            raise MethodNotAllowed(
                f"Member {member_guid} is {status}, not CHALLENGED: there is nothing to "
                "resume. Aggregate it to start again.")
        asked = {c.guid: c for c in repository.challenges(session, member_guid)}
        for item in answers:
            if not isinstance(item, dict) or not isinstance(item.get("guid"), str) \
                    or not isinstance(item.get("value"), str):
                raise BadRequest("each challenge answer needs string guid and value")
            challenge = asked.get(item["guid"])
            if challenge is None:
                raise BadRequest(f"Challenge {item['guid']} is not one of this member's "
                                 f"({', '.join(asked)})")
            challenge.answer = vault.seal(runtime.settings.data_dir, _answer(challenge,
                                                                              item["value"]))
        unanswered = [g for g, c in asked.items() if c.answer is None]
        if unanswered:
            raise BadRequest(f"Challenges {', '.join(unanswered)} have no answer")
        member.connection_status = "RESUMED"
        member.connection_status_message = message_for("RESUMED", institution.name)
        member.challenge_expires_at = None
    return aggregate(runtime, client_id, member_guid, resume=True, pfm_required=False)


def _answer(challenge: Challenge, value: str) -> str:
    """An OPTIONS / IMAGE_OPTIONS answer may name an option by its guid or its value."""
    for option in [*challenge.options, *challenge.image_options]:
        if value == option.get("guid"):
            return str(option.get("value"))
    return value


def clear_challenges(session: Session, member_guid: str) -> None:
    session.execute(delete(Challenge).where(Challenge.member_guid == member_guid))
