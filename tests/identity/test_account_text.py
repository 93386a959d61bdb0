"""Account pages are written out as text (wire.accounts_text): it must be valid JSON of
exactly SailPoint's Account shape, whatever the names, ids and attributes hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sheaf.identity.api import wire

text = st.text(max_size=20)  # (any code point: quotes, backslashes, controls, non-ASCII)
stamps = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1),
                      timezones=st.just(UTC))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8)
owners = st.none() | st.fixed_dictionaries(
    {"type": st.just("IDENTITY"), "id": text}, optional={"name": st.none() | text})
sources = st.none() | st.builds(SimpleNamespace, name=text, authoritative=st.booleans(),
                                owner=owners)
rows = st.builds(
    SimpleNamespace, id=text, name=text, created=stamps, modified=stamps, source_id=text,
    identity_id=st.none() | text, native_identity=text,
    attributes=st.dictionaries(text, json_values, max_size=4).map(
        lambda a: json.dumps(a, ensure_ascii=False, separators=(",", ":"))))


def expected(row: Any, source: Any, identity_name: str | None) -> dict[str, Any]:
    """SailPoint's Account, as sheaf fills it."""
    body = {
        "id": row.id, "name": row.name, "created": wire.ts(row.created),
        "modified": wire.ts(row.modified), "sourceId": row.source_id,
        "sourceName": source.name if source else None, "cloudLifecycleState": None,
        "identityState": None, "connectionType": "file", "type": None,
        "authoritative": bool(source and source.authoritative), "description": None,
        "disabled": False, "locked": False, "nativeIdentity": row.native_identity,
        "systemAccount": False, "uncorrelated": row.identity_id is None, "uuid": None,
        "manuallyCorrelated": False, "hasEntitlements": False,
        "sourceOwner": None, "features": None, "origin": "AGGREGATED",
        "attributes": json.loads(row.attributes),
    }
    if source is not None and source.owner is not None:
        body["sourceOwner"] = {k: v for k, v in source.owner.items() if v is not None}
    if row.identity_id is not None:
        body["identityId"] = row.identity_id
        body["identity"] = {"type": "IDENTITY", "id": row.identity_id}
        if identity_name is not None:
            body["identity"]["name"] = identity_name
    return body


@given(st.lists(st.tuples(rows, sources, st.none() | text), max_size=5))
def test_accounts_text_is_the_account_shape(page: list[tuple[Any, Any, Any]]) -> None:
    written = wire.accounts_text(page)
    assert json.loads(written) == [expected(*entry) for entry in page]
    for entry in page:
        assert wire.account(*entry) == expected(*entry)
