"""The task-status poll, answered before FastAPI's routing and dependency machinery.

Clients poll ``GET /{version}/task-status/{id}`` (a hundred at a time in issue 10), and
for that one read FastAPI's route matching over every route, its dependency solving and
request objects cost several times the read itself (a profile under 100 pollers: the
event loop held the GIL about 70% of the time, the handler 16%). This middleware answers
the common case itself, the same way the route would: same token check, same rate-limit
budget, same Core read, same JSON and error envelopes. Everything else (no or bad token,
an authority the route would refuse, a SOURCE_SUBADMIN whose reach needs reading, a
limiter that waits on the network) goes on to the app, untouched and uncounted, so the
route stays the one place that decides the unusual answers.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sheaf.auth.deps import api_bucket, bearer, count_request
from sheaf.errors import SheafError
from sheaf.identity.api import tasks, wire
from sheaf.identity.api.deps import ORG_WIDE_TASK_READERS
from sheaf.jobs import live
from sheaf.runtime import Runtime

# the paths tasks._routes registers for one task's status, from the same VERSIONS ({id}:
# one path segment; the versioned paths' pending-tasks route comes before it)
PATH = re.compile(r"/(?:(?:" + "|".join(map(re.escape, tasks.VERSIONS))
                  + r")/task-status/(?!pending-tasks$)|task-status/v1/)([^/]+)")


class TaskStatusFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = (PATH.fullmatch(scope["path"])
                 if scope["type"] == "http" and scope["method"] == "GET" else None)
        if found is None:
            await self.app(scope, receive, send)
            return
        try:
            # (In the thread pool, though it is little work: answered on the event loop,
            # the same hundred pollers had a p99 of seconds, not hundreds of ms.)
            response = await run_in_threadpool(self._answer, scope, found.group(1))
        except Exception as exc:  # answered by the app's handler for it, as the route's
            handler = _handler(scope["app"], exc)
            if handler is None:
                raise  # (the app's last resort, outside this middleware, answers it)
            response = await handler(Request(scope), exc)
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def _answer(self, scope: Scope, task_id: str) -> Response | None:
        """The route's answer, or None for the app to give it."""
        runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
        if runtime is None or runtime.limiter.blocking:
            return None
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        try:
            who = bearer(runtime, authorization.decode("latin-1"))
        except SheafError:
            return None  # (the app says why, in the path's dialect)
        if not who.authorities & ORG_WIDE_TASK_READERS:
            return None
        # From here the request is the route's, and so are its errors.
        count_request(runtime, who.client_id, api_bucket(scope["path"]))
        job, source_name = tasks.read_task(runtime, task_id, None)
        return JSONResponse(wire.task_status(job, source_name,
                                             live.latest(runtime.settings.data_dir, job)))


def _handler(app: Starlette, exc: Exception) -> Callable[..., Awaitable[Response]] | None:
    """The app's exception handler for ``exc`` (its nearest class), as Starlette's
    ExceptionMiddleware finds it; not the catch-all, which answers outside."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in app.exception_handlers:
            return app.exception_handlers[cls]  # type: ignore[return-value]
    return None
