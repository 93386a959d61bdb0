"""`sheaf demo`: demo sources, their files aggregated, and a credential to try the API."""

from __future__ import annotations

import json
from importlib import resources

from sqlalchemy import select

from sheaf.auth import credentials
from sheaf.cli.common import console, print_outcome, runtime, watch
from sheaf.identity import service
from sheaf.identity.models import Source
from sheaf.runtime import Runtime

SOURCES = [
    ("HR", "hr.csv", True, "Authoritative HR feed: creates identities.",
     [{"name": "groups", "multi": True}]),
    ("Badge System", "badges.csv", False, "Door badges, correlated to identities by email.", []),
]
CORRELATION = [{"accountAttribute": "email", "identityAttribute": "email"}]


def _source(rt: Runtime, name: str, authoritative: bool, description: str) -> tuple[str, bool]:
    with rt.db.read() as session:
        existing = session.execute(select(Source.id).where(Source.name == name)).scalar()
    if existing:
        return existing, False
    source = service.create_source(
        rt,
        {"name": name, "description": description, "connector": service.DELIMITED_FILE,
         "connector_attributes": {"delimiter": ","}, "delete_threshold": 20,
         "authoritative": authoritative, "correlation": CORRELATION, "owner": None},
        {"name": "account", "native_object_type": "User", "identity_attribute": "id",
         "display_attribute": "name", "attributes": []},
    )
    return source.id, True


def demo() -> None:
    """Create demo sources (HR, Badge System), aggregate their files, print what was made."""
    made = []
    with runtime(start_executor=True) as rt:
        for name, filename, authoritative, description, multi in SOURCES:
            source_id, created = _source(rt, name, authoritative, description)
            console.print(f"source [bold]{name}[/] {source_id} "
                          f"({'created' if created else 'already there'})")
            if created and multi:
                _mark_multi(rt, source_id, filename, {str(m["name"]) for m in multi})
            data = resources.files("sheaf.demo").joinpath(filename)
            with data.open("rb") as stream:
                blob = service.store_file(rt, stream)
            job = service.load_accounts(rt, source_id, blob, disable_optimization=False,
                                        launcher="demo")
            job = watch(rt, job.id)
            print_outcome(job)
            made.append({"source": name, "source_id": source_id, "task_id": job.id,
                         "status": job.status})
        with rt.db.write() as session:
            credential, secret = credentials.create(session, "demo-client", ["ORG_ADMIN"])
            client_id = credential.client_id
    console.print("\nA client credential to try the API with (shown once):")
    print(json.dumps({"client_id": client_id, "client_secret": secret}))
    print(json.dumps(made))


def _mark_multi(rt: Runtime, source_id: str, filename: str, multi: set[str]) -> None:
    header = resources.files("sheaf.demo").joinpath(filename).read_text().splitlines()[0]
    attributes = [{"name": c, "type": "STRING", "isMulti": c in multi, "isEntitlement": c in multi,
                   "isGroup": False, "description": None} for c in header.split(",")]
    schema = service.schemas(rt, source_id)[0]
    service.put_schema(rt, source_id, schema.id, {
        "name": "account", "native_object_type": "User", "identity_attribute": "id",
        "display_attribute": "name", "attributes": attributes,
    })
