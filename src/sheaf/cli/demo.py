"""`sheaf demo`: demo sources, their files aggregated, a utility campus and its
aggregation, and credentials to try the APIs."""

from __future__ import annotations

import json
from importlib import resources

from sqlalchemy import select

from sheaf.auth import credentials, energycap
from sheaf.cli.common import console, print_outcome, runtime, watch
from sheaf.cli.utility import cli_user
from sheaf.identity import service
from sheaf.identity.models import Source
from sheaf.runtime import Runtime
from sheaf.utility import demo as utility_demo
from sheaf.utility import periods, schemas, tasks

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
        api_key = _utility_campus(rt)
        with rt.db.write() as session:
            credential, secret = credentials.create(session, "demo-client", ["ORG_ADMIN"])
            client_id = credential.client_id
    console.print("\nAn EnergyCAP API key (ECI-ApiKey header) for the utility API (shown once):")
    print(json.dumps({"api_key": api_key}))
    console.print("\nA client credential to try the API with (shown once):")
    print(json.dumps({"client_id": client_id, "client_secret": secret}))
    print(json.dumps(made))


def _utility_campus(rt: Runtime) -> str:
    """The utility demo: a campus with a year of bills and two aggregate meters, one
    aggregation over the year; returns an administrator's API key."""
    last = periods.add_months(tasks.current_period(), -1)
    created = utility_demo.build(rt, cli_user(rt), last)
    console.print(f"utility campus ({'created' if created else 'already there'}): "
                  f"{', '.join(b[0] for b in utility_demo.BUILDINGS)}")
    body = schemas.AggregationSettings.model_validate({"billingPeriod": last,
                                                      "note": "demo aggregation"})
    task_id = tasks.submit(rt, cli_user(rt), body, 12)
    with rt.db.read() as session:
        job_id = tasks.get(session, task_id).job_id
    if job_id is not None:
        print_outcome(watch(rt, job_id))
    with rt.db.read() as session:
        view = tasks.view(session, tasks.get(session, task_id))
    console.print(f"chargeback task {task_id}: {view['status']}, "
                  f"{view['numberOfBillsCreated']} aggregate bills created")
    with rt.db.write() as session:
        _, _, api_key = energycap.create_key(session, "demo-energycap", "demo", [])
    return api_key


def _mark_multi(rt: Runtime, source_id: str, filename: str, multi: set[str]) -> None:
    header = resources.files("sheaf.demo").joinpath(filename).read_text().splitlines()[0]
    attributes = [{"name": c, "type": "STRING", "isMulti": c in multi, "isEntitlement": c in multi,
                   "isGroup": False, "description": None} for c in header.split(",")]
    schema = service.schemas(rt, source_id)[0]
    service.put_schema(rt, source_id, schema.id, {
        "name": "account", "native_object_type": "User", "identity_attribute": "id",
        "display_attribute": "name", "attributes": attributes,
    })
