"""POST /oauth/token: client_credentials, from form fields or query parameters."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from sheaf.auth import credentials, tokens
from sheaf.runtime import Runtime, get_runtime

router = APIRouter(tags=["auth"])


@router.post("/oauth/token", summary="Get an access token (client credentials)")
async def token(request: Request, runtime: Runtime = Depends(get_runtime)) -> JSONResponse:
    """Exchange a client id and secret for a bearer JWT (OAuth 2 client_credentials)."""
    fields = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if "form" in content_type:
        form = await request.form()
        fields.update({k: v for k, v in form.items() if isinstance(v, str)})
    grant = fields.get("grant_type")
    if grant != "client_credentials":
        return JSONResponse(
            {"error": "unsupported_grant_type",
             "error_description": "grant_type must be client_credentials"},
            status_code=400,
        )
    client_id, secret = fields.get("client_id", ""), fields.get("client_secret", "")
    credential = await run_in_threadpool(_verify, runtime, client_id, secret)
    if credential is None:
        return JSONResponse(
            {"error": "invalid_client", "error_description": "Bad credentials"}, status_code=401
        )
    return JSONResponse(tokens.issue(runtime.settings, credential))


def _verify(runtime: Runtime, client_id: str, secret: str) -> credentials.Credential | None:
    # scrypt is deliberately slow: keep it off the event loop.
    if not client_id:
        return None
    with runtime.db.read() as session:
        return credentials.verify(session, client_id, secret)
