"""`sheaf credentials create NAME --authority ...`"""

from __future__ import annotations

import json

import typer
from rich.markup import escape

from sheaf.cli.common import console, load_settings, migrated, notes

app = typer.Typer(no_args_is_help=True, help="API client credentials.")

DEFAULT_AUTHORITY = "ORG_ADMIN"


@app.command()
def create(
    name: str = typer.Argument(..., help="A label for the client, e.g. identity-client."),
    authority: list[str] = typer.Option(
        [], "--authority", "-a",
        help=f"Authority granted (repeatable). Without it: {DEFAULT_AUTHORITY}, which "
             "administers every source and reads and cancels every job."),
    workgroup: list[str] = typer.Option(
        [], "--workgroup", "-w",
        help="Governance group id the client belongs to (repeatable): a SOURCE_SUBADMIN "
             "administers the sources whose managementWorkgroup is one of them."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create a client id and secret. The secret is shown once; only its hash is stored."""
    from sqlalchemy import select

    from sheaf.auth import credentials as service
    from sheaf.auth.models import Credential

    settings = load_settings()
    if not authority:
        notes.print(f"No --authority given: granting {DEFAULT_AUTHORITY}, the tenant "
                    "administrator (every source, account, task and job, and cancelling "
                    "jobs). Give --authority SOURCE_ADMIN, HELPDESK, ... for less.")
    with migrated(settings) as db, db.write() as session:
        namesakes = list(session.execute(
            select(Credential.client_id).where(Credential.name == name)).scalars())
        try:
            credential, secret = service.create(session, name, authority or
                                                [DEFAULT_AUTHORITY], workgroup)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--authority") from None
        client_id, authorities = credential.client_id, list(credential.authorities)
        groups = list(credential.workgroups)
    if namesakes:
        # Names are labels, not keys: say so rather than leave two look-alikes unexplained.
        notes.print(f"Note: {len(namesakes)} other credential(s) already named {escape(name)!r} "
                    f"(client id {', '.join(namesakes)}). This is another one, with its own "
                    "client id and secret; the others keep working.")
    if as_json:
        typer.echo(json.dumps({"name": name, "client_id": client_id, "client_secret": secret,
                               "authorities": authorities, "workgroups": groups}))
        return
    console.print(f"client_id:     {client_id}\nclient_secret: {secret}\n"
                  f"authorities:   {', '.join(authorities)}\n"
                  + (f"workgroups:    {escape(', '.join(groups))}\n" if groups else "") +
                  "[yellow]Store the secret now: it cannot be shown again.[/]")
