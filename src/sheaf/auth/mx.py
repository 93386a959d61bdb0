"""MX credentials: Platform API clients (HTTP Basic ``client_id:api_key``) and Nexus
sessions (a one-time API token exchanged for an ``MD-SESSION-TOKEN``).

Only hashes are stored: the api key as scrypt (like every client secret), the random
Nexus tokens as SHA-256 (they are 256-bit random values, so a fast hash is enough and a
session check costs one indexed update).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
import time
from datetime import datetime, timedelta

from sqlalchemy import Boolean, ForeignKey, String, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from sheaf.auth.credentials import hash_secret, secret_matches
from sheaf.db import Database
from sheaf.kit.base import Base, UTCDateTime, new_id, utcnow


class MxClient(Base):
    """A Platform API client: it sees only the users it created."""

    __tablename__ = "mx_client"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    api_key_hash: Mapped[str] = mapped_column(String(300))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NexusApiToken(Base):
    __tablename__ = "mx_api_token"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("mx_client.client_id", ondelete="CASCADE"))
    user_guid: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NexusSession(Base):
    __tablename__ = "mx_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("mx_client.client_id", ondelete="CASCADE"))
    user_guid: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


def create_client(session: Session, name: str) -> tuple[MxClient, str]:
    """A new Platform API client; the api key is returned once and never stored."""
    api_key = secrets.token_hex(20)
    client = MxClient(client_id=new_id(), name=name, api_key_hash=hash_secret(api_key),
                      disabled=False, created_at=utcnow())
    session.add(client)
    session.flush()
    return client, api_key


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class BasicVerifier:
    """Checks ``Authorization: Basic`` against the stored scrypt hashes.

    scrypt costs tens of milliseconds by design; a client sends the same key with every
    call, so a key that verified is remembered (by its SHA-256) for ``ttl`` seconds. A
    disabled or deleted client therefore keeps working for at most that long.
    """

    def __init__(self, ttl: float = 60.0, size: int = 4096) -> None:
        self.ttl = ttl
        self.size = size
        self._ok: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def client_for(self, db: Database, header: str) -> str | None:
        """The client whose key the header carries, or None (no, malformed or wrong
        credentials)."""
        given = _basic(header)
        if given is None:
            return None
        client_id, api_key = given
        if self._remembered(client_id, api_key):
            return client_id
        if not self.verify(db, client_id, api_key):
            return None
        with self._lock:
            if len(self._ok) >= self.size:
                self._ok.clear()
            self._ok[(client_id, _digest(api_key))] = time.monotonic() + self.ttl
        return client_id

    def remembered(self, header: str) -> str | None:
        """``client_for`` without the database or scrypt: the client when its key
        verified within ``ttl``, else None."""
        given = _basic(header)
        return given[0] if given is not None and self._remembered(*given) else None

    def _remembered(self, client_id: str, api_key: str) -> bool:
        with self._lock:
            until = self._ok.get((client_id, _digest(api_key)))
        return until is not None and until > time.monotonic()

    @staticmethod
    def verify(db: Database, client_id: str, api_key: str) -> bool:
        with db.read() as session:
            client = session.get(MxClient, client_id)
        if client is None or client.disabled:
            secret_matches(api_key, hash_secret("x"))  # same time as a real check
            return False
        return secret_matches(api_key, client.api_key_hash)


def _basic(header: str) -> tuple[str, str] | None:
    """(client_id, api_key) from an ``Authorization: Basic`` header, or None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, api_key = decoded.partition(":")
    if not sep or not client_id or not api_key:
        return None
    return client_id, api_key


def issue_api_token(session: Session, client_id: str, user_guid: str, ttl: float) -> str:
    """A one-time Nexus API token for ``user_guid``, valid ``ttl`` seconds."""
    token = secrets.token_hex(32)
    session.add(NexusApiToken(token_hash=_digest(token), client_id=client_id,
                              user_guid=user_guid,
                              expires_at=utcnow() + timedelta(seconds=ttl)))
    session.flush()
    return token


def open_session(session: Session, api_token: str, ttl: float) -> tuple[str, str, str] | None:
    """Spend an API token (once, before it expires) on a new session.

    Returns (session token, client id, user guid), or None for a token that is unknown,
    spent or expired.
    """
    now = utcnow()
    row = session.execute(
        update(NexusApiToken)
        .where(NexusApiToken.token_hash == _digest(api_token),
               NexusApiToken.used_at.is_(None), NexusApiToken.expires_at > now)
        .values(used_at=now)
        .returning(NexusApiToken.client_id, NexusApiToken.user_guid)
    ).first()
    if row is None:
        return None
    token = secrets.token_hex(32)
    session.add(NexusSession(token_hash=_digest(token), client_id=row[0], user_guid=row[1],
                             expires_at=now + timedelta(seconds=ttl)))
    session.flush()
    return token, str(row[0]), str(row[1])


def use_session(session: Session, token: str, ttl: float) -> tuple[str, str] | None:
    """(client id, user guid) of a live session, whose clock restarts; None if expired
    or unknown."""
    now = utcnow()
    row = session.execute(
        update(NexusSession)
        .where(NexusSession.token_hash == _digest(token), NexusSession.expires_at > now)
        .values(expires_at=now + timedelta(seconds=ttl))
        .returning(NexusSession.client_id, NexusSession.user_guid)
    ).first()
    return None if row is None else (str(row[0]), str(row[1]))
