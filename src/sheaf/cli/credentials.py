"""`sheaf credentials create NAME [--dialect sailpoint|energycap] ...`"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer
from sqlalchemy import select

from sheaf.auth import credentials as service
from sheaf.auth import energycap
from sheaf.cli.common import console, runtime
from sheaf.utility.models import Place

app = typer.Typer(no_args_is_help=True, help="API client credentials.")


def _sailpoint(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """A client id and secret for SailPoint's OAuth client_credentials."""
    with runtime() as rt, rt.db.write() as session:
        try:
            credential, secret = service.create(session, name, options["authority"],
                                                options["workgroup"])
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--authority") from None
        return {"name": name, "client_id": credential.client_id, "client_secret": secret,
                "authorities": list(credential.authorities),
                "workgroups": list(credential.workgroups)}


def _energycap(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """An ``ECI-ApiKey`` acting as a user (created if missing)."""
    with runtime() as rt, rt.db.write() as session:
        place_id = None
        if options["place"]:
            place_id = session.execute(select(Place.place_id).where(
                Place.place_code == options["place"])).scalar_one_or_none()
            if place_id is None:
                raise typer.BadParameter(f"no place has the code {options['place']!r}",
                                         param_hint="--place")
        try:
            _, user, api_key = energycap.create_key(session, name, options["user"],
                                                    options["permission"], place_id)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--permission") from None
        return {"name": name, "api_key": api_key,
                "user": {"userId": user.user_id, "userCode": user.user_code,
                         "fullName": user.full_name},
                "permissions": list(user.permissions),
                "topmostPlaceId": user.topmost_place_id}


# dialect -> what it creates (one line each, so dialects merge easily)
DIALECTS: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "sailpoint": _sailpoint,
    "energycap": _energycap,
}


@app.command()
def create(
    name: str = typer.Argument(..., help="A label for the client, e.g. identity-client."),
    dialect: str = typer.Option("sailpoint", "--dialect",
                                help=f"Which API the credential is for: {', '.join(DIALECTS)}."),
    authority: list[str] = typer.Option(["ORG_ADMIN"], "--authority", "-a",
                                        help="sailpoint: authority granted (repeatable)."),
    workgroup: list[str] = typer.Option(
        [], "--workgroup", "-w",
        help="sailpoint: governance group id the client belongs to (repeatable): a "
             "SOURCE_SUBADMIN administers the sources whose managementWorkgroup is one of "
             "them."),
    user: str | None = typer.Option(None, "--user",
                                     help="energycap: the user code the key acts as "
                                          "(created if missing; default: NAME)."),
    permission: list[str] = typer.Option(
        [], "--permission", "-p",
        help="energycap: a permission of a new user, e.g. Chargebacks:Run (repeatable; "
             "none: an administrator with all)."),
    place: str | None = typer.Option(
        None, "--place", help="energycap: the code of a new user's topmost place: the user "
                              "sees only that place's subtree (default: everything)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create a credential. Its secret is shown once; only a hash is stored."""
    if dialect not in DIALECTS:
        raise typer.BadParameter(f"one of {', '.join(DIALECTS)}", param_hint="--dialect")
    made = DIALECTS[dialect](name, {"authority": authority, "workgroup": workgroup,
                                    "user": user, "permission": permission, "place": place})
    if as_json:
        typer.echo(json.dumps(made))
        return
    for key, value in made.items():
        if key != "name" and value:
            shown = ", ".join(value) if isinstance(value, list) else value
            console.print(f"{key + ':':15}{shown}")
    console.print("[yellow]Store the secret now: it cannot be shown again.[/]")
