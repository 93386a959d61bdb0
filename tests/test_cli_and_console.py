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
    cred = json.loads(created.stdout)
    assert cred["authorities"] == ["ORG_ADMIN"] and len(cred["client_secret"]) == 64
    bad = cli.invoke(app, ["credentials", "create", "x", "--authority", "GOD"])
    assert bad.exit_code != 0

    demo = cli.invoke(app, ["demo"])
    assert demo.exit_code == 0, demo.output
    made = json.loads(demo.stdout.strip().splitlines()[-1])
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
    assert json.loads(shown.stdout)["counters"]["created"] == 20
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


HR = {"type": "GOVERNANCE_GROUP", "id": "g-hr", "name": "HR admins"}
IT = {"type": "GOVERNANCE_GROUP", "id": "g-it", "name": "IT admins"}


def signed_up(runtime, authorities: list[str], groups: list[str] | None = None
              ) -> tuple[str, str]:
    with runtime.db.write() as session:
        cred, secret = credentials.create(session, "viewer", authorities, groups)
        return cred.client_id, secret


@pytest.fixture
def two_sources(client: TestClient, runtime, auth, make_source, load) -> dict[str, str]:
    mine = make_source("Mine-HR", managementWorkgroup=HR)["id"]
    theirs = make_source("Theirs-IT", managementWorkgroup=IT)["id"]
    load(mine, "id,name\na1,Ann\na2,Bob\n")
    load(theirs, "id,name\nb1,Cy\nb2,Di\nb3,Ed\n")
    tasks = client.get("/v2025/task-status", headers=auth).json()
    by_source = {t["target"]["id"]: t["id"] for t in tasks}
    return {"mine": mine, "theirs": theirs, "mine_job": by_source[mine],
            "theirs_job": by_source[theirs]}


def test_the_console_shows_a_subadmin_only_its_groups_sources_and_jobs(
        client: TestClient, runtime, two_sources) -> None:
    page = client.get("/console/", auth=signed_up(runtime, ["SOURCE_SUBADMIN"], ["g-hr"]))
    assert page.status_code == 200, page.text
    assert "Mine-HR" in page.text and two_sources["mine_job"] in page.text
    assert "<td>2</td>" in page.text  # its source's account count
    for hidden in ("Theirs-IT", two_sources["theirs"], two_sources["theirs_job"]):
        assert hidden not in page.text
    assert " identities</p>" not in page.text  # it may not read identities through the API
    # a SOURCE_SUBADMIN of no group sees no source and no job
    page = client.get("/console/", auth=signed_up(runtime, ["SOURCE_SUBADMIN"]))
    assert page.status_code == 200
    for hidden in ("Mine-HR", "Theirs-IT", two_sources["mine_job"], two_sources["theirs_job"]):
        assert hidden not in page.text


def test_the_console_shows_what_the_api_shows_each_authority(
        client: TestClient, runtime, two_sources) -> None:
    everything = ("Mine-HR", "Theirs-IT", two_sources["mine_job"], two_sources["theirs_job"])
    admin = client.get("/console/", auth=signed_up(runtime, ["SOURCE_ADMIN"]))
    assert all(s in admin.text for s in everything) and " identities</p>" in admin.text
    # HELPDESK reads every task and identity but no source
    helpdesk = client.get("/console/", auth=signed_up(runtime, ["HELPDESK"]))
    assert helpdesk.status_code == 200
    assert two_sources["mine_job"] in helpdesk.text and two_sources["theirs_job"] in helpdesk.text
    assert "Sources" not in helpdesk.text and "Mine-HR" not in helpdesk.text
    assert " identities</p>" in helpdesk.text


@pytest.mark.parametrize("authorities", [["API"], []])
def test_a_client_that_may_read_nothing_is_refused_the_console(
        authorities: list[str], client: TestClient, runtime, two_sources) -> None:
    refused = client.get("/console/", auth=signed_up(runtime, authorities))
    assert refused.status_code == 403, refused.text
    text = refused.json()["error"]
    assert "may not use the console" in text and "ORG_ADMIN" in text
    assert "Mine-HR" not in refused.text
