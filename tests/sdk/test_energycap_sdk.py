"""The official EnergyCapSdk 8.2309.4878 against a live ``sheaf serve``.

The SDK runs in its own virtualenv (``venvs.py``) through ``drivers/energycap_sdk.py``,
which prints what the SDK parsed; nothing is mocked. Against a server on SQLite and one on
PostgreSQL (SHEAF_TEST_DATABASE_URL's server, else the local one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from . import venvs
from .test_mx_sdk import PG_URL
from .test_sailpoint_sdk import _free_port, _http

pytestmark = pytest.mark.sdk

DRIVER = Path(__file__).resolve().parent / "drivers" / "energycap_sdk.py"
SHEAF_BIN = Path(sys.executable).parent / "sheaf"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite; else a database of its own on SHEAF_TEST_DATABASE_URL's server or
    the local one (which `make test` starts: no silent skip when it is down)."""
    if request.param == "sqlite":
        yield None
        return
    base = PG_URL
    name = f"sheaf_sdk_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, database_url: str | None
         ) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("sheaf-energycap")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHEAF_")}
    env["SHEAF_DATA_DIR"] = str(data_dir)
    if database_url:
        env["SHEAF_DATABASE_URL"] = database_url
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = (data_dir / "server.log").open("wb")
    proc = subprocess.Popen([str(SHEAF_BIN), "serve", "--host", "127.0.0.1", "--port",
                             str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (data_dir / "server.log").read_text()
            try:
                if _http("GET", f"{base_url}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (data_dir / "server.log").read_text()
            time.sleep(0.2)
        made = subprocess.run([str(SHEAF_BIN), "credentials", "create", "sdk", "--dialect",
                               "energycap", "--user", "SDKUSER", "--json"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        yield {"base_url": base_url, "api_key": json.loads(made.stdout)["api_key"]}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _ids(live: dict[str, Any]) -> dict[str, int]:
    """Type ids the SDK has no call to list (the test reads them over plain HTTP)."""
    import urllib.request

    def get(path: str) -> Any:
        req = urllib.request.Request(live["base_url"] + path,
                                     headers={"ECI-ApiKey": live["api_key"]})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    meters = {t["meterTypeCode"]: t["meterTypeId"] for t in get("/api/v3/meterType")}
    accounts = {t["accountTypeCode"]: t["accountTypeId"] for t in get("/api/v3/accountType")}
    return {"hidden_meter_type": meters["HIDDEN"], "standard_account_type": accounts["STANDARD"]}


def test_energycap_sdk_compatibility(live: dict[str, Any]) -> None:
    python = venvs.ensure_venv("energycap", venvs.SDK_SPECS["energycap"])
    spec = {**live, "bad_key": live["api_key"][:-4] + "AAAA", "ids": _ids(live)}
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run([str(python), str(DRIVER)], input=json.dumps(spec),
                              capture_output=True, text=True, timeout=300, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout)
    assert out["electric_rollup_unit"] == "kWh" and {"kWh", "MWh"} <= set(out["units"])
    assert out["place"]["parent"] == "ROOT"
    assert out["meters"] == [["SDK-E0", "MWh", "HIDDEN"], ["SDK-E1", "kWh", "HIDDEN"]]
    assert out["links"] == [["SDK-ACCT", "SDK-E0"], ["SDK-ACCT", "SDK-E1"]]
    assert out["account_meters"] == ["SDK-E0", "SDK-E1"]
    assert out["bill"] == {"period": 202401, "cost": 12.34, "batch": "SDK-ENTRY",
                           "account": "SDK-ACCT"}
    assert out["bills_page"] == {"count": 3, "total": "4", "pages": "2"}
    assert out["version"] == {"begin": 202401, "type": "Calculation",
                              "sums": ["SDK-E0", "SDK-E1"]}
    task = out["task"]
    assert task == {"type": "Calculation", "status": "Completed", "created": 2, "failed": 0,
                    "comment": "from the SDK", "batch": "SDK-AGG", "user": "SDKUSER",
                    "period": 202402, "analyzing": 0, "flags": task["flags"]}
    # 1.5 MWh + 1000 kWh and 2 MWh + 1200 kWh; two lines of 12.34 each period
    assert out["aggregate_bills"] == [[202401, 24.68, "INV-1"], [202402, 24.68, "INV-1"]]
    assert len(out["tasks_listed"]) == 1 and out["empty_body_status"] is True
    assert len(out["per_version_bills"]) == 2
    assert out["reversed_by"] == "SDKUSER" and out["void_again"] == 400
    assert out["after_void"] == 0
    assert out["batch"] == {"status": "Open", "bills": 2}
    assert out["pending"] == "Pending" and out["closed"] == "Closed"
    assert out["bad_key_status"] == 401
