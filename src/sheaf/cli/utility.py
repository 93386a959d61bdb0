"""`sheaf utility aggregate [--period YYYYMM]`, `sheaf utility import-bills FILE`"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sheaf.cli.common import console, print_outcome, runtime, watch

# (the domain and SQLAlchemy are imported inside each command: `sheaf --help` and the other
# commands must not pay for them)
if TYPE_CHECKING:
    from sheaf.auth.energycap import EnergyCapPrincipal
    from sheaf.runtime import Runtime

app = typer.Typer(no_args_is_help=True, help="Utility bills and calculated-bill aggregation.")

CLI_USER = "sheaf-cli"


def cli_user(rt: Runtime, code: str = CLI_USER) -> EnergyCapPrincipal:
    """The EnergyCAP user the command acts as (an administrator, created if missing)."""
    from sqlalchemy import select

    from sheaf.auth.energycap import PERMISSIONS, EnergyCapPrincipal, EnergyCapUser

    with rt.db.write() as session:
        user = session.execute(select(EnergyCapUser).where(EnergyCapUser.user_code == code)
                               ).scalar_one_or_none()
        if user is None:
            user = EnergyCapUser(user_code=code, full_name=code, permissions=list(PERMISSIONS))
            session.add(user)
            session.flush()
        return EnergyCapPrincipal(user.user_id, user.user_code, user.full_name,
                                  frozenset(user.permissions))


@app.command()
def aggregate(
    period: int | None = typer.Option(None, "--period",
                                      help="Last billing period (YYYYMM); default: this month."),
    periods: int | None = typer.Option(None, "--periods", min=1, max=120,
                                       help="How many periods, ending with --period "
                                            "(default: SHEAF_UTILITY__AGGREGATION_PERIODS)."),
    note: str | None = typer.Option(None, "--note", help="The task's comment."),
    as_json: bool = typer.Option(False, "--json", help="Print the task as JSON."),
) -> None:
    """Run the aggregation processor and show its progress until it ends."""
    from sheaf.errors import SheafError
    from sheaf.utility import schemas, tasks
    from sheaf.utility.errors import FieldErrors

    settings: dict[str, object] = {"billingPeriod": period, "note": note}
    with runtime(start_executor=True) as rt:
        try:
            body = schemas.AggregationSettings.model_validate(settings)
            task_id = tasks.submit(rt, cli_user(rt), body, periods)
        except FieldErrors as exc:
            console.print(f"[red]{exc.message}[/]")
            raise typer.Exit(code=2) from None
        except SheafError as exc:
            console.print(f"[red]{exc.message}[/]")
            raise typer.Exit(code=2) from None
        except ValueError as exc:  # pydantic's
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(code=2) from None
        with rt.db.read() as session:
            job_id = tasks.get(session, task_id).job_id
        assert job_id is not None
        job = watch(rt, job_id)
        with rt.db.read() as session:
            view = tasks.view(session, tasks.get(session, task_id))
    if as_json:
        typer.echo(json.dumps(view))
    else:
        print_outcome(job)
        console.print(f"chargeback task {task_id}: {view['status']}, "
                      f"{view['numberOfBillsCreated']} bills created, "
                      f"{view['numberOfFailedVersions']} failed version-periods, "
                      f"{view['numberOfUnresolvedFlags']} unresolved flags")
    raise typer.Exit(code=0 if view["status"] in ("Completed", "CompletedWithErrors") else 1)


@app.command("import-bills")
def import_bills(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Import meter bills from a CSV (all or nothing; bad lines are named)."""
    from sheaf.utility import bill_import

    with runtime() as rt:
        try:
            result = bill_import.import_bills(rt.db, file.read_bytes(), cli_user(rt).user_id)
        except bill_import.ImportRefused as refused:
            console.print("[red]The file was not imported:[/]")
            for problem in refused.problems:
                console.print(f"  {problem}")
            raise typer.Exit(code=2) from None
    if as_json:
        typer.echo(json.dumps(result.counts()))
        return
    for key, value in result.counts().items():
        console.print(f"{key}: {value}")
