"""Keep secrets out of the access log.

A client may send its ``client_secret`` as a query parameter of POST /oauth/token (as
SailPoint accepts it); uvicorn logs every request's path with its query string. The
filter rewrites the secret's value before any handler formats the line.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
# the parameter's name, also percent-encoded (client%5Fsecret), up to the next & or space
SECRET_PARAMETER = re.compile(r"((?:^|[?&;])client(?:_|%5f)secret=)[^&;\s#]*", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return SECRET_PARAMETER.sub(lambda m: m.group(1) + REDACTED, text)


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
