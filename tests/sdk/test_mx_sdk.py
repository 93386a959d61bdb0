"""The official mx-platform-python 1.12.0 against a live ``sheaf serve``, on SQLite and on
PostgreSQL (when the server the Makefile uses answers).

The SDK runs in its own virtualenv (``venvs.py``) through ``drivers/mx_platform.py``,
which walks the issue's compatibility list (create user, list institution credentials,
create member, poll status, list and answer challenges, resume, aggregate, list accounts,
transactions, holdings) and prints what the SDK parsed. Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from . import venvs

pytestmark = pytest.mark.sdk

DRIVER = Path(__file__).resolve().parent / "drivers" / "mx_platform.py"
SHEAF_BIN = Path(sys.executable).parent / "sheaf"
PG_URL = os.environ.get("SHEAF_TEST_DATABASE_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_database() -> tuple[str, str] | None:
    """A fresh PostgreSQL database (url, name), or None if no server answers."""
    base = make_url(PG_URL)
    name = f"sheaf_mxsdk_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception:
        return None
    return base.set(database=name).render_as_string(hide_password=False), name


def _drop(name: str) -> None:
    admin = create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def mx_python() -> Path:
    return venvs.ensure_venv("mx1", venvs.SDK_SPECS["mx1"])


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHEAF_")}
    env["SHEAF_DATA_DIR"] = str(tmp_path / "data")
    database = None
    if request.param == "postgresql":
        database = _postgres_database()
        if database is None:
            pytest.skip(f"no PostgreSQL answers at {PG_URL}")
        env["SHEAF_DATABASE_URL"] = database[0]
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(SHEAF_BIN), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        created = subprocess.run(
            [str(SHEAF_BIN), "credentials", "create", "mx-sdk", "--dialect", "mx", "--json"],
            env=env, capture_output=True, text=True, timeout=60, check=True)
        yield {"base_url": base_url, **json.loads(created.stdout), "log": str(log_path)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if database is not None:
            _drop(database[1])


def test_mx_platform_python_1_12_0(mx_python: Path, server: dict[str, str]) -> None:
    spec = {k: server[k] for k in ("base_url", "client_id", "api_key")}
    run = subprocess.run([str(mx_python), str(DRIVER), json.dumps(spec)],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, f"{run.stderr}\n--- server ---\n{Path(server['log']).read_text()}"
    out = json.loads(run.stdout)
    assert out["credential_fields"] == ["username", "password"]
    assert out["create_status"] == 202
    assert out["challenged_status"] == "CHALLENGED" and out["challenge_types"] == ["TEXT"]
    assert out["resume_status"] == 202 and out["resume_parsed"]
    assert out["resumed_status"] == "CONNECTED" and out["status_flags"] == [True, True, True]
    assert out["update_status"] == 200 and out["updated_connection_status"] == "CONNECTED"
    assert out["aggregate_status"] == 202 and out["aggregate_flag_type"] == "bool"
    assert out["member"]["connection_status"] == "CONNECTED"
    assert out["member"]["institution_code"] == "mxbank"
    assert out["member"]["successfully_aggregated_at"].endswith("Z")
    assert out["member"]["most_recent_job_guid"] is None
    assert out["members_listed"] == 1
    assert out["accounts"] == ["CHECKING", "CREDIT_CARD", "INVESTMENT", "SAVINGS"]
    assert out["account_balance_types"] == ["float"]
    # each of the two later aggregations posted 3 pending transactions and brought 3 new
    assert out["transactions_total"] == 357
    assert out["transaction_statuses"] == ["PENDING", "POSTED"]
    assert out["amount_types"] == ["float"]
    assert out["holdings"] == 5 and out["quantity_types"] == ["str"]
    assert out["errors"] == {"unknown_member": 404, "resume_when_connected": 405}
    assert out["delete_status"] == 204
