"""Deep account pages start from remembered keys (identity/api/anchors.py) and are the
same pages OFFSET gives, before and after a reload changes the source's accounts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sheaf.identity import snapshots
from sheaf.identity.api import anchors
from sheaf.identity.api.accounts import ANCHORS
from sheaf.identity.models import Source
from sheaf.runtime import Runtime
from tests.fixtures.database import PG_URL

STEP = 7  # (small, so a hundred accounts span many positions)


def csv(names: list[str]) -> str:
    return "id,name\n" + "".join(f"{n},User {n}\n" for n in names)


def test_anchored_pages_equal_offset_pages_across_reloads(
    client: TestClient, auth: dict[str, str], make_source: Callable[..., dict[str, Any]],
    load: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(anchors, "STEP", STEP)
    monkeypatch.setattr(ANCHORS, "_keys", {})
    source, other = make_source("Deep"), make_source("Other")
    load(other["id"], csv([f"o{i:03}" for i in range(30)]))

    def pages(offset: int, limit: int, anchored: bool) -> tuple[list[str], str | None]:
        params = {"filters": f'sourceId eq "{source["id"]}"', "offset": str(offset),
                  "limit": str(limit), "count": "true"}
        if not anchored:  # (an explicit sort of the same order takes the plain path)
            params["sorters"] = "sourceId,nativeIdentity"
        got = client.get("/v3/accounts", params=params, headers=auth)
        assert got.status_code == 200, got.text
        return [a["nativeIdentity"] for a in got.json()], got.headers.get("x-total-count")

    def check(total: int) -> None:
        for offset in [0, 1, STEP - 1, STEP, STEP + 1, 3 * STEP, total - 1, total, total + 1,
                       total + 5 * STEP, *range(0, total + 2 * STEP, 5)]:
            for limit in (1, 4, STEP + 3, 250):
                anchored = pages(offset, limit, True)
                assert anchored == pages(offset, limit, False), (offset, limit)
                assert anchored[1] == str(total)

    first = [f"u{i:03}" for i in range(0, 200, 2)]  # 100 accounts
    load(source["id"], csv(first))
    pages(5 * STEP, 1, True)  # (the keys up to position 5)
    with ANCHORS._lock:  # another thread is looking further: start from what is known
        check(100)
    check(100)
    assert len(ANCHORS._keys) == 1
    # a reload adds accounts between the remembered keys and removes others: new
    # positions for the new generation, never the old ones
    second = [f"u{i:03}" for i in range(1, 200, 3)] + first[:40]
    load(source["id"], csv(second))
    check(len(set(second)))
    whole, _ = pages(0, 250, True)
    assert whole == sorted(set(second))


def test_only_a_single_source_filter_uses_the_keys() -> None:
    assert anchors.one_source('sourceId eq "abc"') == "abc"
    assert anchors.one_source(' sourceId  eq "abc" ') == "abc"
    for other in (None, "", 'sourceId eq "a" and name eq "b"', 'sourceId in ("a")',
                  'sourceid eq "a"', 'sourceId eq "a\\"b"', 'name eq "a"'):
        assert anchors.one_source(other) is None


def test_pages_start_from_the_keys_the_aggregation_wrote(
    client: TestClient, auth: dict[str, str], make_source: Callable[..., dict[str, Any]],
    load: Callable[..., dict[str, Any]], runtime: Runtime, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The load writes every 1,000th id in SQLite's byte order beside its snapshot; a
    server reads them instead of finding them (unsorted file, mixed case, non-ASCII)."""
    monkeypatch.setattr(ANCHORS, "_keys", {})
    source = make_source("Written")
    names = [f"{p}{i:04}" for i in range(830) for p in ("b", "A", "é")][::-1]  # 2,490
    load(source["id"], csv(names))
    with runtime.db.read() as session:
        generation = session.get(Source, source["id"]).snapshot_generation
    written = snapshots.page_keys(runtime.settings.data_dir, source["id"], generation,
                                  anchors.STEP)
    if PG_URL is None:
        ordered = sorted(names, key=str.encode)
        assert written == ordered[::anchors.STEP]
    for offset in (1000, 999, 1001, 2000, 2489, 2490, 5000):
        params = {"filters": f'sourceId eq "{source["id"]}"', "offset": str(offset),
                  "limit": "3"}
        anchored = client.get("/v3/accounts", params=params, headers=auth)
        plain = client.get("/v3/accounts", headers=auth,
                           params={**params, "sorters": "sourceId,nativeIdentity"})
        assert anchored.status_code == plain.status_code == 200
        assert anchored.json() == plain.json(), offset
        if offset == 1000 and PG_URL is None:
            # every key at once, from the file (found query by query, the first deep
            # page would have looked no further than its own)
            assert ANCHORS._keys[(source["id"], generation)] == (written, True)
