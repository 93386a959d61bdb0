"""Rows -> SailPoint JSON, exact to the vendor's field names, types and enum spellings."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sheaf.identity.models import Account, Identity, Source, SourceSchema
from sheaf.jobs.live import Latest
from sheaf.jobs.models import Job
from sheaf.jobs.states import ACTIVE
from sheaf.kit.base import utcnow

TASK_NAME = "Cloud Account Aggregation"
TASK_DESCRIPTION = "Aggregates from the specified application."
TASK_DEFINITION_TYPE = "CLOUD_ACCOUNT_AGGREGATION"
# SailPoint declares which counters a task reports; the values live in `attributes`.
RETURNS = [
    ("TASK_OUT_ACCOUNT_AGGREGATION_APPLICATIONS", "applications"),
    ("TASK_OUT_ACCOUNT_AGGREGATION_TOTAL", "total"),
    ("TASK_OUT_ACCOUNT_AGGREGATION_OPTIMIZED", "optimizedAggregation"),
    ("TASK_OUT_ACCOUNT_AGGREGATION_IGNORED", "ignored"),
    ("TASK_OUT_UNCHANGED_ACCOUNTS", "optimized"),
    ("TASK_OUT_ACCOUNT_AGGREGATION_CREATED", "created"),
    ("TASK_OUT_ACCOUNT_AGGREGATION_UPDATED", "updated"),
    ("TASK_OUT_ACCOUNT_AGGREGATION_DELETED", "deleted"),
    ("TASK_OUT_ACCOUNT_AGGREGATION_IDENTITIES_CREATED", "identitiesCreated"),
    ("TASK_OUT_ACCOUNT_AGGREGATION_IDENTITIES_CORRELATED", "identitiesCorrelated"),
]
AGGREGATION_STATUS_TTL = timedelta(hours=1)


def _without_none(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    """``body`` less those of ``keys`` that are None. SailPoint's schemas type them as a
    plain string or object, never null, and none is required (its SDK models default them
    to None): where sheaf has no value, leaving the field out is what validates."""
    for key in keys:
        if body.get(key) is None:
            body.pop(key, None)
    return body


def _reference(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored {type, id, name} reference; a name that was never given is left out."""
    return None if value is None else _without_none(dict(value), "name")


@functools.lru_cache(maxsize=4096)  # (a load stamps all its rows alike: pages repeat them)
def ts(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with milliseconds and Z, which every SDK version parses."""
    if value is None:
        return None
    if value.tzinfo is not None:  # (also: equal instants, which the cache takes as one)
        value = value.astimezone(UTC).replace(tzinfo=None)
    # (isoformat: about a third cheaper than strftime, and a page renders 500 of them)
    return value.isoformat(timespec="milliseconds") + "Z"


def completion_status(job: Job, *, load_accounts: bool = False) -> str | None:
    """LoadAccountsTask spells the transient error TEMP_ERROR, TaskStatus TEMPERROR."""
    return {
        "succeeded": "SUCCESS",
        "warning": "WARNING",
        "cancelled": "TERMINATED",
        "failed": ("TEMP_ERROR" if load_accounts else "TEMPERROR")
        if job.error_code == "crashed" else "ERROR",
    }.get(job.status)


# A load's phases (by the message each starts with) and the span of percentComplete each
# covers. Reading and comparing are one columnar call each, with no count inside them, so
# each moves the bar a step; writing moves it by rows written of rows to write. The spans
# follow where a first 1M load spends its time (parse about 15%, write about 80%).
PHASE_SPANS = (("Reading", 0, 10), ("Comparing", 10, 20), ("Applying", 20, 99))


def _percent(job: Job, live: Latest | None = None) -> int:
    if job.finished_at is not None:
        return 100
    current, total, message = live or (job.progress_current, job.progress_total,
                                       job.progress_message or "")
    start, end = next(((s, e) for phase, s, e in PHASE_SPANS if message.startswith(phase)),
                      (0, 100))  # (any other job: its own count)
    if total:
        return max(start, min(end, 99, start + current * (end - start) // total))
    return start


def _attributes(job: Job) -> dict[str, Any]:
    optimize = not job.payload.get("disable_optimization", False)
    return {
        "appId": job.payload.get("source_id"),
        "optimizedAggregation": "enabled" if optimize else "disabled",
        **job.counters,
    }


_LEVEL = {"info": "INFO", "warning": "WARN", "error": "ERROR"}


def load_accounts_task(job: Job) -> dict[str, Any]:
    messages = [
        {"type": _LEVEL.get(m["level"], "INFO"), "error": m["level"] == "error",
         "warning": m["level"] == "warning", "key": m["key"], "localizedText": m["text"]}
        for m in job.messages
    ]
    return {
        "success": job.error_code != "aggregation_in_progress",
        "task": {
            "id": job.id,
            "type": "QUARTZ",
            "name": TASK_NAME,
            "description": TASK_DESCRIPTION,
            "launcher": job.launcher,
            "created": ts(job.created_at),
            "launched": ts(job.started_at or job.created_at),
            "completed": ts(job.finished_at),
            "completionStatus": completion_status(job, load_accounts=True),
            "parentName": None,
            "messages": messages,
            "progress": job.progress_message,
            "attributes": _attributes(job),
            "returns": [{"displayLabel": label, "attributeName": name} for label, name in RETURNS],
        },
    }


def task_status(job: Job, source_name: str | None, live: Latest | None = None
                ) -> dict[str, Any]:
    """``live``: a running job's progress from its side file (see jobs.live), which is
    newer than the row's while the load's write transaction holds SQLite's lock."""
    source_id = job.payload.get("source_id")
    return {
        "id": job.id,
        "type": "QUARTZ",
        "uniqueName": TASK_NAME,
        "description": TASK_DESCRIPTION,
        "parentName": None,
        "launcher": job.launcher,
        "target": {"id": source_id, "type": "APPLICATION",
                   "name": f"{source_name or source_id} [source]"},
        "created": ts(job.created_at),
        "modified": ts(job.updated_at),
        "launched": ts(job.started_at or job.created_at),
        "completed": ts(job.finished_at),
        "completionStatus": completion_status(job),
        "messages": [
            {"type": _LEVEL.get(m["level"], "INFO"),
             "localizedText": {"locale": "en-US", "message": m["text"]},
             "key": m["key"], "parameters": []}
            for m in job.messages
        ],
        "returns": [{"name": label, "attributeName": name} for label, name in RETURNS],
        "attributes": _attributes(job),
        "progress": live.message if live else job.progress_message,
        "percentComplete": _percent(job, live),
        "taskDefinitionSummary": {
            "id": TASK_DEFINITION_TYPE, "uniqueName": TASK_NAME,
            "description": TASK_DESCRIPTION, "parentName": "Cloud Account Aggregation",
            "executor": "sheaf.identity.jobs.load_accounts", "arguments": {},
        },
    }


def aggregation_status(job: Job) -> dict[str, Any] | None:
    """The short-lived in-progress view; None once it has expired (an hour after the end)."""
    if job.finished_at is not None and utcnow() - job.finished_at > AGGREGATION_STATUS_TTL:
        return None
    body: dict[str, Any] = {"start": ts(job.started_at or job.created_at)}
    if job.status in ACTIVE:
        applying = (job.progress_message or "").startswith("Applying")
        body["status"] = "ACCOUNTS_COLLECTED" if applying else "STARTED"
        return body
    body["status"] = {"cancelled": "CANCELLED", "failed": "TERMINATED"}.get(job.status, "COMPLETED")
    c = job.counters
    changed = c.get("created", 0) + c.get("updated", 0) + c.get("deleted", 0)
    identities = c.get("identitiesCreated", 0) + c.get("identitiesCorrelated", 0)
    body.update(totalAccounts=changed, processedAccounts=changed,
                totalAccountsMarkedForDeletion=c.get("deleted", 0),
                deletedAccounts=c.get("deleted", 0),
                totalIdentities=identities, processedIdentities=identities)
    return body


def ref(type_: str, id_: str | None, name: str | None) -> dict[str, Any] | None:
    return None if id_ is None else _without_none({"type": type_, "id": id_, "name": name},
                                                  "name")


def source(row: Source, schemas: list[SourceSchema]) -> dict[str, Any]:
    attributes = dict(row.connector_attributes or {})
    attributes["correlation"] = list(row.correlation or [])
    return _without_none({
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "owner": _reference(row.owner),
        "cluster": None,
        "accountCorrelationConfig": None,
        "accountCorrelationRule": None,
        "managerCorrelationMapping": None,
        "managerCorrelationRule": None,
        "beforeProvisioningRule": None,
        "schemas": [{"type": "CONNECTOR_SCHEMA", "id": s.id, "name": s.name} for s in schemas],
        "passwordPolicies": None,
        "features": [],
        "type": "DelimitedFile",
        "connector": row.connector,
        "connectorClass": "sailpoint.connector.DelimitedFileConnector",
        "connectorAttributes": attributes,
        "deleteThreshold": row.delete_threshold,
        "authoritative": row.authoritative,
        "managementWorkgroup": _reference(row.management_workgroup),
        "healthy": True,
        "status": "SOURCE_STATE_HEALTHY",
        "since": ts(row.created),
        "connectorId": row.connector,
        "connectorName": "Delimited File",
        "connectionType": "file",
        "connectorImplementationId": row.connector,
        "created": ts(row.created),
        "modified": ts(row.modified),
        "credentialProviderEnabled": False,
        "category": None,
    }, "description", "managerCorrelationMapping")


def schema(row: SourceSchema) -> dict[str, Any]:
    # hierarchyAttribute is for group schemas only: an account schema has none.
    return {
        "id": row.id,
        "name": row.name,
        "nativeObjectType": row.native_object_type,
        "identityAttribute": row.identity_attribute,
        "displayAttribute": row.display_attribute,
        "includePermissions": False,
        "features": [],
        "configuration": {},
        "attributes": [
            _without_none(
                {"name": a["name"], "type": a.get("type", "STRING"),
                 "description": a.get("description"), "isMulti": bool(a.get("isMulti")),
                 "isEntitlement": bool(a.get("isEntitlement")),
                 "isGroup": bool(a.get("isGroup"))},
                "description")
            for a in row.attributes
        ],
        "created": ts(row.created),
        "modified": ts(row.modified),
    }


def account(row: Account, source_row: Source | None, identity_name: str | None) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(accounts_text([(row, source_row, identity_name)]))[0]
    return parsed


# as Starlette's JSONResponse renders
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_string = json.encoder.encode_basestring  # (what that encoder writes a str as)


def _stamp(value: datetime | None) -> str:
    return "null" if value is None else f'"{ts(value)}"'


def accounts_text(rows: Iterable[tuple[Account, Source | None, str | None]]) -> str:
    """Accounts (each with its source and its identity's name) as a JSON array.

    Written out, not built as dicts and encoded: a page is 250 of them, and most of each
    is the same for every account or every account of a source. Each account's
    attributes are its stored JSON text itself (parsing and re-encoding them was about a
    third of a page's time). An uncorrelated account has no identityId / identity (left
    out, not null).
    """
    out = []
    per_source: dict[int, tuple[str, str, str]] = {}
    for row, source_row, identity_name in rows:
        source = per_source.get(id(source_row))
        if source is None:
            source = per_source[id(source_row)] = (
                _JSON.encode(source_row.name if source_row else None),
                "true" if source_row and source_row.authoritative else "false",
                _JSON.encode(_reference(source_row.owner) if source_row else None))
        source_name, authoritative, owner = source
        identity = row.identity_id
        linked, identity_id, identity_ref = False, "", ""
        if identity is not None:
            linked, identity_id = True, f',"identityId":{_string(identity)}'
            identity_ref = f',"identity":{_JSON.encode(ref("IDENTITY", identity, identity_name))}'
        out.append("".join((
            '{"id":', _string(row.id), ',"name":', _string(row.name),
            ',"created":', _stamp(row.created), ',"modified":', _stamp(row.modified),
            ',"sourceId":', _string(row.source_id), ',"sourceName":', source_name, identity_id,
            ',"cloudLifecycleState":null,"identityState":null,"connectionType":"file"',
            ',"type":null,"authoritative":', authoritative,
            ',"description":null,"disabled":false,"locked":false,"nativeIdentity":',
            _string(row.native_identity), ',"systemAccount":false,"uncorrelated":',
            "false" if linked else "true",
            ',"uuid":null,"manuallyCorrelated":false,"hasEntitlements":false', identity_ref,
            ',"sourceOwner":', owner, ',"features":null,"origin":"AGGREGATED","attributes":',
            row.attributes, "}")))
    return "[" + ",".join(out) + "]"


def identity(row: Identity) -> dict[str, Any]:
    attributes = json.loads(row.attributes)
    email = attributes.get("email") or attributes.get("mail") or attributes.get("e-mail")
    return {
        "id": row.id,
        "name": row.name,
        "created": ts(row.created),
        "modified": ts(row.modified),
        "alias": row.name,
        "emailAddress": email if isinstance(email, str) else None,
        "processingState": None,
        "identityStatus": "ACTIVE",
        "managerRef": None,
        "isManager": False,
        "lastRefresh": ts(row.modified),
        "attributes": attributes,
        # no lifecycle states here (no identity profiles): left out rather than null
    }
