"""Identity rules: sources and their schema, starting aggregations, reading results."""

from __future__ import annotations

from typing import IO, Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from sheaf.errors import BadRequest, Conflict, NotFound, Unprocessable, upload_too_large
from sheaf.identity import repository, snapshots
from sheaf.identity.jobs import LOAD_ACCOUNTS
from sheaf.identity.models import Account, Identity, Source, SourceSchema
from sheaf.jobs.models import Job
from sheaf.jobs.service import IdempotencyKeyReused, LockHeld, active_holder
from sheaf.kit.base import new_id, utcnow
from sheaf.runtime import Runtime

DELIMITED_FILE = "delimited-file"
MAX_KEY_LENGTH = 200  # (job.idempotency_key)
ALREADY_RUNNING = (
    "This aggregation failed because the currently running aggregation must complete "
    "before the next one can start."
)


def lock_key(source_id: str) -> str:
    return f"source:{source_id}"


def create_source(runtime: Runtime, values: dict[str, Any], schema: dict[str, Any]) -> Source:
    now = utcnow()
    source = Source(id=new_id(), created=now, modified=now, **values)
    try:
        with runtime.db.write() as session:
            session.add(source)
            session.flush()
            session.add(SourceSchema(id=new_id(), source_id=source.id, created=now, modified=now,
                                     **schema))
    except IntegrityError:
        raise Conflict(f"A source named '{values['name']}' already exists") from None
    return source


def get_source(runtime: Runtime, source_id: str) -> Source:
    with runtime.db.read() as session:
        source = repository.get_source(session, source_id)
    if source is None:
        raise NotFound(f"Source {source_id} was not found")
    return source


def update_source(runtime: Runtime, source_id: str, values: dict[str, Any]) -> None:
    try:
        with runtime.db.write() as session:
            source = repository.get_source(session, source_id)
            if source is None:
                raise NotFound(f"Source {source_id} was not found")
            for key, value in values.items():
                setattr(source, key, value)
            source.modified = utcnow()
    except IntegrityError:
        raise Conflict(f"A source named '{values['name']}' already exists") from None


def delete_source(runtime: Runtime, source_id: str) -> None:
    with runtime.db.write() as session:
        source = repository.get_source(session, source_id)
        if source is None:
            raise NotFound(f"Source {source_id} was not found")
        if active_holder(session, lock_key(source_id)):
            raise Conflict(f"Source {source_id} is aggregating; delete it once the "
                           "aggregation has ended (or set its task to Error)")
        session.execute(delete(Account).where(Account.source_id == source_id))
        session.delete(source)
    snapshots.drop(runtime.settings.data_dir, source_id)


def schemas(runtime: Runtime, source_id: str) -> list[SourceSchema]:
    get_source(runtime, source_id)
    with runtime.db.read() as session:
        return list(session.execute(
            select(SourceSchema).where(SourceSchema.source_id == source_id)
            .order_by(SourceSchema.created)
        ).scalars())


def put_schema(runtime: Runtime, source_id: str, schema_id: str | None,
               values: dict[str, Any]) -> SourceSchema:
    """Create (schema_id None) or replace a schema; the account schema of a source that
    already holds accounts keeps its account ID attribute (changing it re-keys every account)."""
    with runtime.db.write() as session:
        if repository.get_source(session, source_id) is None:
            raise NotFound(f"Source {source_id} was not found")
        now = utcnow()
        row: SourceSchema | None
        if schema_id is None:
            row = SourceSchema(id=new_id(), source_id=source_id, created=now, **values)
            session.add(row)
        else:
            row = session.get(SourceSchema, schema_id)
            if row is None or row.source_id != source_id:
                raise NotFound(f"Schema {schema_id} was not found on source {source_id}")
            if row.name == "account" and values["name"] != "account":
                # Loads read the schema named "account"; SailPoint does not let a flat-file
                # source's schema be reshaped this way either.
                raise BadRequest(f"The account schema's name cannot change (loads use the "
                                 f"schema named 'account'); got '{values['name']}'")
            if (row.name == "account"
                    and values["identity_attribute"] != row.identity_attribute
                    and repository.account_count(session, source_id)):
                raise BadRequest(
                    "The account ID attribute cannot change while the source has accounts; "
                    "delete its accounts (or the source) first"
                )
            for key, value in values.items():
                setattr(row, key, value)
        row.modified = now
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(f"Source {source_id} already has a schema named "
                           f"'{values.get('name')}'") from None
        return row


def loadable_source(runtime: Runtime, source_id: str) -> Source:
    """The source, if it takes a file upload (checked before the upload is received)."""
    source = get_source(runtime, source_id)
    if source.connector != DELIMITED_FILE:
        raise BadRequest(f"Source {source_id} is a '{source.connector}' source; only "
                         f"{DELIMITED_FILE} sources take a file upload")
    return source


def file_delimiter(source: Source) -> str:
    """The field delimiter of a delimited-file source's uploads."""
    return str((source.connector_attributes or {}).get("delimiter", ","))


def store_file(runtime: Runtime, stream: IO[bytes]) -> str:
    """Keep an uploaded file in the blob store; returns its key."""
    limit = runtime.settings.identity.max_upload_bytes
    try:
        blob, _size = runtime.blobs.put_stream(stream, limit)
    except OverflowError:
        raise upload_too_large(limit) from None
    return blob


def load_accounts(
    runtime: Runtime, source_id: str, blob: str | None, *, disable_optimization: bool,
    launcher: str, idempotency_key: str | None = None, endpoint: str = "",
    file_digest: str | None = None,
) -> Job:
    """Queue an aggregation of a stored file. A source that is already aggregating gets a
    task that ends in error, as SailPoint does. The blob belongs to the job from here on.

    ``idempotency_key`` is the launcher's own: repeated with the same source, endpoint,
    options and file (``file_digest``) it answers the first task; with another request
    it is refused (422), rather than answering the first task and dropping the new file."""
    try:
        loadable_source(runtime, source_id)
        if blob is None:
            raise BadRequest("A delimited-file source needs the accounts file in the 'file' part")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_KEY_LENGTH:
            raise BadRequest(f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} "
                             "characters long")
    except Exception:
        if blob is not None:
            runtime.blobs.delete(blob)
        raise
    payload = {"source_id": source_id, "blob": blob,
               "disable_optimization": disable_optimization}
    try:
        job = runtime.jobs.submit(
            LOAD_ACCOUNTS, payload, lock_key=lock_key(source_id),
            idempotency_key=idempotency_key, idempotency_client=launcher,
            request={"endpoint": endpoint, "disable_optimization": disable_optimization,
                     **({"file_sha256": file_digest} if file_digest else {})},
            subject_id=source_id, launcher=launcher,
        )
    except IdempotencyKeyReused as exc:
        runtime.blobs.delete(blob)
        raise Unprocessable(str(exc)) from None
    except LockHeld:
        runtime.blobs.delete(blob)
        return runtime.jobs.refuse(
            LOAD_ACCOUNTS, {**payload, "blob": None}, code="aggregation_in_progress",
            message=ALREADY_RUNNING, subject_id=source_id, launcher=launcher,
        )
    if job.payload.get("blob") != blob:  # an earlier request with the same idempotency key
        runtime.blobs.delete(blob)
    return job


def get_account(runtime: Runtime, account_id: str) -> tuple[Account, Source]:
    with runtime.db.read() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound(f"Account {account_id} was not found")
        return account, session.get(Source, account.source_id)  # type: ignore[return-value]


def get_identity(runtime: Runtime, identity_id: str) -> Identity:
    with runtime.db.read() as session:
        identity = session.get(Identity, identity_id)
    if identity is None:
        raise NotFound(f"Identity {identity_id} was not found")
    return identity


def resolve_source(runtime: Runtime, id_or_name: str) -> str:
    """A source id, given its id or its name (for people at a terminal)."""
    with runtime.db.read() as session:
        found = session.execute(
            select(Source.id).where((Source.id == id_or_name) | (Source.name == id_or_name))
        ).scalars().first()
    if found is None:
        raise NotFound(f"No source has the id or name '{id_or_name}'")
    return found
