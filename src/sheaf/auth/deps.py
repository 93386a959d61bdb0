"""FastAPI dependencies: who is calling, and may they?"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from sheaf.auth.tokens import Principal, decode
from sheaf.errors import Forbidden, RateLimited, Unauthorized
from sheaf.runtime import Runtime, get_runtime


def api_bucket(path: str) -> str:
    # SailPoint counts per API version: /beta/..., /v2025/..., /sources/v1/...
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "-"
    return parts[1] if len(parts) > 1 and parts[1] == "v1" else parts[0]


def bearer(runtime: Runtime, authorization: str) -> Principal:
    """Who the Authorization header's bearer token says is calling (Unauthorized if none,
    or not valid)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("JWT validation failed: no bearer token in the Authorization header")
    return decode(runtime.settings, token.strip())


def count_request(runtime: Runtime, client: str, bucket: str) -> None:
    """Spend one request of ``client``'s budget for ``bucket`` (RateLimited when it is
    spent). It waits on the network when the limiter does (``limiter.blocking``): on the
    event loop, call ``spend``."""
    wait = runtime.limiter.hit(client, bucket)
    if wait is not None:
        raise RateLimited(wait)


async def spend(runtime: Runtime, client: str, bucket: str) -> None:
    """``count_request`` from a route: only a limiter that waits on the network (Redis)
    gets a thread."""
    if runtime.limiter.blocking:
        await run_in_threadpool(count_request, runtime, client, bucket)
    else:
        count_request(runtime, client, bucket)


async def principal(request: Request, runtime: Runtime = Depends(get_runtime)) -> Principal:
    # Checking a token is a little CPU: it runs on the event loop rather than paying for two
    # thread-pool hops per request; only a limiter that waits on the network gets a thread.
    who = bearer(runtime, request.headers.get("authorization", ""))
    await spend(runtime, who.client_id, api_bucket(request.url.path))
    return who


def require(*authorities: str) -> Callable[..., Awaitable[Principal]]:
    wanted = frozenset(authorities)

    async def check(who: Principal = Depends(principal)) -> Principal:
        if not who.has_any(wanted):
            raise Forbidden(
                "This operation needs one of the authorities "
                f"{', '.join(sorted(wanted))}; the token carries "
                f"{', '.join(sorted(who.authorities)) or 'none'}."
            )
        return who

    return check
