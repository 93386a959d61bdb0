"""Checking a client's secret, with a limit on failed attempts (guessing secrets).

Every failed sign-in (POST /oauth/token, the console) is counted against the client id
it named and against the caller's address. Once either has failed too often within the
window, further attempts are refused with 429 and Retry-After, without checking the
secret: a correct secret sent during the lockout is refused too, or guessing would
merely slow down. The counts are kept by the same sliding-window limiters as the
request budget (auth/ratelimit.py), so servers sharing Redis share them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sheaf.auth import credentials
from sheaf.auth.models import Credential
from sheaf.auth.ratelimit import Limiter
from sheaf.db import Database

BUCKET = "sign-in-failures"
MAX_KEY = 128  # (a client id is 32 characters; a longer one is counted by its prefix)


class TooManyFailures(Exception):
    def __init__(self, retry_after: int, by: str) -> None:
        super().__init__(
            f"Too many failed sign-ins {by}; try again in {retry_after} seconds"
        )
        self.retry_after = retry_after


@dataclass
class SignInGuard:
    by_client: Limiter
    by_address: Limiter

    @property
    def blocking(self) -> bool:
        return self.by_client.blocking or self.by_address.blocking

    def refuse_if_locked(self, client_id: str, address: str) -> None:
        if client_id and (wait := self.by_client.check(client_id[:MAX_KEY], BUCKET)):
            raise TooManyFailures(wait, "for this client id")
        if wait := self.by_address.check(address, BUCKET):
            raise TooManyFailures(wait, "from this address")

    def failed(self, client_id: str, address: str) -> None:
        if client_id:
            self.by_client.hit(client_id[:MAX_KEY], BUCKET)
        self.by_address.hit(address, BUCKET)


def sign_in(db: Database, guard: SignInGuard, client_id: str, secret: str,
            address: str) -> Credential | None:
    """The credential if the secret is right; None if not (counted as a failure).

    Raises TooManyFailures while the client id or the address is locked out. Checks a
    scrypt hash, and may wait on Redis: call it off the event loop.
    """
    guard.refuse_if_locked(client_id, address)
    credential = None
    if client_id:
        with db.read() as session:
            credential = credentials.verify(session, client_id, secret)
    if credential is None:
        guard.failed(client_id, address)
    return credential
