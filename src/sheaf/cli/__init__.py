"""`sheaf ...`: commands call services directly, never the HTTP API.

Each command imports what it needs when it runs, so `sheaf --help` and the read-only
commands start in a fraction of a second (tests/test_cli_imports.py holds them to it).
"""

from __future__ import annotations

import typer

from sheaf.cli import credentials, db, demo, finance, identity, jobs, serve, worker

app = typer.Typer(no_args_is_help=True, help="sheaf: a self-hosted aggregation server.")
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.command("demo")(demo.demo)
app.add_typer(db.app, name="db")
app.add_typer(credentials.app, name="credentials")
app.add_typer(jobs.app, name="jobs")
app.add_typer(identity.app, name="identity")
app.add_typer(finance.app, name="finance")
