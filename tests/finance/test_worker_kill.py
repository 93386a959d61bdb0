"""SIGKILL the worker process at several points of a member aggregation: the data is
exactly the previous aggregation's until the rerun (after the lease runs out) commits the
new one, and the job and the member tell the truth throughout."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from sheaf.auth import mx
from sheaf.config import Settings
from sheaf.finance import service
from sheaf.finance.models import FinTransaction, Member
from sheaf.runtime import Runtime
from tests.workers import in_worker_processes, started, wait_for

PER_ACCOUNT = 2500  # 10,000 transactions: a write long enough to be killed in


@pytest.fixture
def process_runtime(settings: Settings) -> Iterator[Runtime]:
    settings = in_worker_processes(settings)
    with started(settings) as rt:
        yield rt




def _stored(rt: Runtime, member: str) -> dict[str, str]:
    with rt.db.read() as session:
        return dict(session.execute(select(FinTransaction.id, FinTransaction.content_hash)
                                    .where(FinTransaction.member_guid == member)).all())


def _member(rt: Runtime, member: str) -> Member:
    with rt.db.read() as session:
        found = session.get(Member, member)
        assert found is not None
        return found


@pytest.mark.parametrize("stage", ["Logging in", "Gathering", "Reconciling"])
def test_killed_worker_leaves_the_data_before_or_after(process_runtime: Runtime,
                                                        stage: str) -> None:
    rt = process_runtime
    with rt.db.write() as session:
        client, _ = mx.create_client(session, "k")
        service.create_institution(session, "slowbank", "Slow Bank", "sandbox", {
            "transactions_per_account": PER_ACCOUNT, "latency_seconds": 0.4})
        fields = {c["field_name"]: c["guid"] for c in
                  service.get_institution(session, "slowbank").credentials}
        user = service.create_user(session, client.client_id, {})
        member = service.create_member(session, rt, user, {
            "institution_code": "slowbank", "credentials": [
                {"guid": fields["username"], "value": "mxuser"},
                {"guid": fields["password"], "value": "pw"}]}).guid
    first = service.aggregate(rt, "t", member)
    assert first.job_id is not None
    assert wait_for(rt, first.job_id, lambda j: j.finished_at is not None).status == "succeeded"
    before = _stored(rt, member)
    assert len(before) == 4 * PER_ACCOUNT + 3

    second = service.aggregate(rt, "t", member)
    assert second.started and second.job_id is not None
    running = wait_for(rt, second.job_id,
                    lambda j: (j.progress_message or "").startswith(stage) and
                    j.worker_id is not None)
    os.kill(int(str(running.worker_id).split(":")[1]), signal.SIGKILL)
    assert _stored(rt, member) == before  # the open transaction died with the process
    assert service.being_aggregated_now(rt, member)  # still this job's, until reaped

    done = wait_for(rt, second.job_id, lambda j: j.finished_at is not None, timeout=120)
    assert done.status == "succeeded", done.messages
    assert done.attempt == 2
    after = _stored(rt, member)
    # the sandbox's next view: 3 pending gone, their 3 posted twins and 3 new pending
    assert len(after) == len(before) + 3
    assert sum(i.startswith("posted-0-") for i in after) == 3
    assert not any(i.startswith("pending-0-") for i in after)
    assert (done.counters["transactions_created"], done.counters["transactions_deleted"],
            done.counters["transactions_updated"]) == (6, 3, 0)
    member_row = _member(rt, member)
    assert member_row.connection_status == "CONNECTED" and member_row.generation == 2
    assert not service.being_aggregated_now(rt, member)
