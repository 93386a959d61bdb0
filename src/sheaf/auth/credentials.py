"""Creating and checking client credentials (scrypt-hashed secrets)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy.orm import Session

from sheaf.auth.models import Credential

__all__ = ["AUTHORITIES", "Credential", "create", "verify"]
from sheaf.kit.base import new_id, utcnow

AUTHORITIES = frozenset(
    {"ORG_ADMIN", "SOURCE_ADMIN", "SOURCE_SUBADMIN", "HELPDESK", "CERT_ADMIN", "REPORT_ADMIN",
     "ROLE_ADMIN", "ROLE_SUBADMIN", "DASHBOARD", "API"}
)
DEFAULT_SCOPES = ["sp:scopes:all"]
_N, _R, _P = 2**14, 8, 1


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${salt.hex()}${digest.hex()}"


def secret_matches(secret: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt_hex), n=_N, r=_R, p=_P)
    return hmac.compare_digest(digest.hex(), digest_hex)


def create(
    session: Session, name: str, authorities: list[str], workgroups: list[str] | None = None
) -> tuple[Credential, str]:
    """Store a new credential; the plain secret is returned once and never stored.
    ``workgroups`` are the governance groups it belongs to (for SOURCE_SUBADMIN)."""
    unknown = sorted(set(authorities) - AUTHORITIES)
    if unknown:
        raise ValueError(f"unknown authorities {unknown}; known: {sorted(AUTHORITIES)}")
    secret = secrets.token_hex(32)
    credential = Credential(
        client_id=new_id(), name=name, secret_hash=hash_secret(secret),
        authorities=sorted(set(authorities)), scopes=list(DEFAULT_SCOPES),
        workgroups=sorted(set(workgroups or [])), created_at=utcnow(),
    )
    session.add(credential)
    session.flush()
    return credential, secret


def verify(session: Session, client_id: str, secret: str) -> Credential | None:
    credential = session.get(Credential, client_id)
    if credential is None or credential.disabled:
        # Spend the same time as a real check so ids cannot be probed by timing.
        secret_matches(secret, hash_secret("x"))
        return None
    return credential if secret_matches(secret, credential.secret_hash) else None
