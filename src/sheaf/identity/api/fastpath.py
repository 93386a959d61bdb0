"""The task-status poll on the fast path (``sheaf.fastpath``): clients poll
``GET /{version}/task-status/{id}``, a hundred at a time in issue 10.

Taken here: a valid bearer token of an org-wide task reader. Left to the route: no or a
bad token, an authority the route refuses, a SOURCE_SUBADMIN whose reach needs reading.
"""

from __future__ import annotations

import re

from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from sheaf.auth.deps import api_bucket, bearer, count_request
from sheaf.errors import SheafError
from sheaf.fastpath import FastRoute, header
from sheaf.identity.api import tasks, wire
from sheaf.identity.api.deps import ORG_WIDE_TASK_READERS
from sheaf.jobs import live
from sheaf.runtime import Runtime

# the paths tasks._routes registers for one task's status, from the same VERSIONS ({id}:
# one path segment; the versioned paths' pending-tasks route comes before it)
PATH = re.compile(r"/(?:(?:" + "|".join(map(re.escape, tasks.VERSIONS))
                  + r")/task-status/(?!pending-tasks$)|task-status/v1/)([^/]+)")


def task_status(runtime: Runtime, scope: Scope, found: re.Match[str]) -> Response | None:
    try:
        who = bearer(runtime, header(scope, b"authorization"))
    except SheafError:
        return None  # (the app says why, in the path's dialect)
    if not who.authorities & ORG_WIDE_TASK_READERS:
        return None
    # From here the request is the route's, and so are its errors.
    count_request(runtime, who.client_id, api_bucket(scope["path"]))
    job, source_name = tasks.read_task(runtime, found.group(1), None)
    return JSONResponse(wire.task_status(job, source_name,
                                         live.latest(runtime.settings.data_dir, job)))


ROUTE = FastRoute("GET", PATH, task_status)
