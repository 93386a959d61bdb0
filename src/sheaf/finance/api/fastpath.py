"""MX's aggregate on the fast path (``sheaf.fastpath``): clients call
``POST /users/{user}/members/{member}/aggregate`` in a loop while aggregations run, and
expect an answer within 50 ms (issue 11).

Quick, on the event loop: a key verified lately, and a member whose answer one SQLite
read decides (an aggregation queued or running, a success too recent). In the thread
pool: the rest of a key that verifies (a job to start, an error to give, a key to check
with scrypt, PostgreSQL, whose reads wait on the network). Left to the route: no key,
or a wrong one.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from sheaf.auth.deps import count_request
from sheaf.errors import SheafError
from sheaf.fastpath import FastRoute, header
from sheaf.finance import service
from sheaf.finance.api.deps import BUCKET, flag, verifier
from sheaf.finance.api.platform import aggregate_answer, aggregated
from sheaf.runtime import Runtime

# the route's path, its two parameters one (percent-decoded) segment each, as Starlette's
PATH = re.compile(r"/users/([^/]+)/members/([^/]+)/aggregate")


def quick(runtime: Runtime, scope: Scope, found: re.Match[str]) -> Response | None:
    if not runtime.db.is_sqlite:
        return None
    client_id = verifier.remembered(header(scope, b"authorization"))
    if client_id is None:
        return None
    request = Request(scope)
    try:  # (the flags start no job here, but a wrong one is the route's 400)
        flag(request, "include_transactions")
        flag(request, "include_holdings")
    except SheafError:
        return None
    done = service.settled(runtime, client_id, found.group(1), found.group(2))
    if done is None:
        return None
    count_request(runtime, client_id, BUCKET)
    return aggregated(done)


def answer(runtime: Runtime, scope: Scope, found: re.Match[str]) -> Response | None:
    client_id = verifier.client_for(runtime.db, header(scope, b"authorization"))
    if client_id is None:
        return None  # (the app says why, in MX's envelope)
    # From here the request is the route's, and so are its errors.
    count_request(runtime, client_id, BUCKET)
    return aggregate_answer(runtime, client_id, found.group(1), found.group(2), Request(scope))


ROUTE = FastRoute("POST", PATH, answer, quick)
