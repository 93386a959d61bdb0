"""Authorities the SailPoint endpoints require, as the vendor's spec lists them, and the
narrower reach of a SOURCE_SUBADMIN.

ORG_ADMIN and SOURCE_ADMIN administer every source. A SOURCE_SUBADMIN administers only
the sources whose ``managementWorkgroup`` is a governance group its credential belongs
to: other sources, their schemas, loads and accounts answer 403, and it lists sources
only with ``for-subadmin=me``, as SailPoint asks.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from sqlalchemy import ColumnElement, true
from starlette.concurrency import run_in_threadpool

from sheaf.auth.deps import require
from sheaf.auth.models import Credential
from sheaf.auth.tokens import Principal
from sheaf.errors import Forbidden
from sheaf.identity.models import Source
from sheaf.runtime import Runtime, get_runtime

SOURCE_ADMINS = ("ORG_ADMIN", "SOURCE_ADMIN", "SOURCE_SUBADMIN")
EVERY_SOURCE = frozenset({"ORG_ADMIN", "SOURCE_ADMIN"})
TASK_READERS = (*SOURCE_ADMINS, "HELPDESK", "CERT_ADMIN", "REPORT_ADMIN", "ROLE_ADMIN",
                "ROLE_SUBADMIN", "DASHBOARD")

source_admin = require(*SOURCE_ADMINS)
task_reader = require(*TASK_READERS)
ORG_WIDE_TASK_READERS = frozenset(TASK_READERS) - {"SOURCE_SUBADMIN"}
task_writer = require("ORG_ADMIN", "SOURCE_ADMIN")
IDENTITY_READERS = ("ORG_ADMIN", "HELPDESK", "SOURCE_ADMIN", "ROLE_ADMIN")
identity_reader = require(*IDENTITY_READERS)


def groups_of(credential: Credential | None, authorities: frozenset[str]
              ) -> frozenset[str] | None:
    """The governance groups whose sources a client administers; None for all."""
    if authorities & EVERY_SOURCE:
        return None
    return frozenset(credential.workgroups or []) if credential else frozenset()


def workgroups(runtime: Runtime, client_id: str, authorities: frozenset[str]
               ) -> frozenset[str] | None:
    if authorities & EVERY_SOURCE:  # (no need to read the credential)
        return None
    with runtime.db.read() as session:
        return groups_of(session.get(Credential, client_id), authorities)


def sources_of(runtime: Runtime, who: Principal) -> frozenset[str] | None:
    """Whose sources a client administers (None: every source's)."""
    return workgroups(runtime, who.client_id, who.authorities)


def tasks_of(runtime: Runtime, who: Principal) -> frozenset[str] | None:
    """Whose tasks a client may read: every source's, unless SOURCE_SUBADMIN is the only
    authority that lets it read tasks (then its groups' sources')."""
    if who.authorities & ORG_WIDE_TASK_READERS:
        return None
    return workgroups(runtime, who.client_id, who.authorities)


# The dependencies are async, with the database read in the thread pool only when there
# is one to make: a sync dependency would cost every request a thread-pool hop of its own.
async def reach(runtime: Runtime = Depends(get_runtime),
                who: Principal = Depends(source_admin)) -> frozenset[str] | None:
    if who.authorities & EVERY_SOURCE:
        return None
    return await run_in_threadpool(sources_of, runtime, who)


async def task_reach(runtime: Runtime = Depends(get_runtime),
                     who: Principal = Depends(task_reader)) -> frozenset[str] | None:
    """``tasks_of`` the caller."""
    if who.authorities & ORG_WIDE_TASK_READERS:
        return None
    return await run_in_threadpool(tasks_of, runtime, who)


def managed_by(groups: frozenset[str] | None) -> ColumnElement[bool]:
    """Sources managed by one of ``groups`` (every source for None)."""
    if groups is None:
        return true()
    return Source.management_workgroup["id"].as_string().in_(sorted(groups))


def _manages(groups: frozenset[str], group: dict[str, Any] | None) -> bool:
    return (group or {}).get("id") in groups


def check_group(group: dict[str, Any] | None, groups: frozenset[str] | None) -> None:
    """A SOURCE_SUBADMIN may only give a source a governance group of its own."""
    if groups is not None and not _manages(groups, group):
        raise Forbidden(
            "A SOURCE_SUBADMIN manages only sources whose managementWorkgroup is one of "
            f"its governance groups ({', '.join(sorted(groups)) or 'none'})."
        )


def require_managed(source: Source, groups: frozenset[str] | None) -> None:
    if groups is not None and not _manages(groups, source.management_workgroup):
        raise Forbidden(
            f"Source {source.id} is not managed by a governance group of this "
            f"SOURCE_SUBADMIN ({', '.join(sorted(groups)) or 'none'})."
        )


def administered_source(request: Request, runtime: Runtime = Depends(get_runtime),
                        groups: frozenset[str] | None = Depends(reach)) -> None:
    """Refuse a SOURCE_SUBADMIN a source (path ``id`` or ``sourceId``) outside its groups.
    A source that does not exist is left to the endpoint's 404."""
    source_id = request.path_params.get("sourceId") or request.path_params.get("id")
    if groups is None or source_id is None:
        return
    with runtime.db.read() as session:
        source = session.get(Source, source_id)
    if source is not None:
        require_managed(source, groups)
