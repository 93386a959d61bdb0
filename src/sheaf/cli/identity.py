"""`sheaf identity load-accounts SOURCE FILE`"""

from __future__ import annotations

from pathlib import Path

import typer

from sheaf.cli.common import console, print_outcome, runtime, watch
from sheaf.errors import SheafError
from sheaf.identity import service

app = typer.Typer(no_args_is_help=True, help="Identity sources and aggregations.")


@app.command("load-accounts")
def load_accounts(
    source: str = typer.Argument(..., help="Source id or name."),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    disable_optimization: bool = typer.Option(False, help="Reprocess unchanged accounts."),
) -> None:
    """Submit a CSV snapshot for aggregation and watch it until it ends."""
    with runtime(start_executor=True) as rt:
        try:
            source_id = service.resolve_source(rt, source)
            with file.open("rb") as stream:
                job = service.load_accounts(rt, source_id, service.store_file(rt, stream),
                                            disable_optimization=disable_optimization,
                                            launcher="cli")
        except SheafError as exc:
            console.print(f"[red]{exc.message}[/]")
            raise typer.Exit(code=2) from None
        job = watch(rt, job.id)
    print_outcome(job)
    raise typer.Exit(code=0 if job.status in ("succeeded", "warning") else 1)
