"""MX's aggregate endpoint on the fast path: every answer is the route's, the event loop
takes only what one read decides, and an aggregation writes under the lock only what it
diffed before (diffing again when the member changed meanwhile)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from sheaf.auth.ratelimit import RateLimiter
from sheaf.finance import aggregation, repository, service
from sheaf.finance.models import FinTransaction, Member
from sheaf.jobs.models import Job
from sheaf.runtime import Runtime
from tests.fastpaths import answered, plain, same
from tests.finance.conftest import basic

__all__ = ["answered", "plain"]  # (fixtures)


def _jobs(runtime: Runtime, member_guid: str) -> int:
    with runtime.db.read() as session:
        return len(session.execute(select(Job.id).where(Job.subject_id == member_guid)).all())


def test_answers_equal_the_routes_and_each_step_takes_its_share(
        client: TestClient, plain: TestClient, runtime: Runtime, mx_auth: dict[str, str],
        make_mx_client: Callable[[], tuple[str, str]], new_user: Callable[..., str],
        new_member: Callable[..., dict[str, Any]],
        answered: list[tuple[str, int | str]]) -> None:
    with runtime.db.write() as session:
        service.create_institution(session, "slowbank", "Slow Bank", "sandbox",
                                   {"throttled": True})
        fields = service.get_institution(session, "slowbank").credentials
    user, stranger = new_user(), new_user()
    busy = new_member(user)["guid"]
    idle = new_member(user, skip=True)["guid"]
    no_pfm = new_member(user, skip=True, use_cases=["MONEY_MOVEMENT"])["guid"]
    throttled = client.post(f"/users/{user}/members", headers=mx_auth, json={"member": {
        "institution_code": "slowbank", "credentials": [
            {"guid": fields[0]["guid"], "value": "mxuser"},
            {"guid": fields[1]["guid"], "value": "pw"}]}}).json()["member"]["guid"]
    runtime.executor.paused = True  # type: ignore[attr-defined]
    client.post(f"/users/{user}/members/{busy}/aggregate", headers=mx_auth)
    stranger_key = basic(*make_mx_client())
    answered.clear()

    def both(path: str, headers: dict[str, str], **params: str) -> dict[str, Any]:
        fast = client.post(path, headers=headers, params=params)
        return same(fast, plain.post(path, headers=headers, params=params))

    on = f"/users/{user}/members"
    assert both(f"{on}/{busy}/aggregate", mx_auth)["member"]["is_being_aggregated"] is True
    assert both(f"{on}/{throttled}/aggregate", mx_auth)["member"]["guid"] == throttled
    # a job starts (the fast path's, once: the route then finds it running)
    started = both(f"{on}/{idle}/aggregate", mx_auth, include_holdings="False")
    assert started["member"]["is_being_aggregated"] is True and _jobs(runtime, idle) == 1
    assert both(f"{on}/{idle}/aggregate", mx_auth, include_holdings="maybe")[
        "error"]["status"] == 400
    for path in (f"/users/{stranger}/members/{busy}/aggregate", f"{on}/MBR-nope/aggregate",
                 "/users/USR-nope/members/x/aggregate"):
        assert both(path, mx_auth)["error"]["status"] == 404
    assert both(f"{on}/{busy}/aggregate", stranger_key)["error"]["status"] == 404
    assert both(f"{on}/{no_pfm}/aggregate", mx_auth)["error"]["status"] == 403
    wrong = basic(make_mx_client()[0], "not-the-key")
    assert both(f"{on}/{busy}/aggregate", wrong)["error"]["status"] == 401
    assert both(f"{on}/{busy}/aggregate", {})["error"]["status"] == 401

    # On SQLite one read on the event loop answers a member that is busy or throttled;
    # the rest of a valid key is the thread's (on PostgreSQL, all of it). Missing or
    # wrong keys are the route's.
    quick = "quick" if runtime.db.is_sqlite else "answer"
    assert answered == [
        (quick, 202), (quick, 202), ("answer", 202), ("answer", "BadRequest"),
        ("answer", "NotFound"), ("answer", "NotFound"), ("answer", "NotFound"),
        ("answer", "NotFound"), ("answer", "Forbidden")]


def test_the_fast_path_spends_the_routes_budget_and_answers_429_as_it_does(
        client: TestClient, plain: TestClient, runtime: Runtime, mx_auth: dict[str, str],
        new_user: Callable[..., str], new_member: Callable[..., dict[str, Any]],
        answered: list[tuple[str, int | str]]) -> None:
    user = new_user()
    guid = new_member(user)["guid"]
    runtime.executor.paused = True  # type: ignore[attr-defined]
    path = f"/users/{user}/members/{guid}/aggregate"
    client.post(path, headers=mx_auth)  # (queued: busy from here on)
    answered.clear()
    runtime.limiter = RateLimiter(2, 60)
    fast = [client.post(path, headers=mx_auth) for _ in range(3)]
    assert [r.status_code for r in fast] == [202, 202, 429]
    runtime.limiter = RateLimiter(2, 60)
    for mine, route in zip(fast, [plain.post(path, headers=mx_auth) for _ in range(3)],
                           strict=True):
        same(mine, route)
    quick = "quick" if runtime.db.is_sqlite else "answer"
    assert answered == [(quick, 202), (quick, 202), (quick, "RateLimited")]


def test_the_members_read_finds_its_running_job_through_the_partial_index(
        runtime: Runtime) -> None:
    if not runtime.db.is_sqlite:
        pytest.skip("SQLite's planner (PostgreSQL plans by statistics)")
    with runtime.db.read() as session:
        sql = str(repository._TARGET_OF_USER.compile(session.bind))
        plan = session.connection().exec_driver_sql(
            "EXPLAIN QUERY PLAN " + sql, ("x",) * sql.count("?")).all()
    assert any("uq_job_active_lock_key" in str(row) for row in plan), plan


def test_a_member_changed_after_the_diff_is_diffed_again_under_the_lock(
        client: TestClient, runtime: Runtime, mx_auth: dict[str, str],
        new_user: Callable[..., str], new_member: Callable[..., dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    user = new_user()
    guid = new_member(user)["guid"]

    def stored() -> list[str]:
        with runtime.db.read() as session:
            return sorted(session.execute(select(FinTransaction.id).where(
                FinTransaction.member_guid == guid)).scalars())

    assert stored()
    plan = aggregation._plan
    plans: list[list[str]] = []

    def plan_then_change(session: Any, member_guid: str, incoming: Any) -> Any:
        planned = plan(session, member_guid, incoming)
        plans.append(sorted(incoming["transactions"]["id"]))
        if len(plans) == 1:  # what another commit would do between the diff and the write
            with runtime.db.write() as other:
                lost = other.execute(select(FinTransaction.guid).where(
                    FinTransaction.member_guid == member_guid).limit(1)).scalar_one()
                other.execute(delete(FinTransaction).where(FinTransaction.guid == lost))
                other.execute(update(Member).where(Member.guid == member_guid)
                              .values(generation=Member.generation + 1))
        return planned

    monkeypatch.setattr(aggregation, "_plan", plan_then_change)
    r = client.post(f"/users/{user}/members/{guid}/aggregate", headers=mx_auth)
    assert r.status_code == 202
    # diffed again: what is stored is the snapshot, the deleted transaction included
    assert len(plans) == 2 and stored() == plans[0] == plans[1]
