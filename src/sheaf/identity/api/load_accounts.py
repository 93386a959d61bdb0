"""load-accounts on every path SailPoint clients use."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from sheaf.auth.tokens import Principal
from sheaf.errors import BadRequest, upload_too_large
from sheaf.identity import service
from sheaf.identity.api import upload, wire
from sheaf.identity.api.deps import administered_source, source_admin
from sheaf.runtime import Runtime, get_runtime

router = APIRouter(tags=["load-accounts"])

PATHS = [
    "/beta/sources/{id}/load-accounts",
    "/v2024/sources/{id}/load-accounts",
    "/v2025/sources/{id}/load-accounts",
    "/v2026/sources/{id}/load-accounts",
    "/sources/v1/{id}/load-accounts",
    "/cc/api/source/loadAccounts/{id}",
]


def _flag(value: Any) -> bool:
    if value is None:
        return False
    text = str(value).strip().lower()
    if text not in ("true", "false", ""):
        raise BadRequest(f"disableOptimization must be 'true' or 'false'; got {value!r}")
    return text == "true"


async def load_accounts(
    id: str,
    request: Request,
    who: Principal = Depends(source_admin),
    _: None = Depends(administered_source),
    runtime: Runtime = Depends(get_runtime),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> JSONResponse:
    """Aggregate a delimited-file source from an uploaded CSV snapshot (multipart `file`,
    optional `disableOptimization`). Answers 202 with the task to follow; an upload cut short
    (no closing boundary, a Content-Length the body does not match, a file ending mid-row)
    is refused with 400 and starts nothing."""
    limit = runtime.settings.identity.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise upload_too_large(limit)  # refused before reading a byte of it
    source = await run_in_threadpool(service.loadable_source, runtime, id)
    received = await upload.receive(request, runtime.blobs, limit,
                                    delimiter=service.file_delimiter(source),
                                    digest=idempotency_key is not None)
    try:
        disable = _flag(received.fields.get("disableOptimization"))
    except BadRequest:
        if received.blob:
            runtime.blobs.delete(received.blob)
        raise
    job = await run_in_threadpool(
        service.load_accounts, runtime, id, received.blob, disable_optimization=disable,
        launcher=who.client_id, idempotency_key=idempotency_key, file_digest=received.digest,
        endpoint=request.scope["route"].path,  # the path template: /v2025/sources/{id}/...
    )
    return JSONResponse(wire.load_accounts_task(job), status_code=202)


for path in PATHS:
    # (the API version in the summary: "Load accounts (v2025)")
    version = "v1" if path.startswith("/sources/v1/") else path.split("/")[1]
    router.add_api_route(path, load_accounts, methods=["POST"], status_code=202,
                         name=f"load_accounts{path.split('/')[1]}",
                         summary=f"Load accounts ({version})")
