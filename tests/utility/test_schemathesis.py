"""Outside in: schemathesis over the EnergyCAP dialect's OpenAPI (bounded): no 5xx, and
every successful response accepted by the SDK's own models."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from tests.utility import sdk_models
from tests.utility.conftest import Api


def seed(api: Api) -> None:
    """Some data for the generated ids and filters to land on."""
    place = api.place("FUZZ")
    meter = api.meter("FUZZ-M", place)
    account = api.account("FUZZ-A", [meter])
    api.bill(account, meter, 202401, 5, 1)
    api.call("PUT", f"/api/v202203/utilityPlatform/place/{place}/aggregateMeter",
             json={"beginPeriod": 202401, "sourceMeterIds": [meter],
                   "commodityId": api.commodity("ELECTRIC"), "aggregateMeterInfo": "F"})
    api.call("POST", "/api/v202203/utilityPlatform/aggregations/exec",
             json={"billingPeriod": 202401})


def check(case: Any, headers: dict[str, str]) -> None:
    response = case.call(headers=headers)
    where = (case.method, case.formatted_path, response.status_code, response.content[:300])
    assert response.status_code < 500, where
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("message"), str) and isinstance(body.get("errors"), list), \
            where
        return
    op = sdk_models.operation_for(case.method, case.formatted_path)
    if op is None or not op["response"] or op["response"] == "str":
        return
    assert sdk_models.problems(response.json(), op["response"]) == [], where


def test_no_5xx_and_sdk_models_accept_responses(client: TestClient, api: Api) -> None:
    seed(api)
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app).include(
        path_regex=r"^/api/v\d")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            check(case, api.headers)

        run()


@pytest.mark.skipif(not sdk_models.available(),
                    reason="../shared/specs (the SDK's models) is not beside this checkout")
def test_the_model_check_can_fail() -> None:
    assert sdk_models.problems({"taskId": "x", "batch": {"batchId": 1.5}},
                               "ChargebackTaskResponse") == [
        "$.taskId: 'x' is not int", "$.batch.batchId: 1.5 is not int"]
