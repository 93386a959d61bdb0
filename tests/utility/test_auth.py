"""ECI-ApiKey: missing, bad and under-permitted keys answer 401 saying which; the key is
stored only as a digest; the CLI makes keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from sheaf.app import create_app
from sheaf.auth.energycap import PERMISSIONS, EnergyCapKey, EnergyCapUser, create_key
from sheaf.cli import app as cli
from sheaf.config import Settings
from sheaf.runtime import Runtime


def test_missing_and_bad_keys(client: TestClient, ec: dict[str, str]) -> None:
    missing = client.get("/api/v3/commodity")
    assert missing.status_code == 401
    assert missing.json() == {"message": "No API key: send it in the ECI-ApiKey header",
                              "errors": []}
    key = ec["ECI-ApiKey"]
    for bad in ("nonsense", key[:-2] + "xx", "a.b.c", key.replace(key.split(".")[1], "x" * 43)):
        response = client.get("/api/v3/commodity", headers={"ECI-ApiKey": bad})
        assert response.status_code == 401, bad
        assert response.json()["message"] == "The ECI-ApiKey is not valid"
    assert client.get("/api/v3/commodity", headers=ec).status_code == 200


def test_missing_permission_is_401_naming_it(client: TestClient,
                                             make_key: Callable[..., dict[str, str]]) -> None:
    viewer = make_key("viewer", "ChargebacksModule:View")
    response = client.post("/api/v202203/utilityPlatform/aggregations/exec", headers=viewer)
    assert response.status_code == 401
    assert "Chargebacks (Run)" in response.json()["message"]
    assert client.get("/api/v3/chargebackTask", headers=viewer).status_code == 200
    assert client.post("/api/v3/place", headers=viewer, json={}).status_code == 401


def test_only_a_digest_is_stored(runtime: Runtime, ec: dict[str, str]) -> None:
    secret = ec["ECI-ApiKey"].split(".")[1]
    with runtime.db.read() as session:
        keys = session.execute(select(EnergyCapKey)).scalars().all()
        admin = session.execute(select(EnergyCapUser)).scalars().one()
    assert len(keys) == 1 and secret not in keys[0].secret_digest
    assert admin.permissions == sorted(PERMISSIONS)


def test_cli_creates_a_key_for_a_user(settings: Settings, monkeypatch: object,
                                      client: TestClient, tmp_path: Path) -> None:
    import os

    env = {"SHEAF_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["SHEAF_DATABASE_URL"] = settings.database_url
    runner = CliRunner()
    result = runner.invoke(cli, ["credentials", "create", "ops", "--dialect", "energycap",
                                 "--user", "OPS", "--permission", "Chargebacks:Run",
                                 "--json"], env={**os.environ, **env})
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout)
    assert made["user"]["userCode"] == "OPS" and made["permissions"] == ["Chargebacks:Run"]
    headers = {"ECI-ApiKey": made["api_key"]}
    assert client.get("/api/v3/commodity", headers=headers).status_code == 200
    assert client.get("/api/v3/chargebackTask", headers=headers).status_code == 401
    bad = runner.invoke(cli, ["credentials", "create", "x", "--dialect", "energycap",
                              "--permission", "Nope:Run"], env={**os.environ, **env})
    assert bad.exit_code != 0 and "unknown permissions" in bad.output
    nowhere = runner.invoke(cli, ["credentials", "create", "y", "--dialect", "energycap",
                                  "--place", "NOWHERE"], env={**os.environ, **env})
    assert nowhere.exit_code != 0 and "no place has the code" in nowhere.output
    rooted = runner.invoke(cli, ["credentials", "create", "z", "--dialect", "energycap",
                                 "--user", "Z", "--place", "ROOT", "--json"],
                           env={**os.environ, **env})
    assert rooted.exit_code == 0 and json.loads(rooted.stdout)["topmostPlaceId"] == 1


def test_a_key_over_its_rate_limit_gets_429_in_energycap_s_body(settings: Settings) -> None:
    """Each key has its budget (3 requests a 10 s window here); past it, 429 with
    Retry-After in EnergyCAP's error body; another key of the same user still passes."""
    auth = settings.auth.model_copy(update={"rate_limit_requests": 3,
                                            "rate_limit_window_seconds": 10.0})
    runtime = Runtime.build(settings.model_copy(update={"auth": auth}))
    try:
        with runtime.db.write() as session:
            _, _, first = create_key(session, "one", "admin", [])
            _, _, second = create_key(session, "two", "admin", [])
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            for _ in range(3):
                assert client.get("/api/v3/commodity",
                                  headers={"ECI-ApiKey": first}).status_code == 200
            refused = client.get("/api/v3/chargebackTask", headers={"ECI-ApiKey": first})
            assert refused.status_code == 429
            assert refused.json() == {"message": "Rate Limit Exceeded", "errors": []}
            assert 1 <= int(refused.headers["Retry-After"]) <= 10
            assert client.get("/api/v3/commodity",
                              headers={"ECI-ApiKey": second}).status_code == 200
    finally:
        runtime.close()
