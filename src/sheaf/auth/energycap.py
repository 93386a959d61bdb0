"""EnergyCAP's ``ECI-ApiKey``: keys acting as a user, with EnergyCAP's permission names.

A key is ``<key id>.<secret>.<datasource>`` (three dot-separated base64url parts, the
shape EnergyCAP's keys have). Only a SHA-256 digest of the secret is stored: the secret
is 32 random bytes, so a fast digest is as safe as a slow one and keeps every request
cheap. A key inherits every permission of its user; a user created without permissions
is an administrator holding all of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from sheaf.kit.base import Base, UTCDateTime, utcnow

PERMISSIONS = (
    "Chargebacks:Run", "Chargebacks:Manage", "ChargebackReversals:Manage",
    "ChargebacksModule:View", "Meters:View", "Meters:Create", "Meters:Edit",
    "Places:View", "Places:Create", "Places:Edit", "Accounts:View", "Accounts:Create",
    "Accounts:Edit", "BillsAndBatches:View", "BillsAndBatches:Create", "BillsAndBatches:Manage",
)
DATASOURCE = "sheaf"


class EnergyCapUser(Base):
    __tablename__ = "energycap_user"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_code: Mapped[str] = mapped_column(String(32), unique=True)
    full_name: Mapped[str] = mapped_column(String(100))
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    # the place whose subtree the user sees (EnergyCAP's "topmost place"); None: every place
    topmost_place_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EnergyCapKey(Base):
    __tablename__ = "energycap_api_key"

    key_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int] = mapped_column(ForeignKey("energycap_user.user_id"), index=True)
    secret_digest: Mapped[str] = mapped_column(String(64))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class EnergyCapPrincipal:
    user_id: int
    user_code: str
    full_name: str
    permissions: frozenset[str]
    topmost_place_id: int | None = None
    key_id: int | None = None  # the key the request came with (its rate-limit budget)

    def child(self) -> dict[str, object]:
        """EnergyCAP's ``UserChild``."""
        return {"userId": self.user_id, "userCode": self.user_code, "fullName": self.full_name}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    session: Session, name: str, user_code: str | None, permissions: list[str],
    topmost_place_id: int | None = None,
) -> tuple[EnergyCapKey, EnergyCapUser, str]:
    """Store a key (and its user, created when missing); the key is returned once.
    ``topmost_place_id`` limits a new user to that place's subtree."""
    unknown = sorted(set(permissions) - set(PERMISSIONS))
    if unknown:
        raise ValueError(f"unknown permissions {unknown}; known: {list(PERMISSIONS)}")
    code = user_code or name
    if not code or len(code) > 32:
        raise ValueError("a user code is 1 to 32 characters")
    user = session.execute(
        select(EnergyCapUser).where(EnergyCapUser.user_code == code)).scalar_one_or_none()
    if user is None:
        user = EnergyCapUser(user_code=code, full_name=code,
                             permissions=sorted(set(permissions or PERMISSIONS)),
                             topmost_place_id=topmost_place_id)
        session.add(user)
        session.flush()
    elif permissions:
        user.permissions = sorted(set(permissions))
    secret = secrets.token_urlsafe(32)
    key = EnergyCapKey(name=name, user_id=user.user_id, secret_digest=_digest(secret))
    session.add(key)
    session.flush()
    api_key = ".".join([_b64(str(key.key_id).encode()), secret, _b64(DATASOURCE.encode())])
    return key, user, api_key


def verify_key(session: Session, api_key: str) -> EnergyCapPrincipal | None:
    """The principal an ``ECI-ApiKey`` value acts as, or None."""
    parts = api_key.strip().split(".")
    if len(parts) != 3:
        return None
    try:
        key_id = int(_unb64(parts[0]).decode())
        datasource = _unb64(parts[2]).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if datasource != DATASOURCE or not 0 < key_id < 2**31:  # another datasource's key
        return None
    key = session.get(EnergyCapKey, key_id)
    if key is None or key.disabled:
        return None
    if not hmac.compare_digest(key.secret_digest, _digest(parts[1])):
        return None
    user = session.get(EnergyCapUser, key.user_id)
    if user is None:
        return None
    return EnergyCapPrincipal(user.user_id, user.user_code, user.full_name,
                              frozenset(user.permissions), user.topmost_place_id, key.key_id)
