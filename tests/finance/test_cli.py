"""`sheaf credentials create --dialect mx`, `sheaf finance members|aggregate`, the demo's
MX Bank member."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sheaf.cli import app
from sheaf.config import Settings
from sheaf.runtime import Runtime
from tests.finance.conftest import basic


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SHEAF_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("SHEAF_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SHEAF_JOBS__ISOLATION", "thread")
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def test_mx_credentials_work_for_basic_auth(cli: CliRunner, client: TestClient) -> None:
    created = cli.invoke(app, ["credentials", "create", "fin", "--dialect", "mx", "--json"])
    assert created.exit_code == 0, created.output
    made = json.loads(created.stdout)
    assert set(made) == {"name", "client_id", "api_key"} and made["name"] == "fin"
    assert client.get("/users", headers=basic(made["client_id"], made["api_key"])
                      ).status_code == 200
    shown = cli.invoke(app, ["credentials", "create", "fin2", "--dialect", "mx"])
    assert "api_key:" in shown.output and "client_id:" in shown.output
    assert cli.invoke(app, ["credentials", "create", "x", "--dialect", "nope"]).exit_code == 2
    # the SailPoint form is unchanged
    sailpoint = json.loads(cli.invoke(app, ["credentials", "create", "id", "--json"]).stdout)
    assert len(sailpoint["client_secret"]) == 64 and sailpoint["authorities"] == ["ORG_ADMIN"]


def test_finance_members_and_aggregate(cli: CliRunner, client: TestClient, runtime: Runtime,
                                       new_user, new_member) -> None:  # type: ignore[no-untyped-def]
    user = new_user()
    guid = new_member(user, skip=True)["guid"]
    listed = cli.invoke(app, ["finance", "members"])
    assert listed.exit_code == 0 and guid in listed.output and "CREATED" in listed.output
    ran = cli.invoke(app, ["finance", "aggregate", guid])
    assert ran.exit_code == 0, ran.output
    assert "succeeded" in ran.output and "transactions_created: 351" in ran.output
    assert f"member {guid}: CONNECTED" in ran.output
    assert "CONNECTED" in cli.invoke(app, ["finance", "members", "--user", user]).output
    missing = cli.invoke(app, ["finance", "aggregate", "MBR-nope"])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_institutions_add_and_list(cli: CliRunner) -> None:
    added = cli.invoke(app, ["finance", "institutions", "add", "mybank", "My Bank",
                             "--connector", "ofx", "--config",
                             '{"url": "https://ofx.example/", "accounts": []}'])
    assert added.exit_code == 0, added.output
    listed = cli.invoke(app, ["finance", "institutions", "list"])
    assert "mybank" in listed.output and "mxbank" in listed.output and "ofx" in listed.output
    again = cli.invoke(app, ["finance", "institutions", "add", "mybank", "x"])
    assert again.exit_code == 2 and "already exists" in again.output
    for bad in (["--connector", "nope"], ["--config", "{"], ["--config", "[]"]):
        assert cli.invoke(app, ["finance", "institutions", "add", "b2", "x", *bad]
                          ).exit_code == 2
