"""Institution credentials at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a key kept
in the data directory (``finance-credentials.key``, created 0600 on first use).

Workers on other hosts share the data directory, so they share the key. The plain values
are only ever in memory of the worker that logs in to the institution.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "finance-credentials.key"


class CredentialsUnreadable(Exception):
    """The stored credentials cannot be decrypted (the key file changed)."""


@lru_cache(maxsize=8)
def _fernet(data_dir: str) -> Fernet:
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: two processes starting together agree on one key
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
    return Fernet(path.read_bytes().strip())


def seal(data_dir: Path, values: Any) -> str:
    return _fernet(str(data_dir)).encrypt(json.dumps(values).encode()).decode()


def unseal(data_dir: Path, token: str) -> Any:
    try:
        return json.loads(_fernet(str(data_dir)).decrypt(token.encode()))
    except InvalidToken:
        raise CredentialsUnreadable(
            f"stored credentials cannot be decrypted with {KEY_FILE}") from None
