"""`sheaf demo`: demo sources and an MX Bank member, aggregated, and credentials to try the APIs."""

from __future__ import annotations

import json
from importlib import resources

from sqlalchemy import select

from sheaf.auth import credentials, mx
from sheaf.cli.common import console, print_outcome, runtime, watch
from sheaf.finance import service as finance
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
    """Create demo sources (HR, Badge System) and an MX Bank member, aggregate them, print
    what was made and the credentials to use."""
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
        finance = _finance(rt)
    console.print("\nAn MX Platform API client (HTTP Basic client_id:api_key; shown once), "
                  "its user and its MX Bank member:")
    print(json.dumps(finance))
    console.print("\nA client credential to try the API with (shown once):")
    print(json.dumps({"client_id": client_id, "client_secret": secret}))
    print(json.dumps(made))


def _finance(rt: Runtime) -> dict[str, str]:
    """An MX client, a user and an mxbank member (mxuser / password), aggregated."""
    with rt.db.write() as session:
        client, api_key = mx.create_client(session, "demo-mx-client")
        user = finance.create_user(session, client.client_id, {"email": "demo@example.com"})
        fields = {c["field_name"]: c["guid"] for c in
                  finance.get_institution(session, "mxbank").credentials}
        member = finance.create_member(session, rt, user, {
            "institution_code": "mxbank",
            "credentials": [{"guid": fields["username"], "value": "mxuser"},
                            {"guid": fields["password"], "value": "password"}]})
        made = {"client_id": client.client_id, "api_key": api_key, "user_guid": user.guid,
                "member_guid": member.guid}
    submitted = finance.aggregate(rt, client.client_id, made["member_guid"])
    if submitted.job_id:
        job = watch(rt, submitted.job_id)
        print_outcome(job)
    console.print(f"member [bold]{made['member_guid']}[/] at MX Bank (username mxuser)")
    return made


def _mark_multi(rt: Runtime, source_id: str, filename: str, multi: set[str]) -> None:
    header = resources.files("sheaf.demo").joinpath(filename).read_text().splitlines()[0]
    attributes = [{"name": c, "type": "STRING", "isMulti": c in multi, "isEntitlement": c in multi,
                   "isGroup": False, "description": None} for c in header.split(",")]
    schema = service.schemas(rt, source_id)[0]
    service.put_schema(rt, source_id, schema.id, {
        "name": "account", "native_object_type": "User", "identity_attribute": "id",
        "display_attribute": "name", "attributes": attributes,
    })
