"""Checking a client's secret, with a limit on failed attempts (guessing secrets).

Every failed sign-in (POST /oauth/token, the console) is counted against the client id
it named and against the caller's address. The attempt takes its place in both counts
before the secret is checked, and gives it back if the secret was right: checking the
counts first and counting the failure after the (slow) scrypt check let concurrent
guesses all pass the check, 41 of them where 10 were allowed. Once either has failed
too often within the window, further attempts are refused with 429 and Retry-After,
without checking the secret: a correct secret sent during the lockout is refused too, or
guessing would merely slow down. The counts are kept by the same sliding-window limiters as the
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

    def attempt(self, client_id: str, address: str) -> list[tuple[Limiter, str, str]]:
        """Count one sign-in attempt as a failure up front (atomically with the check of
        the limits); the places taken, for ``succeeded`` to give back."""
        taken: list[tuple[Limiter, str, str]] = []
        for limiter, key, by in ((self.by_client, client_id[:MAX_KEY], "for this client id"),
                                 (self.by_address, address, "from this address")):
            if limiter is self.by_client and not client_id:
                continue
            wait, handle = limiter.reserve(key, BUCKET)
            if wait:
                self.succeeded(taken)  # (the other count is not charged for a refusal)
                raise TooManyFailures(wait, by)
            taken.append((limiter, key, handle))
        return taken

    @staticmethod
    def succeeded(taken: list[tuple[Limiter, str, str]]) -> None:
        for limiter, key, handle in taken:
            limiter.give_back(key, BUCKET, handle)


def sign_in(db: Database, guard: SignInGuard, client_id: str, secret: str,
            address: str) -> Credential | None:
    """The credential if the secret is right; None if not (counted as a failure).

    Raises TooManyFailures while the client id or the address is locked out. Checks a
    scrypt hash, and may wait on Redis: call it off the event loop.
    """
    taken = guard.attempt(client_id, address)
    credential = None
    if client_id:
        with db.read() as session:
            credential = credentials.verify(session, client_id, secret)
    if credential is not None:
        guard.succeeded(taken)
    return credential
