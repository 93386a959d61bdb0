"""POST /oauth/token: client_credentials, from form fields or query parameters."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from sheaf.auth import tokens
from sheaf.auth.signin import TooManyFailures, sign_in
from sheaf.runtime import Runtime, get_runtime

router = APIRouter(tags=["auth"])


@router.post("/oauth/token", summary="Get an access token (client credentials)", responses={
    400: {"description": "grant_type is not client_credentials"},
    401: {"description": "Bad client credentials"},
    429: {"description": "Too many failed sign-ins for this client id or from this address; "
                         "retry after the Retry-After header's seconds"},
})
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
    address = request.client.host if request.client else "-"
    try:
        # (scrypt is deliberately slow, and the failure counts may be in Redis: off the loop)
        credential = await run_in_threadpool(
            sign_in, runtime.db, runtime.sign_in_guard, client_id, secret, address)
    except TooManyFailures as exc:
        return JSONResponse(
            {"error": "too_many_requests", "error_description": str(exc)}, status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if credential is None:
        return JSONResponse(
            {"error": "invalid_client", "error_description": "Bad credentials"}, status_code=401
        )
    return JSONResponse(tokens.issue(runtime.settings, credential))

