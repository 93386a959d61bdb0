"""The task-status fast path answers exactly as the route would, and leaves the rest to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from sheaf.auth.ratelimit import RateLimiter
from sheaf.runtime import Runtime
from tests.fastpaths import answered, plain, same

__all__ = ["answered", "plain"]  # (fixtures)


def test_answers_equal_the_routes_and_only_the_common_case_is_taken(
    client: TestClient, plain: TestClient, make_token: Callable[..., str],
    make_source: Callable[..., dict[str, Any]], load: Callable[..., dict[str, Any]],
    answered: list[tuple[str, int | str]],
) -> None:
    source = make_source("Fast")
    task_id = load(source["id"], "id,name\nu1,A\nu2,B\n")["id"]
    answered.clear()
    tokens = {who: make_token(who) for who in ("ORG_ADMIN", "HELPDESK", "SOURCE_SUBADMIN", "API")}

    cases = []
    for path in (f"/v2025/task-status/{task_id}", f"/beta/task-status/{task_id}",
                 f"/task-status/v1/{task_id}", "/v2025/task-status/0123456789abcdef",
                 "/task-status/v1/pending-tasks", f"/v2026/task-status/{task_id}?x=1",
                 "/v2025/task-status/a%00b"):
        for who, token in tokens.items():
            cases.append((path, {"Authorization": f"Bearer {token}"}, who))
    cases += [
        (f"/v2025/task-status/{task_id}", {}, "nobody"),
        (f"/v2025/task-status/{task_id}", {"Authorization": "Bearer not-a-jwt"}, "bad"),
        (f"/v2025/task-status/{task_id}", {"Authorization": "Basic eDp5"}, "basic"),
        ("/v2025/task-status/pending-tasks", {"Authorization": f"Bearer {tokens['ORG_ADMIN']}"},
         "list"),
    ]
    seen = {}
    for path, headers, who in cases:
        seen[(path, who)] = same(client.get(path, headers=headers),
                                 plain.get(path, headers=headers))

    assert seen[(f"/v2025/task-status/{task_id}", "ORG_ADMIN")]["completionStatus"] == "SUCCESS"
    assert seen[(f"/v2025/task-status/{task_id}", "HELPDESK")]["percentComplete"] == 100
    assert seen[("/v2025/task-status/0123456789abcdef", "ORG_ADMIN")]["detailCode"] == (
        "404 Not found")
    assert "error" in seen[(f"/v2025/task-status/{task_id}", "nobody")]  # 401
    # Taken: ORG_ADMIN and HELPDESK (org-wide readers) on the one-task paths (found,
    # or not: on PostgreSQL the NUL one is the app's DataError handler's 400); left to
    # the route: the SOURCE_SUBADMIN, the authority the route refuses, missing or bad
    # tokens, and the pending-tasks list.
    statuses = [status for step, status in answered]
    assert {step for step, _ in answered} == {"task_status"}
    assert statuses.count(200) == 8 and len(statuses) == 14
    assert set(statuses) - {200} <= {"NotFound", "DataError"}


def test_the_fast_path_spends_one_request_of_the_budget_and_answers_429_as_the_route(
    client: TestClient, plain: TestClient, runtime: Runtime, make_token: Callable[..., str],
    make_source: Callable[..., dict[str, Any]], load: Callable[..., dict[str, Any]],
    answered: list[tuple[str, int | str]],
) -> None:
    source = make_source("Budget")
    task_id = load(source["id"], "id,name\nu1,A\n")["id"]
    headers = {"Authorization": f"Bearer {make_token('ORG_ADMIN')}"}
    path = f"/v2025/task-status/{task_id}"
    answered.clear()
    runtime.limiter = RateLimiter(2, 60)
    first, second, third = (client.get(path, headers=headers) for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]
    runtime.limiter = RateLimiter(2, 60)
    routed = [plain.get(path, headers=headers) for _ in range(3)]
    for fast, route in zip((first, second, third), routed, strict=True):
        same(fast, route)
    assert answered == [("task_status", 200), ("task_status", 200),
                        ("task_status", "RateLimited")]
