"""Bad input to load-accounts: each is refused with a precise, observable answer, the
stored accounts stay exactly as they were, and the server keeps serving afterwards."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sheaf.identity.models import Source, SourceSchema
from sheaf.kit.base import new_id
from sheaf.runtime import Runtime

HEADER = "id,name,email,department\n"
THREE = HEADER + "a1,Ann,ann@x.org,Eng\na2,Bob,bob@x.org,Ops\na3,Cy,cy@x.org,HR\n"
MIB = 1 << 20
LIMIT = 1024  # max_field_bytes in the test settings

Load = Callable[..., dict[str, Any]]
Headers = dict[str, str]


# --- helpers ---------------------------------------------------------------------------

def stored(client: TestClient, auth: Headers, source_id: str) -> dict[str, dict[str, Any]]:
    """nativeIdentity -> attributes of every stored account of the source."""
    response = client.get("/v3/accounts", headers=auth,
                          params={"filters": f'sourceId eq "{source_id}"'})
    assert response.status_code == 200, response.text
    return {a["nativeIdentity"]: a["attributes"] for a in response.json()}


def seeded(client: TestClient, auth: Headers, make_source: Callable[..., dict[str, Any]],
           load: Load) -> tuple[str, dict[str, dict[str, Any]]]:
    """A source holding the good 3-account snapshot, and what is stored for it."""
    source_id = make_source()["id"]
    assert load(source_id, THREE)["completionStatus"] == "SUCCESS"
    before = stored(client, auth, source_id)
    assert set(before) == {"a1", "a2", "a3"}
    return source_id, before


def assert_unchanged_and_serving(client: TestClient, auth: Headers, load: Load,
                                 source_id: str, before: dict[str, dict[str, Any]]) -> None:
    """Nothing stored changed, and a later good load still works."""
    assert stored(client, auth, source_id) == before
    task = load(source_id, THREE + "a4,Di,di@x.org,Eng\n")
    assert task["completionStatus"] == "SUCCESS", task["messages"]
    assert task["attributes"]["created"] == 1
    assert set(stored(client, auth, source_id)) == {"a1", "a2", "a3", "a4"}


def task_count(client: TestClient, auth: Headers) -> int:
    response = client.get("/v2025/task-status", headers=auth)
    assert response.status_code == 200, response.text
    return len(response.json())


def text_of(task: dict[str, Any]) -> str:
    return " | ".join(m["localizedText"]["message"] for m in task["messages"])


def line_numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\bline (\d+)", text)]


def assert_error_dto(response: Any, status: int) -> dict[str, Any]:
    """The response is SailPoint's ErrorResponseDto with the given status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detailCode", "trackingId", "messages", "causes"}, body
    assert isinstance(body["detailCode"], str) and body["detailCode"].startswith(str(status))
    assert re.fullmatch(r"[0-9a-f]{32}", body["trackingId"]), body["trackingId"]
    assert body["messages"] and all(
        set(m) == {"locale", "localeOrigin", "text"} and isinstance(m["text"], str) and m["text"]
        for m in body["messages"])
    assert isinstance(body["causes"], list)
    return dict(body)


def post_file(client: TestClient, auth: Headers, source_id: str, data: bytes,
              **form: str) -> Any:
    return client.post(f"/v2025/sources/{source_id}/load-accounts", headers=auth,
                       files={"file": ("accounts.csv", data, "text/csv")}, data=form)


# --- bad file contents: the task ends in ERROR naming the line --------------------------

QUOTED_NEWLINE = HEADER + 'a1,"Ann\nSmith",ann@x.org,Eng\n'  # lines 2-3

BAD_FILES: dict[str, tuple[bytes, str, list[int]]] = {
    # name: (file, a phrase the message must contain, line numbers it must name)
    "no id column": (b"name,email\nAnn,ann@x.org\n", "no column 'id'", []),
    "latin-1": ((HEADER + "a1,Ann,ann@x.org,Eng\n").encode()
                + "a2,Jos\xe9,jose@x.org,Ops\n".encode("latin-1"), "not UTF-8", [3]),
    "unterminated quote": (
        (HEADER + 'a1,Ann,ann@x.org,Eng\na2,"Bob,bob@x.org,Ops\na3,Cy,cy@x.org,HR\n').encode(),
        "never closed", [3]),
    "too many fields": ((HEADER + "a1,Ann,ann@x.org,Eng\na2,Bob,bob@x.org,Ops,extra\n").encode(),
                        "5 fields where the header has 4", [3]),
    "too few fields": ((HEADER + "a1,Ann,ann@x.org,Eng\na2,Bob,bob@x.org,Ops\na3,Cy\n").encode(),
                       "2 fields where the header has 4", [4]),
    "too few fields, repeated account": (
        (HEADER + "a1,Ann,ann@x.org,Eng\na1,Ann\n").encode(),
        "2 fields where the header has 4", [3]),
    "field over the limit": (
        (HEADER + "a1,Ann,ann@x.org,Eng\na2,Bob," + "b" * (LIMIT + 1) + ",Ops\n").encode(),
        f"longer than the limit of {LIMIT} bytes", [3]),
    "empty file": (b"", "empty", []),
    "header only": (HEADER.encode(), "no accounts", []),
    "too many fields after a quoted newline": (
        (QUOTED_NEWLINE + "a2,Bob,bob@x.org,Ops,extra\n").encode(),
        "5 fields where the header has 4", [4]),
    "field over the limit after a quoted newline": (
        (QUOTED_NEWLINE + "a2,Bob,bob@x.org,Ops\na3,Cy," + "c" * (LIMIT + 1) + ",HR\n").encode(),
        f"longer than the limit of {LIMIT} bytes", [5]),
    "latin-1 after a quoted newline": (
        QUOTED_NEWLINE.encode() + "a2,Jos\xe9,jose@x.org,Ops\n".encode("latin-1"),
        "not UTF-8", [4]),
    "field over the limit after a blank line": (
        (HEADER + "a1,Ann,ann@x.org,Eng\n\na2,Bob," + "b" * (LIMIT + 1) + ",Ops\n").encode(),
        f"longer than the limit of {LIMIT} bytes", [4]),
    # Python's csv module refuses a field over 128 KiB unless told otherwise
    "field over 128 KiB": (
        (HEADER + "a1,Ann,ann@x.org,Eng\na2,Bob," + "b" * (200 << 10) + ",Ops\n").encode(),
        f"longer than the limit of {LIMIT} bytes", [3]),
    "quoted field over 128 KiB": (
        (QUOTED_NEWLINE + 'a2,Bob,"' + "b" * (200 << 10) + '",Ops\n').encode(),
        f"longer than the limit of {LIMIT} bytes", [4]),
    # a quote opened in the last column swallows the rest of the file with the right
    # field count: Arrow reads it as one long value
    "quote never closed in the last column": (
        (HEADER + 'a1,Ann,ann@x.org,"Eng\na2,Bob,bob@x.org,Ops\n').encode(),
        "never closed", [2]),
    "quote never closed, opened on the record's second line": (
        (HEADER + 'a1,"Ann\nSmith",ann@x.org,"Eng\na2,Bob,bob@x.org,Ops\n').encode(),
        "never closed", [3]),
    "text after a closing quote": (
        (HEADER + 'a1,Ann,ann@x.org,Eng\na2,"Bob"by,bob@x.org,Ops\n').encode(),
        "after its closing quote", [3]),
    "text after a closing quote, after a quoted newline": (
        (QUOTED_NEWLINE + 'a2,Bob,"bob@x.org" ,Ops\n').encode(),
        "after its closing quote", [4]),
    "NUL bytes": ((HEADER + "a1,Ann,ann@x.org,Eng\na2,B\x00b,bob@x.org,Ops\n").encode(),
                  "NUL bytes", [3]),
    "a one-line JSON file": (
        b'[{"id": "a1", "name": "Ann"}, {"id": "a2", "name": "Bob"}]', "JSON", []),
    "a JSON object": (b'{"accounts": [{"id": "a1"}]}\n', "JSON", []),
    "UTF-16 without a byte order mark": (THREE.encode("utf-16-le"), "UTF-16", []),
    "UTF-16 big-endian without a byte order mark": (THREE.encode("utf-16-be"), "UTF-16", []),
    "UTF-16 with a byte order mark": (THREE.encode("utf-16"), "UTF-16", []),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_fails_the_task_and_changes_nothing(
    name: str, client: TestClient, auth: Headers, make_source: Callable[..., dict[str, Any]],
    load: Load, runtime: Runtime,
) -> None:
    data, phrase, lines = BAD_FILES[name]
    source_id, before = seeded(client, auth, make_source, load)
    task = load(source_id, data)
    assert task["completionStatus"] == "ERROR", task
    message = text_of(task)
    assert task["messages"][0]["type"] == "ERROR"
    assert phrase in message, message
    assert line_numbers(message) == lines, message
    job = runtime.jobs.get(task["id"])
    assert job is not None and job.attempt == 1, "a bad file is not retried"
    assert job.error_code == "invalid_file", job.error_code
    assert_unchanged_and_serving(client, auth, load, source_id, before)


def test_utf8_bom_is_read_and_the_id_column_found(
    client: TestClient, auth: Headers, make_source: Callable[..., dict[str, Any]], load: Load,
) -> None:
    source_id = make_source()["id"]
    task = load(source_id, b"\xef\xbb\xbf" + THREE.encode())
    assert task["completionStatus"] == "SUCCESS", text_of(task)
    accounts = stored(client, auth, source_id)
    assert set(accounts) == {"a1", "a2", "a3"}
    assert accounts["a1"] == {"id": "a1", "name": "Ann", "email": "ann@x.org",
                              "department": "Eng"}


def test_header_column_not_in_schema_fails_the_task(
    client: TestClient, auth: Headers, make_source: Callable[..., dict[str, Any]], load: Load,
) -> None:
    source_id, before = seeded(client, auth, make_source, load)
    schema = client.get(f"/v3/sources/{source_id}/schemas", headers=auth).json()[0]
    assert [a["name"] for a in schema["attributes"]] == ["id", "name", "email", "department"]
    task = load(source_id, "id,name,email,department,title\na1,Ann,ann@x.org,Eng,Boss\n")
    assert task["completionStatus"] == "ERROR"
    assert "not in the source's account schema: title" in text_of(task)
    assert_unchanged_and_serving(client, auth, load, source_id, before)


def test_file_missing_schema_columns_fails_the_task_naming_them(
    client: TestClient, auth: Headers, make_source: Callable[..., dict[str, Any]], load: Load,
) -> None:
    source_id, before = seeded(client, auth, make_source, load)
    task = load(source_id, "id,name\na1,Ann\na2,Bob\na3,Cy\n")
    assert task["completionStatus"] == "ERROR", task
    message = text_of(task)
    assert "has no column for these attributes of the source's account schema: email, " \
        "department" in message, message
    assert "schema" in message and "first" in message, message  # how to drop a column
    assert_unchanged_and_serving(client, auth, load, source_id, before)
    # the columns in another order are the same columns
    task = load(source_id, "department,email,name,id\nEng,ann@x.org,Ann,a1\n")
    assert task["completionStatus"] == "SUCCESS", text_of(task)


@pytest.mark.parametrize("content, lines", [
    (HEADER + "a1,Ann,ann@x.org,Eng\n,Nobody,no@x.org,Ops\na2,Bob,bob@x.org,Ops\n", [3]),
    (QUOTED_NEWLINE + "a2,Bob,bob@x.org,Ops\n,Nobody,no@x.org,Ops\n", [5]),
])
def test_blank_account_id_is_ignored_with_a_warning_naming_the_line(
    content: str, lines: list[int], client: TestClient, auth: Headers,
    make_source: Callable[..., dict[str, Any]], load: Load,
) -> None:
    source_id = make_source()["id"]
    task = load(source_id, content)
    assert task["completionStatus"] == "WARNING"
    assert task["messages"][0]["type"] == "WARN"
    assert task["attributes"]["ignored"] == 1
    named = re.search(r"\(lines ([\d, ]+)\)", text_of(task))
    assert named is not None, text_of(task)
    assert named.group(1) == ", ".join(map(str, lines)), text_of(task)
    assert set(stored(client, auth, source_id)) == {"a1", "a2"}


# --- bad requests: refused before any task is created ---------------------------------

def test_upload_over_the_maximum_size_is_413(
    client: TestClient, auth: Headers, make_source: Callable[..., dict[str, Any]], load: Load,
) -> None:
    source_id, before = seeded(client, auth, make_source, load)
    just_over = (THREE + "#" * MIB).encode()[: MIB + 1]
    far_over = THREE.encode() + b"#" * (3 * MIB)
    for data in (just_over, far_over):
        body = assert_error_dto(post_file(client, auth, source_id, data), 413)
        assert str(MIB) in body["messages"][0]["text"]
    assert task_count(client, auth) == 1  # only the seeding load
    assert_unchanged_and_serving(client, auth, load, source_id, before)


def exactly(size: int) -> tuple[bytes, int]:
    """A valid snapshot of exactly ``size`` bytes (padding in the last department), and
    how many accounts it holds."""
    row = "u{:06d},User {:06d},u{:06d}@x.org,Eng\n"
    count = (size - len(HEADER)) // len(row.format(0, 0, 0))
    data = (HEADER + "".join(row.format(i, i, i) for i in range(count))).encode()
    pad = size - len(data)
    assert 0 <= pad <= LIMIT - 3
    return data[:-1] + b"x" * pad + b"\n", count


def test_upload_of_exactly_the_maximum_size_is_accepted(
    client: TestClient, auth: Headers, make_source: Callable[..., dict[str, Any]], load: Load,
) -> None:
    source_id = make_source()["id"]
    data, count = exactly(MIB)
    assert len(data) == MIB
    task = load(source_id, data)
    assert task["completionStatus"] == "SUCCESS", text_of(task)
    assert task["attributes"]["created"] == count


def test_unknown_source_is_404(
    client: TestClient, auth: Headers, make_source: Callable[..., dict[str, Any]], load: Load,
) -> None:
    source_id, before = seeded(client, auth, make_source, load)
    missing = "0" * 32
    body = assert_error_dto(post_file(client, auth, missing, THREE.encode()), 404)
    assert missing in body["messages"][0]["text"]
    assert task_count(client, auth) == 1
    assert_unchanged_and_serving(client, auth, load, source_id, before)


def test_creating_a_source_of_another_kind_is_400(client: TestClient, auth: Headers) -> None:
    response = client.post("/v3/sources", headers=auth,
                           json={"name": "Directory", "connector": "active-directory"})
    body = assert_error_dto(response, 400)
    assert "active-directory" in body["messages"][0]["text"]
    listed = client.get("/v3/sources", headers=auth)
    assert listed.json() == []


def test_loading_into_a_source_of_another_kind_is_400(
    client: TestClient, auth: Headers, runtime: Runtime,
) -> None:
    source_id = new_id()  # such a source can only come from the database
    with runtime.db.write() as session:
        session.add(Source(id=source_id, name="Directory", connector="active-directory",
                           connector_attributes={}, correlation=[]))
        session.flush()
        session.add(SourceSchema(source_id=source_id, identity_attribute="id",
                                 display_attribute="name", attributes=[]))
    body = assert_error_dto(post_file(client, auth, source_id, THREE.encode()), 400)
    assert "delimited-file" in body["messages"][0]["text"]
    assert stored(client, auth, source_id) == {}


@pytest.mark.parametrize("value", ["maybe", "yes", "1"])
def test_disable_optimization_must_be_true_or_false(
    value: str, client: TestClient, auth: Headers,
    make_source: Callable[..., dict[str, Any]], load: Load,
) -> None:
    source_id, before = seeded(client, auth, make_source, load)
    response = post_file(client, auth, source_id, THREE.encode(), disableOptimization=value)
    body = assert_error_dto(response, 400)
    assert "disableOptimization" in body["messages"][0]["text"]
    assert task_count(client, auth) == 1
    assert_unchanged_and_serving(client, auth, load, source_id, before)


def test_missing_file_part_is_400(
    client: TestClient, auth: Headers, make_source: Callable[..., dict[str, Any]], load: Load,
) -> None:
    source_id, before = seeded(client, auth, make_source, load)
    url = f"/v2025/sources/{source_id}/load-accounts"
    attempts = [
        client.post(url, headers=auth),  # no body at all
        client.post(url, headers=auth, data={"disableOptimization": "true"}),  # urlencoded
        client.post(url, headers=auth, data={"disableOptimization": "true"},  # multipart
                    files={"attachment": ("a.csv", THREE.encode(), "text/csv")}),
    ]
    for response in attempts:
        body = assert_error_dto(response, 400)
        assert "'file'" in body["messages"][0]["text"]
    assert task_count(client, auth) == 1
    assert_unchanged_and_serving(client, auth, load, source_id, before)
