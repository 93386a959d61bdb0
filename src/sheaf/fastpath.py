"""The hottest requests, answered before FastAPI's routing and dependency machinery.

A few endpoints are called in a loop by many clients at once: SailPoint's task-status
poll and MX's aggregate (issues 10 and 11). For them FastAPI's route matching over every
route, its dependency solving and request objects cost several times the work itself (a
profile under 100 pollers: the event loop held the GIL about 70% of the time, the handler
16%). This middleware matches those few paths itself and gives each to its domain's
answer, which does what the route does: the same credential check, the same rate-limit
budget, the same service call, the same JSON and error envelopes. An answer returns None
for anything unusual (no or bad credentials, an authority the route would refuse, a
limiter that waits on the network), and the request goes on to the app untouched and
uncounted, so the route stays the one place that decides the unusual answers.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sheaf.runtime import Runtime

# (runtime, ASGI scope, the path's match) -> the route's answer, or None for the app to
# give it; once it has taken the request on (counted it), what it raises is answered by
# the app's handler for that error, as the route's would be
Answer = Callable[[Runtime, Scope, "re.Match[str]"], Response | None]


@dataclass(frozen=True)
class FastRoute:
    method: str
    path: re.Pattern[str]  # matched whole against the (percent-decoded) path
    answer: Answer  # runs in the thread pool
    # Runs first, on the event loop, for the answers that a fraction of a millisecond of
    # CPU and no waiting decide (None: ``answer`` decides). A thread costs little, but 25
    # requests in 25 threads of one process take turns for the GIL 5 ms at a time: the
    # turns, not the work, were the aggregate endpoint's p99.
    quick: Answer | None = None


def header(scope: Scope, name: bytes) -> str:
    """A request header's value ('' when absent); ``name`` in lower case."""
    return next((v for k, v in scope["headers"] if k == name), b"").decode("latin-1")


class FastPaths:
    def __init__(self, app: ASGIApp, routes: Sequence[FastRoute]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
            for route in self.routes:
                found = route.path.fullmatch(scope["path"]) \
                    if scope["method"] == route.method else None
                if found is not None:
                    # (a limiter that waits on the network is the route's to call)
                    if runtime is not None and not runtime.limiter.blocking:
                        await self._serve(runtime, route, found, scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)

    async def _serve(self, runtime: Runtime, route: FastRoute, found: re.Match[str],
                     scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = self._answer(route.quick, runtime, scope, found) if route.quick else None
            if response is None:
                response = await run_in_threadpool(self._answer, route.answer, runtime, scope,
                                                   found)
        except Exception as exc:  # answered by the app's handler for it, as the route's
            handler = _handler(scope["app"], exc)
            if handler is None:
                raise  # (the app's last resort, outside this middleware, answers it)
            response = await handler(Request(scope), exc)
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    @staticmethod
    def _answer(step: Answer, runtime: Runtime, scope: Scope,
                found: re.Match[str]) -> Response | None:
        """One step of a route (its quick one, or its answer); tests watch it here."""
        return step(runtime, scope, found)


def _handler(app: Starlette, exc: Exception) -> Callable[..., Awaitable[Response]] | None:
    """The app's exception handler for ``exc`` (its nearest class), as Starlette's
    ExceptionMiddleware finds it; not the catch-all, which answers outside."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in app.exception_handlers:
            return app.exception_handlers[cls]  # type: ignore[return-value]
    return None
