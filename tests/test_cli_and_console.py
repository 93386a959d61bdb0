"""The CLI (typer, calling services) and the console, against the test database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sheaf.auth import credentials
from sheaf.cli import app
from sheaf.config import Settings


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SHEAF_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("SHEAF_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SHEAF_JOBS__ISOLATION", "thread")  # keeps the run quick
    monkeypatch.setenv("COLUMNS", "200")  # rich tables would truncate at 80
    return CliRunner()


def test_credentials_demo_load_and_jobs(cli: CliRunner, tmp_path: Path) -> None:
    created = cli.invoke(app, ["credentials", "create", "identity-client", "--authority",
                               "ORG_ADMIN", "--json"])
    assert created.exit_code == 0, created.output
    cred = json.loads(created.output)
    assert cred["authorities"] == ["ORG_ADMIN"] and len(cred["client_secret"]) == 64
    bad = cli.invoke(app, ["credentials", "create", "x", "--authority", "GOD"])
    assert bad.exit_code != 0

    demo = cli.invoke(app, ["demo"])
    assert demo.exit_code == 0, demo.output
    made = json.loads(demo.output.strip().splitlines()[-1])
    assert [m["status"] for m in made] == ["succeeded", "succeeded"]
    assert "identitiesCorrelated: 14" in demo.output
    mx_demo = json.loads(next(line for line in demo.output.splitlines() if '"api_key"' in line))
    assert mx_demo["member_guid"].startswith("MBR-") and "transactions_created: 351" in demo.output

    csv = tmp_path / "hr.csv"
    csv.write_text("id,name,email,department,title,manager,groups\n"
                   "E1001,\"Lovelace, Ada\",ada.lovelace@example.com,Eng,Manager,,vpn\n")
    loaded = cli.invoke(app, ["identity", "load-accounts", "HR", str(csv)])
    assert loaded.exit_code == 0, loaded.output
    assert "succeeded" in loaded.output or "warning" in loaded.output
    missing = cli.invoke(app, ["identity", "load-accounts", "Nope", str(csv)])
    assert missing.exit_code == 2 and "No source" in missing.output

    listed = cli.invoke(app, ["jobs", "list"])
    assert listed.exit_code == 0 and "identity.load_accounts" in listed.output
    shown = cli.invoke(app, ["jobs", "show", made[0]["task_id"]])
    assert json.loads(shown.output)["counters"]["created"] == 20
    watched = cli.invoke(app, ["jobs", "watch", made[1]["task_id"]])
    assert watched.exit_code == 0 and "succeeded" in watched.output
    assert cli.invoke(app, ["jobs", "show", "nope"]).exit_code == 2


def test_console_lists_sources_and_jobs(client: TestClient, runtime, make_source, load) -> None:
    source = make_source("Payroll <&>")
    load(source["id"], "id,name\nu1,U\n")
    challenge = client.get("/console/")
    assert challenge.status_code == 401
    assert challenge.headers["www-authenticate"].startswith("Basic")
    with runtime.db.write() as session:
        cred, secret = credentials.create(session, "viewer", ["ORG_ADMIN"])
        client_id = cred.client_id
    assert client.get("/console/", auth=(client_id, "wrong")).status_code == 401
    page = client.get("/console/", auth=(client_id, secret))
    assert page.status_code == 200
    assert "Payroll &lt;&amp;&gt;" in page.text  # escaped
    assert "identity.load_accounts" in page.text and "succeeded" in page.text
