"""Keep secrets out of the access log.

A client may send its ``client_secret`` as a query parameter of POST /oauth/token (as
SailPoint accepts it); uvicorn logs every request's path with its query string. The
filter rewrites the secret's value before any handler formats the line.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

ACCESS_LOGGER = "uvicorn.access"
# each query parameter: its separator, its name as sent (up to =), and its value
PARAMETER = re.compile(r"(^|[?&;])([^=&;\s#?]*)=([^&;\s#]*)")
SECRET_NAME = "client_secret"
REDACTED = "[redacted]"


def _redact_one(match: re.Match[str]) -> str:
    # The server decodes a parameter's name before reading it, so any percent-encoding
    # of it (client_%73ecret, %63lient_secret) names the secret as well as the plain one.
    if unquote_plus(match.group(2)).lower() != SECRET_NAME:
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}={REDACTED}"


def redact(text: str) -> str:
    return PARAMETER.sub(_redact_one, text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str) and not record.args:
            record.msg = redact(record.msg)
        return True


def redact_access_log() -> None:
    """Install the filter on uvicorn's access logger (once; safe to call again)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
