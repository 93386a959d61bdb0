"""`sheaf utility import-bills` and `sheaf utility aggregate` against the test database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from sheaf.cli import app
from sheaf.cli.utility import cli_user
from sheaf.config import Settings
from sheaf.runtime import Runtime
from sheaf.utility import aggregates, schemas
from sheaf.utility import models as m

CSV = ("place_code,commodity_code,account_code,meter_code,billing_period,begin_date,"
       "end_date,use,use_unit,cost\n"
       "HALL,ELECTRIC,A1,M1,202401,2024-01-01,2024-02-01,100.5,kWh,10.25\n"
       "HALL,ELECTRIC,A1,M2,202401,2024-01-01,2024-02-01,0.5,MWh,20\n")


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SHEAF_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("SHEAF_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SHEAF_JOBS__ISOLATION", "thread")
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def test_import_then_aggregate(cli: CliRunner, tmp_path: Path) -> None:
    file = tmp_path / "bills.csv"
    file.write_text(CSV)
    imported = cli.invoke(app, ["utility", "import-bills", str(file), "--json"])
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout)["billsCreated"] == 2
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV.replace("202401,2024-01-01,2024-02-01,0.5", "202401,2024-01-01,x,0.5"))
    refused = cli.invoke(app, ["utility", "import-bills", str(bad)])
    assert refused.exit_code == 2 and "line 3: end_date is not an ISO date" in refused.output

    # an aggregate meter over the two imported meters, through the service
    rt = Runtime.build(Settings())
    try:
        user = cli_user(rt)
        with rt.db.write() as session:
            meters = session.execute(select(m.Meter).order_by(m.Meter.meter_id)).scalars().all()
            aggregates.upsert(session, user, meters[0].place_id,
                              schemas.UpsertAggregateMeter.model_validate({
                                  "beginPeriod": 202401,
                                  "sourceMeterIds": [x.meter_id for x in meters],
                                  "commodityId": meters[0].commodity_id,
                                  "aggregateMeterInfo": "Hall"}))
    finally:
        rt.close()
    ran = cli.invoke(app, ["utility", "aggregate", "--period", "202401", "--json"])
    assert ran.exit_code == 0, ran.output
    task = json.loads(ran.output.strip().splitlines()[-1])
    assert task["status"] == "Completed" and task["numberOfBillsCreated"] == 1
    bad_period = cli.invoke(app, ["utility", "aggregate", "--period", "202413"])
    assert bad_period.exit_code == 2 and "between 01 and 12" in bad_period.output


def test_demo_builds_the_campus_once(cli: CliRunner) -> None:
    first = cli.invoke(app, ["demo"])
    assert first.exit_code == 0, first.output
    assert "utility campus (created)" in first.output
    assert "24 aggregate bills created" in first.output  # 2 aggregates x 12 periods
    key = next(json.loads(line)["api_key"] for line in first.output.splitlines()
               if line.startswith('{"api_key"'))
    second = cli.invoke(app, ["demo"])
    assert "utility campus (already there)" in second.output
    assert "0 aggregate bills created" in second.output  # unchanged: nothing written
    rt = Runtime.build(Settings())
    try:
        with rt.db.read() as session:
            standing = session.execute(select(m.Bill).where(
                m.Bill.task_id.is_not(None), m.Bill.void.is_(False))).scalars().all()
            assert len(standing) == 24
            from sheaf.auth.energycap import verify_key

            assert verify_key(session, key) is not None
    finally:
        rt.close()
