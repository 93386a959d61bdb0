"""The data directory is its owner's only: the database (and its -wal/-shm), uploaded
files, account snapshots and the JWT key are created 0600 in directories created 0700,
whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sheaf.app import create_app
from sheaf.auth import credentials
from sheaf.config import Settings
from sheaf.migrate import upgrade
from sheaf.runtime import Runtime


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    before = os.umask(0o022)  # the usual default: files 0644, directories 0755
    yield
    os.umask(before)


def test_the_data_directory_is_created_private(settings: Settings, tmp_path: Path,
                                               open_umask: None) -> None:
    data_dir = tmp_path / "fresh" / "var"  # neither exists yet
    auth = settings.auth.model_copy(update={"jwt_secret": None})  # the key goes in data_dir
    fresh = settings.model_copy(update={"data_dir": data_dir, "auth": auth})
    upgrade(fresh)  # (`sheaf serve` migrates first: it may create the directory)
    runtime = Runtime.build(fresh)
    try:
        with runtime.db.write() as session:
            cred, secret = credentials.create(session, "owner", ["ORG_ADMIN"])
        with TestClient(create_app(runtime=runtime)) as client:
            token = client.post("/oauth/token", data={
                "grant_type": "client_credentials", "client_id": cred.client_id,
                "client_secret": secret}).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            source = client.post("/v3/sources", headers=headers, json={
                "name": "HR", "connector": "delimited-file"}).json()["id"]
            response = client.post(f"/v2025/sources/{source}/load-accounts", headers=headers,
                                   files={"file": ("a.csv", b"id,name\na1,Ann\n")})
            assert response.status_code == 202, response.text
            task = client.get(f"/v2025/task-status/{response.json()['task']['id']}",
                              headers=headers).json()
            assert task["completionStatus"] == "SUCCESS", task
            # a blob that is still waiting for its job
            runtime.executor.paused = True  # type: ignore[attr-defined]
            queued = client.post(f"/v2025/sources/{source}/load-accounts", headers=headers,
                                 files={"file": ("a.csv", b"id,name\na1,Ann\n")})
            assert queued.status_code == 202, queued.text

            dirs = [data_dir.parent, data_dir, data_dir / "blobs", data_dir / "snapshots",
                    data_dir / "snapshots" / source]
            files = [data_dir / "jwt-secret", *(data_dir / "blobs").iterdir(),
                     *(data_dir / "snapshots" / source).iterdir()]
            assert any(p.suffix == ".parquet" for p in files)
            assert len(list((data_dir / "blobs").iterdir())) >= 1
            if fresh.database_url is None:  # SQLite: the database lives in the data dir
                files += [data_dir / "sheaf.db", data_dir / "sheaf.db-wal",
                          data_dir / "sheaf.db-shm"]
            assert {str(d): oct(mode(d)) for d in dirs} == {str(d): "0o700" for d in dirs}
            assert {str(f): oct(mode(f)) for f in files} == {str(f): "0o600" for f in files}
    finally:
        runtime.close()


def test_a_data_directory_open_to_others_is_reported(settings: Settings, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    Runtime.build(settings.model_copy(update={"data_dir": shared})).close()
    assert "is open to other users (mode 0o755)" in caplog.text
    assert mode(shared) == 0o755  # reported, not changed
    caplog.clear()
    Runtime.build(settings.model_copy(update={"data_dir": tmp_path / "private"})).close()
    assert "open to other users" not in caplog.text
