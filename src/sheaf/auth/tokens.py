"""Signed JWT access tokens carrying authorities and scopes, as SailPoint issues them."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import jwt

from sheaf.auth.models import Credential
from sheaf.config import Settings
from sheaf.errors import Unauthorized
from sheaf.kit.base import new_id

ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    client_id: str
    authorities: frozenset[str]
    scopes: frozenset[str]

    def has_any(self, authorities: frozenset[str]) -> bool:
        return bool(self.authorities & authorities)


def issue(settings: Settings, credential: Credential) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "tenant_id": settings.tenant,
        "org": settings.tenant,
        "pod": "local",
        "internal": False,
        "client_id": credential.client_id,
        "authorities": list(credential.authorities),
        "scope": list(credential.scopes),
        "strong_auth": False,
        "enabled": True,
        "iat": now,
        "exp": now + settings.auth.token_ttl_seconds,
        "jti": new_id(),
    }
    token = jwt.encode(claims, settings.signing_key, algorithm=ALGORITHM)
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": settings.auth.token_ttl_seconds - 1,
        "scope": " ".join(credential.scopes),
        "tenant_id": settings.tenant,
        "internal": False,
        "pod": "local",
        "org": settings.tenant,
        "strong_auth_supported": False,
        "strong_auth": False,
        "enabled": True,
        "jti": claims["jti"],
    }


def decode(settings: Settings, token: str) -> Principal:
    who, expires = _verified(settings.signing_key, token)
    if expires <= time.time():
        raise Unauthorized("JWT validation failed: JWT is expired")
    return who


# A client sends the same token with every request until it expires; its signature needs
# checking once (a token that fails is not remembered). Expiry is checked on every use.
@functools.lru_cache(maxsize=4096)
def _verified(key: str, token: str) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"require": ["exp", "client_id"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("JWT validation failed: JWT is expired") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"JWT validation failed: {exc}") from None
    who = Principal(
        client_id=str(claims["client_id"]),
        authorities=frozenset(claims.get("authorities") or []),
        scopes=frozenset(claims.get("scope") or []),
    )
    return who, float(claims["exp"])
