"""Errors with MX's status codes that the shared SheafError family does not have."""

from __future__ import annotations

from sheaf.errors import SheafError


class MethodNotAllowed(SheafError):
    """An endpoint's constraint is not met (MX: resume when the member is not CHALLENGED)."""

    status_code = 405
    detail_code = "405 Method Not Allowed"


class Unprocessable(SheafError):
    status_code = 422
    detail_code = "422 Unprocessable Entity"


class SessionExpired(SheafError):
    """Nexus: an expired or unknown session (MX error code 4011)."""

    status_code = 401
    detail_code = "4011"
