"""`sheaf credentials create NAME --authority ...`"""

from __future__ import annotations

import json

import typer

from sheaf.auth import credentials as service
from sheaf.cli.common import console, runtime

app = typer.Typer(no_args_is_help=True, help="API client credentials.")


@app.command()
def create(
    name: str = typer.Argument(..., help="A label for the client, e.g. identity-client."),
    authority: list[str] = typer.Option(["ORG_ADMIN"], "--authority", "-a",
                                        help="Authority granted (repeatable)."),
    workgroup: list[str] = typer.Option(
        [], "--workgroup", "-w",
        help="Governance group id the client belongs to (repeatable): a SOURCE_SUBADMIN "
             "administers the sources whose managementWorkgroup is one of them."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create a client id and secret. The secret is shown once; only its hash is stored."""
    with runtime() as rt, rt.db.write() as session:
        try:
            credential, secret = service.create(session, name, authority, workgroup)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--authority") from None
        client_id, authorities = credential.client_id, list(credential.authorities)
        groups = list(credential.workgroups)
    if as_json:
        typer.echo(json.dumps({"name": name, "client_id": client_id, "client_secret": secret,
                               "authorities": authorities, "workgroups": groups}))
        return
    console.print(f"client_id:     {client_id}\nclient_secret: {secret}\n"
                  f"authorities:   {', '.join(authorities)}\n"
                  + (f"workgroups:    {', '.join(groups)}\n" if groups else "") +
                  "[yellow]Store the secret now: it cannot be shown again.[/]")
