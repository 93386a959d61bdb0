"""The CLI tells the truth: whole ids and unique prefixes, Ctrl-C, the data directory,
what a credential grants, a taken port, the demo's one credential, text never markup."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sheaf.cli import app
from sheaf.cli import common as cli_common
from sheaf.config import Settings
from sheaf.jobs.models import Job, JobEvent
from sheaf.kit.base import utcnow
from sheaf.runtime import Runtime


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SHEAF_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("SHEAF_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COLUMNS", "80")  # narrow: ids must still be whole
    return CliRunner()


def _job(runtime: Runtime, job_id: str, status: str = "succeeded",
         messages: list[dict[str, str]] | None = None) -> None:
    now = utcnow()
    with runtime.db.write() as session:
        session.add(Job(id=job_id, type="identity.load_accounts", status=status, payload={},
                        max_attempts=3, created_at=now, updated_at=now, run_after=now,
                        started_at=now, messages=messages or [], counters={"total": 1},
                        progress_message="Running: [bold]not markup[/]"))
        session.add(JobEvent(job_id=job_id, at=now, to_status=status, message="test"))


def test_jobs_list_prints_whole_ids_and_show_takes_any_unique_prefix(
    cli: CliRunner, runtime: Runtime
) -> None:
    first, second = "abc1" + "0" * 28, "abc2" + "0" * 28
    _job(runtime, first)
    _job(runtime, second)
    listed = cli.invoke(app, ["jobs", "list"])
    assert listed.exit_code == 0, listed.output
    assert first in listed.stdout and second in listed.stdout  # not cut at 80 columns

    shown = cli.invoke(app, ["jobs", "show", "abc1"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["id"] == first
    assert json.loads(cli.invoke(app, ["jobs", "show", "ABC2"]).stdout)["id"] == second

    ambiguous = cli.invoke(app, ["jobs", "show", "abc"])
    assert ambiguous.exit_code == 2
    assert "several job ids" in ambiguous.stdout
    assert first in ambiguous.stdout and second in ambiguous.stdout
    missing = cli.invoke(app, ["jobs", "show", "abd"])
    assert missing.exit_code == 2 and "No job id starts with 'abd'" in missing.stdout
    assert cli.invoke(app, ["jobs", "show", "%"]).exit_code == 2  # not a wildcard


def test_ctrl_c_while_watching_detaches_and_exits_130(
    cli: CliRunner, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = "d" * 32
    _job(runtime, job_id, status="running")

    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_common.time, "sleep", interrupted)
    watched = cli.invoke(app, ["jobs", "watch", job_id[:6]])
    assert watched.exit_code == 130, watched.output
    assert isinstance(watched.exception, SystemExit)  # no traceback
    assert f"Job {job_id} goes on" in watched.stderr
    assert f"sheaf jobs watch {job_id}" in watched.stderr


def test_outcome_messages_are_text_not_markup(cli: CliRunner, runtime: Runtime) -> None:
    job_id = "e" * 32
    _job(runtime, job_id, status="failed",
         messages=[{"level": "error", "key": "k", "text": "line 3: [error] bad [/]"}])
    watched = cli.invoke(app, ["jobs", "watch", job_id])
    assert watched.exit_code == 1
    assert "error: line 3: [error] bad [/]" in watched.stdout


def test_each_command_names_its_data_dir_resolved_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHEAF_DATA_DIR", "rel/var")
    monkeypatch.delenv("SHEAF_DATABASE_URL", raising=False)
    settings = Settings()
    assert settings.data_dir == tmp_path / "rel" / "var"
    monkeypatch.chdir("/")  # a later step elsewhere still means the same directory
    assert settings.db_url == f"sqlite:///{tmp_path / 'rel' / 'var' / 'sheaf.db'}"
    monkeypatch.chdir(tmp_path)
    listed = CliRunner().invoke(app, ["jobs", "list"])
    assert f"data dir {tmp_path / 'rel' / 'var'}" in listed.stderr
    assert listed.exit_code == 2 and "No sheaf database" in listed.stdout
    assert not (tmp_path / "rel" / "var" / "sheaf.db").exists()  # read-only: none made


def test_credentials_say_what_they_grant_and_explain_a_reused_name(cli: CliRunner) -> None:
    first = cli.invoke(app, ["credentials", "create", "ci", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["authorities"] == ["ORG_ADMIN"]
    assert "No --authority given: granting ORG_ADMIN" in first.stderr
    second = cli.invoke(app, ["credentials", "create", "ci", "-a", "HELPDESK", "--json"])
    assert second.exit_code == 0
    assert "No --authority given" not in second.stderr
    assert "1 other credential(s) already named 'ci'" in second.stderr
    assert json.loads(first.stdout)["client_id"] in second.stderr


def test_a_taken_port_stops_the_demo_before_it_does_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEAF_DATA_DIR", str(tmp_path / "fresh"))
    monkeypatch.delenv("SHEAF_DATABASE_URL", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["demo", "--check-port", str(port)])
    assert result.exit_code == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stdout
    assert "PORT=" in result.stdout
    assert not (tmp_path / "fresh").exists()  # nothing migrated, nothing minted


def test_the_demo_keeps_one_credential(cli: CliRunner, settings: Settings,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEAF_JOBS__ISOLATION", "thread")
    first = cli.invoke(app, ["demo"])
    assert first.exit_code == 0, first.output
    kept = settings.data_dir / "demo-credential.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    credential = json.loads(first.stdout.strip().splitlines()[-2])
    assert json.loads(kept.read_text()) == credential
    again = cli.invoke(app, ["demo"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout.strip().splitlines()[-2]) == credential
    assert "made on the first run" in again.stdout


def test_bad_settings_and_an_unreachable_database_are_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEAF_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SHEAF_JOBS__WORKERS", "abc")
    bad = CliRunner().invoke(app, ["jobs", "list"])
    assert bad.exit_code == 2 and isinstance(bad.exception, SystemExit)
    assert "SHEAF_JOBS__WORKERS: Input should be a valid integer" in bad.stdout
    monkeypatch.delenv("SHEAF_JOBS__WORKERS")
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("SHEAF_DATABASE_URL",
                       f"postgresql+psycopg://someone:hunter2@127.0.0.1:{port}/nowhere")
    for argv in (["jobs", "list"], ["jobs", "show", "ab"], ["credentials", "create", "x"]):
        down = CliRunner().invoke(app, argv)
        assert down.exit_code == 1 and isinstance(down.exception, SystemExit), down.output
        assert "Cannot use the database postgresql+psycopg://someone:***@" in down.stdout
        assert "hunter2" not in down.output
