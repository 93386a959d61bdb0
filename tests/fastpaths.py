"""What the fast-path tests share: the app without its fast paths, a record of what the
fast path took on itself, and a comparison of two answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sheaf.app import create_app
from sheaf.fastpath import FastPaths
from sheaf.runtime import Runtime


@pytest.fixture
def plain(runtime: Runtime) -> Iterator[TestClient]:
    """The same app without the fast paths: every request goes through its route."""
    app = create_app(runtime=runtime)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not FastPaths]
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int | str]]:
    """What the fast path took on itself: (the step's name, the response's status or the
    error it raised, which the app's handler for it then answers)."""
    taken: list[tuple[str, int | str]] = []
    answer = FastPaths._answer

    def spy(step: Any, runtime: Any, scope: Any, found: Any) -> Any:
        try:
            response = answer(step, runtime, scope, found)
        except Exception as exc:
            taken.append((step.__name__, type(exc).__name__))
            raise
        if response is not None:
            taken.append((step.__name__, response.status_code))
        return response

    monkeypatch.setattr(FastPaths, "_answer", staticmethod(spy))
    return taken


def same(fast: Any, route: Any, volatile: tuple[str, ...] = ("trackingId",)) -> dict[str, Any]:
    """Assert two answers are the same (but for ``volatile`` top-level keys) and return the
    body."""
    assert fast.status_code == route.status_code, (fast.text, route.text)
    assert fast.headers.get("content-type") == route.headers.get("content-type")
    assert fast.headers.get("retry-after") == route.headers.get("retry-after")
    body, expected = fast.json(), route.json()
    if isinstance(body, dict):
        for key in volatile:
            body.pop(key, None)
            expected.pop(key, None)
    assert body == expected
    return dict(body) if isinstance(body, dict) else {"body": body}
