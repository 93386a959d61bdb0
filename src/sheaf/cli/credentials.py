"""`sheaf credentials create NAME [--dialect sailpoint|mx] ...`"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer

from sheaf.auth import credentials as service
from sheaf.auth import mx
from sheaf.cli.common import console, runtime

app = typer.Typer(no_args_is_help=True, help="API client credentials.")


def _sailpoint(name: str, authority: list[str], workgroup: list[str]) -> dict[str, Any]:
    with runtime() as rt, rt.db.write() as session:
        try:
            credential, secret = service.create(session, name, authority, workgroup)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--authority") from None
        return {"name": name, "client_id": credential.client_id, "client_secret": secret,
                "authorities": list(credential.authorities),
                "workgroups": list(credential.workgroups)}


def _mx(name: str, authority: list[str], workgroup: list[str]) -> dict[str, Any]:
    with runtime() as rt, rt.db.write() as session:
        client, api_key = mx.create_client(session, name)
        return {"name": name, "client_id": client.client_id, "api_key": api_key}


# dialect -> (create, labels of the printed fields); one line per dialect
DIALECTS: dict[str, Callable[[str, list[str], list[str]], dict[str, Any]]] = {
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
    authority: list[str] = typer.Option(["ORG_ADMIN"], "--authority", "-a",
                                        help="Authority granted (repeatable; sailpoint)."),
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
    created = make(name, authority, workgroup)
    if as_json:
        typer.echo(json.dumps(created))
        return
    width = max(len(k) for k in created) + 1
    for key, value in created.items():
        if key == "name":
            continue
        shown = ", ".join(value) if isinstance(value, list) else value
        if isinstance(value, list) and not value:
            continue
        console.print(f"{key + ':':<{width}} {shown}")
    console.print("[yellow]Store the secret now: it cannot be shown again.[/]")
