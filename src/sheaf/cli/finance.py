"""`sheaf finance members`, `sheaf finance aggregate MEMBER`, `sheaf finance institutions`."""

from __future__ import annotations

import json

import typer
from rich.table import Table
from sqlalchemy import select

from sheaf.cli.common import console, print_outcome, runtime, watch
from sheaf.errors import SheafError
from sheaf.finance import service
from sheaf.finance.connectors import CONNECTORS
from sheaf.finance.models import Institution, Member
from sheaf.jobs.service import active_holder

app = typer.Typer(no_args_is_help=True, help="Finance: members and their aggregations.")


@app.command("members")
def members(user: str = typer.Option(None, "--user", "-u", help="Only this user's (guid).")
            ) -> None:
    """Members with their connection status."""
    with runtime() as rt, rt.db.read() as session:
        query = select(Member).order_by(Member.guid)
        if user:
            query = query.where(Member.user_guid == user)
        rows = list(session.execute(query).scalars())
        busy = service.being_aggregated(session, [m.guid for m in rows])
    table = Table("member", "user", "institution", "status", "aggregating",
                  "last success")
    for m in rows:
        table.add_row(m.guid, m.user_guid, m.institution_code,
                      service.effective_status(m) or "-", "yes" if m.guid in busy else "no",
                      m.successfully_aggregated_at.isoformat(timespec="seconds")
                      if m.successfully_aggregated_at else "-")
    console.print(table)


@app.command("aggregate")
def aggregate(
    member: str = typer.Argument(..., help="The member's guid (MBR-...)."),
    transactions: bool = typer.Option(True, "--transactions/--no-transactions"),
    holdings: bool = typer.Option(True, "--holdings/--no-holdings"),
) -> None:
    """Aggregate a member and show its progress live."""
    with runtime(start_executor=True) as rt:
        try:
            submitted = service.aggregate(rt, "cli", member, include_transactions=transactions,
                                          include_holdings=holdings)
        except SheafError as exc:
            console.print(f"[red]{exc.message}[/]")
            raise typer.Exit(2) from None
        job_id = submitted.job_id
        if not submitted.started:
            with rt.db.read() as session:
                job_id = active_holder(session, service.lock_key(member))
            if job_id is None:
                console.print("Not started: the last success is inside the minimum interval "
                              "(SHEAF_FINANCE__MIN_INTERVAL_SECONDS).")
                raise typer.Exit(1)
            console.print(f"Already aggregating: following job {job_id}")
        assert job_id is not None
        print_outcome(watch(rt, job_id))
        with rt.db.read() as session:
            found = session.get(Member, member)
            if found is not None:
                console.print(f"member {member}: [bold]{service.effective_status(found)}[/] "
                              f"{found.connection_status_message or ''}")


institutions = typer.Typer(no_args_is_help=True, help="Institutions members connect to.")
app.add_typer(institutions, name="institutions")


@institutions.command("add")
def add_institution(
    code: str = typer.Argument(..., help="The institution code members are created with."),
    name: str = typer.Argument(...),
    connector: str = typer.Option("sandbox", "--connector", "-c",
                                  help=f"One of {', '.join(CONNECTORS)}."),
    config: str = typer.Option("{}", "--config",
                               help="JSON settings: ofx {url, org, fid, bank_id, broker_id, "
                                    "accounts}; sandbox {transactions_per_account, holdings, "
                                    "pending, latency_seconds, change_every}."),
    url: str = typer.Option(None, "--url", help="The institution's web site."),
) -> None:
    """Add an institution (its credentials are a username and a password)."""
    if connector not in CONNECTORS:
        raise typer.BadParameter(f"one of {', '.join(CONNECTORS)}", param_hint="--connector")
    try:
        settings = json.loads(config)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--config") from None
    if not isinstance(settings, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--config")
    with runtime() as rt, rt.db.write() as session:
        if session.get(Institution, code) is not None:
            console.print(f"[red]Institution {code} already exists[/]")
            raise typer.Exit(2)
        made = service.create_institution(session, code, name, connector, settings, url)
        console.print(f"institution [bold]{made.code}[/] {made.guid} ({connector})")


@institutions.command("list")
def list_institutions() -> None:
    """Institutions with their connectors."""
    with runtime() as rt, rt.db.read() as session:
        rows = list(session.execute(select(Institution).order_by(Institution.code)).scalars())
    table = Table("code", "name", "connector", "guid")
    for i in rows:
        table.add_row(i.code, i.name, i.connector, i.guid)
    console.print(table)
