"""Time-ordered ids: shape, order within a process, uniqueness across processes."""

from __future__ import annotations

import multiprocessing
import os
import re
import time

import pytest

from sheaf.identity.correlation import new_ids
from sheaf.kit import ids
from sheaf.kit.ids import new_id

HEX32 = re.compile(r"[0-9a-f]{32}")


def test_shape_is_32_lower_case_hex_led_by_the_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id()
    after = time.time_ns() // 1_000_000
    assert HEX32.fullmatch(value)
    assert before <= int(value[:12], 16) <= after


def test_strictly_increasing_within_a_process_even_in_one_millisecond() -> None:
    made = [new_id() for _ in range(20_000)]  # thousands share each millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_a_block_for_a_bulk_insert_continues_the_same_sequence() -> None:
    first = new_id()
    block = new_ids(50_000).to_list()
    last = new_id()
    assert all(HEX32.fullmatch(v) for v in block)
    assert block == sorted(block) and len(set(block)) == len(block)
    assert first < block[0] and block[-1] < last
    assert new_ids(0).to_list() == []


def test_a_block_never_carries_out_of_its_low_64_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    sequence = ids._Sequence()
    # Start the millisecond's sequence three short of the low word's end.
    monkeypatch.setattr(ids.secrets, "randbits", lambda bits: (5 << 64) | ((1 << 64) - 3))
    ms, first = sequence.reserve(1)
    _, block = sequence.reserve(10)
    assert block > first
    assert (block & ((1 << 64) - 1)) + 9 <= (1 << 64) - 1  # every id of the block fits


def test_the_clock_stepping_back_does_not_reorder(monkeypatch: pytest.MonkeyPatch) -> None:
    sequence = ids._Sequence()
    now = [1_000_000_000_000_000_000]
    monkeypatch.setattr(ids.time, "time_ns", lambda: now[0])
    a = sequence.reserve(1)
    now[0] -= 5_000_000_000  # five seconds back (an NTP step)
    b = sequence.reserve(1)
    assert b > a


def _make(n: int) -> list[str]:
    return [new_id() for _ in range(n)] + new_ids(n).to_list()


def test_unique_across_processes() -> None:
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        batches = pool.map(_make, [20_000] * 3)
    made = [v for batch in batches for v in batch] + _make(20_000)
    assert len(set(made)) == len(made)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_repeat_its_parents_ids(
        monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = time.time_ns()  # parent and child in the same millisecond, however slow the fork
    monkeypatch.setattr(ids.time, "time_ns", lambda: frozen)
    new_id()  # the parent's sequence is under way when it forks
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child (no polars: its thread pool does not survive a fork)
        os.close(reader)
        os.write(writer, " ".join(new_id() for _ in range(4_000)).encode())
        os._exit(0)
    os.close(writer)
    ours = [new_id() for _ in range(4_000)]
    with os.fdopen(reader) as pipe:
        theirs = pipe.read().split()
    os.waitpid(pid, 0)
    assert len(theirs) == 4_000
    assert not set(ours) & set(theirs)
