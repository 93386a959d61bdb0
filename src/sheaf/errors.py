"""The SheafError family. Each dialect renders these in its own error envelope."""

from __future__ import annotations


class SheafError(Exception):
    status_code = 500
    detail_code = "500.0 Internal Fault"

    def __init__(self, message: str, *, causes: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.causes = causes or []


class BadRequest(SheafError):
    status_code = 400
    detail_code = "400.1 Bad Request Content"


class Unauthorized(SheafError):
    status_code = 401
    detail_code = "401 Unauthorized"


class Forbidden(SheafError):
    status_code = 403
    detail_code = "403 Forbidden"


class NotFound(SheafError):
    status_code = 404
    detail_code = "404 Not found"


class Conflict(SheafError):
    status_code = 409
    detail_code = "409 Conflict"


class Unprocessable(SheafError):
    status_code = 422
    detail_code = "422 Unprocessable Entity"


class PayloadTooLarge(SheafError):
    status_code = 413
    detail_code = "413 Payload Too Large"


def upload_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The file is larger than the {limit} bytes this server accepts "
                           "(SHEAF_IDENTITY__MAX_UPLOAD_BYTES)")


class RateLimited(SheafError):
    status_code = 429
    detail_code = "429 Too Many Requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__("Rate Limit Exceeded")
        self.retry_after = retry_after
