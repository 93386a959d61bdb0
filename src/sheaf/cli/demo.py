"""`sheaf demo`: demo sources, their files aggregated, and a credential to try the API."""

from __future__ import annotations

import json
import os
from functools import partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from sheaf.cli.common import (
    INTERRUPTED,
    Detached,
    console,
    finish_here,
    load_settings,
    port_taken,
    print_outcome,
    runtime,
    watch,
)

if TYPE_CHECKING:
    from sheaf.runtime import Runtime

SOURCES = [
    ("HR", "hr.csv", True, "Authoritative HR feed: creates identities.",
     [{"name": "groups", "multi": True}]),
    ("Badge System", "badges.csv", False, "Door badges, correlated to identities by email.", []),
]
CORRELATION = [{"accountAttribute": "email", "identityAttribute": "email"}]
# The demo credential, kept (0600) so that a second `make run` re-prints it rather than
# minting another one.
CREDENTIAL_FILE = "demo-credential.json"
FINANCE_FILE = "demo-mx.json"


def _source(rt: Runtime, name: str, authoritative: bool, description: str) -> tuple[str, bool]:
    from sqlalchemy import select

    from sheaf.identity import service
    from sheaf.identity.models import Source

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


def demo(
    check_port: int | None = typer.Option(
        None, "--check-port", metavar="PORT",
        help="First make sure PORT is free on --host (make run passes the port it will "
             "serve on), so a taken port stops the demo before it does anything."),
    host: str = typer.Option("127.0.0.1", help="The interface --check-port is checked on."),
) -> None:
    """Create demo sources (HR, Badge System) and an MX Bank member, aggregate them, print
    what was made and the credentials to use (the same ones on every run: they are kept in
    the data dir)."""
    if check_port is not None and (problem := port_taken(host, check_port)):
        raise typer.Exit(code=problem)
    from sheaf.identity import service

    settings = load_settings()
    settings.jobs.isolation = "thread"  # two small files: not worth starting a process
    made = []
    with runtime(settings, start_executor=True) as rt:
        for name, filename, authoritative, description, multi in SOURCES:
            source_id, created = _source(rt, name, authoritative, description)
            console.print(f"source [bold]{escape(name)}[/] {source_id} "
                          f"({'created' if created else 'already there'})")
            if created and multi:
                _mark_multi(rt, source_id, filename, {str(m["name"]) for m in multi})
            data = resources.files("sheaf.demo").joinpath(filename)
            with data.open("rb") as stream:
                blob = service.store_file(rt, stream)
            job = service.load_accounts(rt, source_id, blob, disable_optimization=False,
                                        launcher="demo")
            try:
                job = watch(partial(rt.jobs.get, job.id), job.id)
            except Detached:  # (this process runs the demo's jobs)
                print_outcome(finish_here(partial(rt.jobs.get, job.id), job.id))
                raise typer.Exit(code=INTERRUPTED) from None
            print_outcome(job)
            made.append({"source": name, "source_id": source_id, "task_id": job.id,
                         "status": job.status})
        credential, minted = _credential(rt, settings.data_dir / CREDENTIAL_FILE)
        finance, finance_minted = _finance(rt, settings.data_dir / FINANCE_FILE)
    path = settings.data_dir / CREDENTIAL_FILE
    console.print("\nAn MX Platform API client (HTTP Basic client_id:api_key), its user and its "
                  f"MX Bank member (kept in {settings.data_dir / FINANCE_FILE}"
                  + (", made now):" if finance_minted else ", made on the first run):"))
    print(json.dumps(finance))
    if minted:
        console.print(f"\nA client credential to try the API with (kept in {path}, mode 0600):")
    else:
        console.print(f"\nThe demo's client credential, made on the first run (from {path}):")
    print(json.dumps(credential))
    print(json.dumps(made))


def _credential(rt: Runtime, path: Path) -> tuple[dict[str, Any], bool]:
    """The kept demo credential if it still works, else a new one, written 0600."""
    from sheaf.auth import credentials

    if path.exists():
        try:
            kept = json.loads(path.read_text())
            with rt.db.read() as session:
                if credentials.verify(session, kept["client_id"], kept["client_secret"]):
                    return {"client_id": kept["client_id"],
                            "client_secret": kept["client_secret"]}, False
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable or from another database: mint a new one below
    with rt.db.write() as session:
        credential, secret = credentials.create(session, "demo-client", ["ORG_ADMIN"])
        made = {"client_id": credential.client_id, "client_secret": secret}
    path.unlink(missing_ok=True)
    # (created with its mode, never briefly readable by others)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(made) + "\n")
    return made, True


def _finance(rt: Runtime, path: Path) -> tuple[dict[str, Any], bool]:
    """An MX client, a user and an mxbank member (mxuser / password), aggregated; the kept
    ones when they still work."""
    from sheaf.auth import mx
    from sheaf.finance import service as finance

    if path.exists():
        try:
            kept = json.loads(path.read_text())
            if mx.BasicVerifier.verify(rt.db, kept["client_id"], kept["api_key"]):
                return kept, False
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable or from another database: make new ones below
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
        job_id = submitted.job_id
        try:
            job = watch(partial(rt.jobs.get, job_id), job_id)
        except Detached:  # (this process runs the demo's jobs)
            print_outcome(finish_here(partial(rt.jobs.get, job_id), job_id))
            raise typer.Exit(code=INTERRUPTED) from None
        print_outcome(job)
    console.print(f"member [bold]{made['member_guid']}[/] at MX Bank (username mxuser)")
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(made) + "\n")
    return made, True


def _mark_multi(rt: Runtime, source_id: str, filename: str, multi: set[str]) -> None:
    from sheaf.identity import service

    header = resources.files("sheaf.demo").joinpath(filename).read_text().splitlines()[0]
    attributes = [{"name": c, "type": "STRING", "isMulti": c in multi, "isEntitlement": c in multi,
                   "isGroup": False, "description": None} for c in header.split(",")]
    schema = service.schemas(rt, source_id)[0]
    service.put_schema(rt, source_id, schema.id, {
        "name": "account", "native_object_type": "User", "identity_attribute": "id",
        "display_attribute": "name", "attributes": attributes,
    })
