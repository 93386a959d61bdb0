"""`sheaf credentials create NAME [--dialect D] ...`"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from sheaf.cli.common import console, load_settings, migrated, notes

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

app = typer.Typer(no_args_is_help=True, help="API client credentials.")

DEFAULT_AUTHORITY = "ORG_ADMIN"


def _sailpoint(session: Session, name: str, authority: list[str],
               workgroup: list[str]) -> dict[str, Any]:
    from sqlalchemy import select

    from sheaf.auth import credentials as service
    from sheaf.auth.models import Credential

    if not authority:
        notes.print(f"No --authority given: granting {DEFAULT_AUTHORITY}, the tenant "
                    "administrator (every source, account, task and job, and cancelling "
                    "jobs). Give --authority SOURCE_ADMIN, HELPDESK, ... for less.")
    namesakes = list(session.execute(
        select(Credential.client_id).where(Credential.name == name)).scalars())
    try:
        credential, secret = service.create(session, name, authority or [DEFAULT_AUTHORITY],
                                            workgroup)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--authority") from None
    if namesakes:
        # Names are labels, not keys: say so rather than leave two look-alikes unexplained.
        notes.print(f"Note: {len(namesakes)} other credential(s) already named {escape(name)!r} "
                    f"(client id {', '.join(namesakes)}). This is another one, with its own "
                    "client id and secret; the others keep working.")
    return {"name": name, "client_id": credential.client_id, "client_secret": secret,
            "authorities": list(credential.authorities),
            "workgroups": list(credential.workgroups)}


def _mx(session: Session, name: str, authority: list[str],
        workgroup: list[str]) -> dict[str, Any]:
    from sheaf.auth import mx

    client, api_key = mx.create_client(session, name)
    return {"name": name, "client_id": client.client_id, "api_key": api_key}


# dialect -> how its credential is made; one line per dialect
DIALECTS: dict[str, Callable[[Session, str, list[str], list[str]], dict[str, Any]]] = {
    "sailpoint": _sailpoint,
    "mx": _mx,
}


@app.command()
def create(
    name: str = typer.Argument(..., help="A label for the client, e.g. identity-client."),
    dialect: str = typer.Option(
        "sailpoint", "--dialect", "-d",
        help=f"Which API the client speaks: {', '.join(DIALECTS)}. sailpoint: a client id "
             "and secret for /oauth/token; mx: a Platform API client_id and api_key "
             "(HTTP Basic; also the Nexus MD-API-KEY)."),
    authority: list[str] = typer.Option(
        [], "--authority", "-a",
        help=f"Authority granted (repeatable; sailpoint). Without it: {DEFAULT_AUTHORITY}, "
             "which administers every source and reads and cancels every job."),
    workgroup: list[str] = typer.Option(
        [], "--workgroup", "-w",
        help="Governance group id the client belongs to (repeatable; sailpoint): a "
             "SOURCE_SUBADMIN administers the sources whose managementWorkgroup is one of "
             "them."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create a client. The secret is shown once; only its hash is stored."""
    make = DIALECTS.get(dialect)
    if make is None:
        raise typer.BadParameter(f"unknown dialect {dialect!r}; one of {', '.join(DIALECTS)}",
                                 param_hint="--dialect")
    settings = load_settings()
    with migrated(settings) as db, db.write() as session:
        created = make(session, name, authority, workgroup)
    if as_json:
        typer.echo(json.dumps(created))
        return
    width = max(len(k) for k in created) + 1
    for key, value in created.items():
        if key == "name" or (isinstance(value, list) and not value):
            continue
        shown = ", ".join(value) if isinstance(value, list) else value
        console.print(f"{key + ':':<{width}} {escape(str(shown))}")
    console.print("[yellow]Store the secret now: it cannot be shown again.[/]")
