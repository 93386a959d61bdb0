"""`sheaf credentials create NAME [--dialect sailpoint|mx|energycap] ...`"""

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


def _sailpoint(session: Session, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """A client id and secret for SailPoint's OAuth client_credentials."""
    from sqlalchemy import select

    from sheaf.auth import credentials as service
    from sheaf.auth.models import Credential

    authority = options["authority"]
    if not authority:
        notes.print(f"No --authority given: granting {DEFAULT_AUTHORITY}, the tenant "
                    "administrator (every source, account, task and job, and cancelling "
                    "jobs). Give --authority SOURCE_ADMIN, HELPDESK, ... for less.")
    namesakes = list(session.execute(
        select(Credential.client_id).where(Credential.name == name)).scalars())
    try:
        credential, secret = service.create(session, name, authority or [DEFAULT_AUTHORITY],
                                            options["workgroup"])
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


def _mx(session: Session, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """An MX Platform API client: client_id and api_key (also the Nexus MD-API-KEY)."""
    from sheaf.auth import mx

    client, api_key = mx.create_client(session, name)
    return {"name": name, "client_id": client.client_id, "api_key": api_key}


def _energycap(session: Session, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """An ``ECI-ApiKey`` acting as a user (created if missing)."""
    from sqlalchemy import select

    from sheaf.auth import energycap
    from sheaf.utility.models import Place

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


# dialect -> how its credential is made (one line each, so dialects merge easily)
DIALECTS: dict[str, Callable[[Session, str, dict[str, Any]], dict[str, Any]]] = {
    "sailpoint": _sailpoint,
    "mx": _mx,
    "energycap": _energycap,
}


@app.command()
def create(
    name: str = typer.Argument(..., help="A label for the client, e.g. identity-client."),
    dialect: str = typer.Option(
        "sailpoint", "--dialect", "-d",
        help=f"Which API the client speaks: {', '.join(DIALECTS)}. sailpoint: a client id "
             "and secret for /oauth/token; mx: a Platform API client_id and api_key "
             "(HTTP Basic; also the Nexus MD-API-KEY); energycap: an ECI-ApiKey."),
    authority: list[str] = typer.Option(
        [], "--authority", "-a",
        help=f"sailpoint: authority granted (repeatable). Without it: {DEFAULT_AUTHORITY}, "
             "which administers every source and reads and cancels every job."),
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
    """Create a client credential. Its secret is shown once; only a hash is stored."""
    make = DIALECTS.get(dialect)
    if make is None:
        raise typer.BadParameter(f"unknown dialect {dialect!r}; one of {', '.join(DIALECTS)}",
                                 param_hint="--dialect")
    options = {"authority": authority, "workgroup": workgroup, "user": user,
               "permission": permission, "place": place}
    settings = load_settings()
    with migrated(settings) as db, db.write() as session:
        created = make(session, name, options)
    if as_json:
        typer.echo(json.dumps(created))
        return
    width = max(len(k) for k in created) + 1
    for key, value in created.items():
        if key == "name" or value is None or (isinstance(value, list | dict) and not value):
            continue
        if isinstance(value, dict):
            shown = ", ".join(f"{k} {v}" for k, v in value.items())
        else:
            shown = ", ".join(value) if isinstance(value, list) else str(value)
        console.print(f"{key + ':':<{width}} {escape(shown)}")
    console.print("[yellow]Store the secret now: it cannot be shown again.[/]")
