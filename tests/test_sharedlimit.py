"""The rate-limit store the API processes of one server share."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from sheaf.auth import sharedlimit
from sheaf.auth.sharedlimit import SharedRateLimiter


def _store(tmp_path: Path, requests: int, window: float) -> Path:
    path = tmp_path / "limits"
    sharedlimit.create(path, requests)
    return path


def test_a_sliding_window_per_client_and_bucket(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(sharedlimit.time, "monotonic", lambda: now[0])
    limiter = SharedRateLimiter(_store(tmp_path, 3, 10), 3, 10)
    assert [limiter.hit("a", "v3") for _ in range(3)] == [None, None, None]
    assert limiter.hit("a", "v3") == 10  # the oldest of the three leaves in 10 s
    assert limiter.hit("a", "beta") is None  # another API version: another budget
    assert limiter.hit("b", "v3") is None  # another client
    now[0] += 4
    assert limiter.hit("a", "v3") == 6
    now[0] += 6  # the first three are out of the window
    assert [limiter.hit("a", "v3") for _ in range(3)] == [None, None, None]
    assert limiter.hit("a", "v3") == 10


def test_check_answers_like_hit_without_recording(tmp_path: Path) -> None:
    limiter = SharedRateLimiter(_store(tmp_path, 2, 60), 2, 60)
    assert limiter.check("new", "-") is None  # (no slot taken for a mere check)
    assert [limiter.check("a", "-") for _ in range(5)] == [None] * 5
    limiter.hit("a", "-")
    limiter.hit("a", "-")
    assert limiter.check("a", "-") == 60
    assert limiter.hit("a", "-") == 60


def test_two_views_of_one_store_share_the_budget(tmp_path: Path) -> None:
    path = _store(tmp_path, 5, 60)
    one, two = SharedRateLimiter(path, 5, 60), SharedRateLimiter(path, 5, 60)
    results = [(one if n % 2 else two).hit("c", "v2025") for n in range(10)]
    assert results.count(None) == 5
    one.close()
    two.close()


def test_quiet_clients_slots_are_reused_and_a_full_table_lets_requests_through(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [50.0]
    monkeypatch.setattr(sharedlimit.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(sharedlimit, "MAX_BYTES", 1)  # the smallest table: 16 slots
    limiter = SharedRateLimiter(_store(tmp_path, 1, 10), 1, 10)
    assert all(limiter.hit(f"client{n}", "v3") is None for n in range(16))
    assert limiter.hit("client3", "v3") == 10  # still counted
    assert limiter.hit("one-too-many", "v3") is None  # no slot: let through, not refused
    now[0] += 11  # everyone quiet for a window: their slots are free again
    assert all(limiter.hit(f"new{n}", "v3") is None for n in range(16))
    assert limiter.hit("new7", "v3") == 10


def test_limiters_with_their_own_budgets_share_a_store_apart(tmp_path: Path) -> None:
    path = _store(tmp_path, 5, 60)
    requests = SharedRateLimiter(path, 5, 60, prefix="ratelimit:")
    sign_ins = SharedRateLimiter(path, 2, 60, prefix="sign-in:")
    assert [sign_ins.hit("c", "-") for _ in range(3)][2] is not None  # 2 a window
    assert [requests.hit("c", "-") for _ in range(5)] == [None] * 5  # its own 5 left


def test_a_store_made_for_a_smaller_budget_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SharedRateLimiter(_store(tmp_path, 5, 60), 50, 60)


def _spend(path: str) -> int:
    limiter = SharedRateLimiter(Path(path), 200, 600)
    return sum(limiter.hit("shared", "v3") is None for _ in range(300))


def test_processes_racing_grant_exactly_the_budget(tmp_path: Path) -> None:
    path = _store(tmp_path, 200, 600)
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        granted = pool.map(_spend, [str(path)] * 3)
    assert sum(granted) == 200


def test_a_reserved_hit_given_back_leaves_the_others(tmp_path: Path) -> None:
    # (sign-in attempts take a place before the secret is checked and give it back when
    # the secret was right: only that one hit goes, the ring keeps its order)
    limiter = SharedRateLimiter(_store(tmp_path, 3, 60), 3, 60)
    assert limiter.hit("c", "b") is None
    wait, handle = limiter.reserve("c", "b")
    assert wait is None
    assert limiter.hit("c", "b") is None
    assert limiter.check("c", "b") is not None  # full: 3 of 3
    limiter.give_back("c", "b", handle)
    assert limiter.check("c", "b") is None  # 2 of 3
    limiter.give_back("c", "b", handle)  # (given back already: nothing more goes)
    assert limiter.hit("c", "b") is None
    assert limiter.hit("c", "b") is not None
    limiter.give_back("other", "b", handle)  # an unknown client: no effect, no error
