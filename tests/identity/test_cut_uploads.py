"""An upload cut short is refused with 400 before any task exists, and nothing changes:
a body without its closing boundary, a Content-Length the body does not match, a file part
that ends mid-row, a connection closed mid-body. A complete file is still accepted."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from sheaf.app import create_app
from sheaf.runtime import Runtime
from tests.identity.test_bad_input import (
    HEADER,
    THREE,
    Headers,
    Load,
    assert_error_dto,
    assert_unchanged_and_serving,
    seeded,
    stored,
    task_count,
)

BOUNDARY = "sheafTestBoundary7MA4YWxk"


def part(name: str, data: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
            + ("Content-Type: text/csv\r\n" if filename else "") + "\r\n").encode() + data + b"\r\n"


def body_of(data: bytes, *, closed: bool = True) -> bytes:
    body = part("disableOptimization", b"false") + part("file", data, "accounts.csv")
    return body + (f"--{BOUNDARY}--\r\n".encode() if closed else b"")


def post_raw(client: TestClient, auth: Headers, source_id: str, body: bytes,
             **headers: str) -> Any:
    return client.post(
        f"/v2025/sources/{source_id}/load-accounts", content=body,
        headers={**auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **headers})


def assert_refused(response: Any, phrase: str, client: TestClient, auth: Headers, load: Load,
                   source_id: str, before: dict[str, dict[str, Any]], runtime: Runtime) -> None:
    body = assert_error_dto(response, 400)
    assert phrase in body["messages"][0]["text"], body
    assert task_count(client, auth) == 1  # only the seeding load: no task was created
    assert [p.name for p in runtime.blobs.root.iterdir() if p.name.endswith(".part")] == []
    assert_unchanged_and_serving(client, auth, load, source_id, before)


# A snapshot cut before its last account: taken as whole, a2 and a3 would be deleted.
CUT = (HEADER + "a1,Ann,ann@x.org,Eng\n").encode()


@pytest.mark.parametrize("body", [
    body_of(CUT, closed=False),  # no closing boundary at all
    body_of(CUT, closed=False) + f"--{BOUNDARY}".encode(),  # the boundary, but not its end
    body_of(CUT, closed=False)[:-2],  # cut in the part's data
    part("file", b"", "accounts.csv")[:40],  # cut inside the part's headers
])
def test_a_multipart_body_without_its_closing_boundary_is_400(
    body: bytes, client: TestClient, auth: Headers, make_source: Callable[..., dict[str, Any]],
    load: Load, runtime: Runtime,
) -> None:
    source_id, before = seeded(client, auth, make_source, load)
    response = post_raw(client, auth, source_id, body)
    assert_refused(response, "cut short", client, auth, load, source_id, before, runtime)


@pytest.mark.parametrize("delta", [-7, 1, 1000])
def test_a_content_length_the_body_does_not_match_is_400(
    delta: int, client: TestClient, auth: Headers, make_source: Callable[..., dict[str, Any]],
    load: Load, runtime: Runtime,
) -> None:
    source_id, before = seeded(client, auth, make_source, load)
    body = body_of(THREE.encode())
    response = post_raw(client, auth, source_id, body, **{"Content-Length": str(len(body) + delta)})
    assert_refused(response, "Content-Length", client, auth, load, source_id, before, runtime)


MID_ROW = {
    "cut inside a field": HEADER + "a1,Ann,ann@x.org,Eng\na2,Bob,bob@",
    "cut after a delimiter": HEADER + "a1,Ann,ann@x.org,Eng\na2,Bob,",
    "cut inside a quoted field": HEADER + 'a1,Ann,ann@x.org,Eng\na2,Bob,"bob@x.org,Ops\n',
    "cut inside a quoted field, no line break": HEADER + 'a1,Ann,ann@x.org,Eng\na2,Bob,"bob@',
    "cut after a quoted newline": HEADER + 'a1,"Ann\nSmith",ann@x.org,Eng\na2,"Bob\nJones",b',
}


@pytest.mark.parametrize("name", list(MID_ROW))
def test_a_file_part_that_ends_mid_row_is_400(
    name: str, client: TestClient, auth: Headers, make_source: Callable[..., dict[str, Any]],
    load: Load, runtime: Runtime,
) -> None:
    source_id, before = seeded(client, auth, make_source, load)
    data = MID_ROW[name].encode()
    if data.endswith(b"\n"):  # an open quote with a line break: the task names the line
        task = load(source_id, data)
        assert task["completionStatus"] == "ERROR"
        assert "never closed" in task["messages"][0]["localizedText"]["message"]
        assert_unchanged_and_serving(client, auth, load, source_id, before)
        return
    response = post_raw(client, auth, source_id, body_of(data))
    assert_refused(response, "ends in the middle of a row", client, auth, load, source_id,
                   before, runtime)
    line = 4 if "quoted newline" in name else 3  # where the unfinished record starts
    assert f"line {line}: " in response.json()["messages"][0]["text"]


@pytest.mark.parametrize("data, accounts", [
    (THREE.rstrip("\n"), 3),
    (HEADER + 'a1,"Ann\nSmith",ann@x.org,Eng\na2,Bob,bob@x.org,"Ops"\r\na3,Cy,"cy@x.org",HR', 3),
    (HEADER + "a1,Ann,ann@x.org,Eng\na2,Bob,bob@x.org,Ops\r", 2),
    (HEADER + 'a1,Ann,ann@x.org,Eng\na2,5" disk,bob@x.org,Ops', 2),  # a quote as plain text
])
def test_a_complete_last_line_without_a_line_break_is_accepted(
    data: str, accounts: int, client: TestClient, auth: Headers,
    make_source: Callable[..., dict[str, Any]],
) -> None:
    source_id = make_source()["id"]
    response = post_raw(client, auth, source_id, body_of(data.encode()))
    assert response.status_code == 202, response.text
    task = client.get(f"/v2025/task-status/{response.json()['task']['id']}", headers=auth).json()
    assert task["completionStatus"] == "SUCCESS", task["messages"]
    assert len(stored(client, auth, source_id)) == accounts


# --- through a real server: the client goes away mid-body -------------------------------

@pytest.fixture
def server(runtime: Runtime) -> Iterator[tuple[str, int]]:
    """The app under uvicorn on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(runtime=runtime), log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield sock.getsockname()
    srv.should_exit = True
    thread.join(10)
    sock.close()


def test_a_connection_closed_mid_body_changes_nothing(
    server: tuple[str, int], client: TestClient, auth: Headers,
    make_source: Callable[..., dict[str, Any]], load: Load, runtime: Runtime,
) -> None:
    source_id, before = seeded(client, auth, make_source, load)
    body = body_of(THREE.encode())
    head = (f"POST /v2025/sources/{source_id}/load-accounts HTTP/1.1\r\n"
            f"Host: {server[0]}:{server[1]}\r\nAuthorization: {auth['Authorization']}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(server, timeout=10) as conn:
        conn.sendall(head + body[: len(body) // 2])
        time.sleep(0.3)  # the server has started streaming the file part into a blob
        conn.shutdown(socket.SHUT_WR)
        try:
            answer = conn.recv(65536)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/1.1 2"), answer
    deadline = time.monotonic() + 5  # the server notices the close on its own time
    while [p for p in runtime.blobs.root.iterdir() if p.name.endswith(".part")]:
        assert time.monotonic() < deadline, list(runtime.blobs.root.iterdir())
        time.sleep(0.05)
    assert task_count(client, auth) == 1
    assert_unchanged_and_serving(client, auth, load, source_id, before)


def test_the_mid_row_check_splits_with_the_source_delimiter(
    client: TestClient, auth: Headers, make_source: Callable[..., dict[str, Any]],
    load: Load, runtime: Runtime,
) -> None:
    source_id = make_source(connectorAttributes={"delimiter": ";"})["id"]
    whole = THREE.replace(",", ";")
    assert load(source_id, whole)["completionStatus"] == "SUCCESS"
    before = stored(client, auth, source_id)
    response = post_raw(client, auth, source_id, body_of(whole.encode() + b"a4;Di"))
    body = assert_error_dto(response, 400)
    assert "line 5: 2 fields where the header has 4" in body["messages"][0]["text"], body
    response = post_raw(client, auth, source_id, body_of(whole.encode() + b"a4;Di;d@x;Ops"))
    assert response.status_code == 202, response.text
    assert set(stored(client, auth, source_id)) == set(before) | {"a4"}


@pytest.mark.parametrize("data", [
    b"", b"\xef\xbb\xbf", b'"', b"\r", b"id", b'\xef\xbb\xbf"', b"\x00", b"\xff\xfe",
    b'id,name\n"', b"id,name\r\n\r\n", b'"id","name"', b"\xef\xbb\xbfid,name\na",
])
def test_a_tiny_odd_file_is_a_400_or_a_failed_task_never_a_crash(
    data: bytes, client: TestClient, auth: Headers, make_source: Callable[..., dict[str, Any]],
    runtime: Runtime,
) -> None:
    source_id = make_source()["id"]
    response = post_raw(client, auth, source_id, body_of(data))
    if response.status_code == 400:
        body = assert_error_dto(response, 400)
        assert "ends in the middle of a row" in body["messages"][0]["text"]
        return
    assert response.status_code == 202, response.text
    task_id = response.json()["task"]["id"]
    task = client.get(f"/v2025/task-status/{task_id}", headers=auth).json()
    assert task["completionStatus"] == "ERROR", task
    job = runtime.jobs.get(task_id)
    assert job is not None and job.attempt == 1 and job.error_code == "invalid_file"


@pytest.mark.parametrize("headers", [
    {"Content-Type": "", "Content-Length": "abc"},
    {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Content-Length": "x1"},
])
def test_a_malformed_content_length_is_not_a_crash(
    headers: Headers, client: TestClient, auth: Headers,
    make_source: Callable[..., dict[str, Any]],
) -> None:
    source_id = make_source()["id"]
    response = client.post(f"/v2025/sources/{source_id}/load-accounts",
                           content=body_of(THREE.encode()), headers={**auth, **headers})
    assert response.status_code in (202, 400), response.text
