"""MX connection statuses and their numeric ids (as Nexus and the webhooks carry them)."""

from __future__ import annotations

from enum import StrEnum


class ConnectionStatus(StrEnum):
    CREATED = "CREATED"
    PREVENTED = "PREVENTED"
    DENIED = "DENIED"
    CHALLENGED = "CHALLENGED"
    REJECTED = "REJECTED"
    LOCKED = "LOCKED"
    CONNECTED = "CONNECTED"
    IMPEDED = "IMPEDED"
    RECONNECTED = "RECONNECTED"
    DEGRADED = "DEGRADED"
    DISCONNECTED = "DISCONNECTED"
    DISCONTINUED = "DISCONTINUED"
    CLOSED = "CLOSED"
    DELAYED = "DELAYED"
    FAILED = "FAILED"
    UPDATED = "UPDATED"
    DISABLED = "DISABLED"
    IMPORTED = "IMPORTED"
    RESUMED = "RESUMED"
    EXPIRED = "EXPIRED"
    IMPAIRED = "IMPAIRED"
    PENDING = "PENDING"


STATUS_IDS: dict[str, int] = {s.value: i for i, s in enumerate(ConnectionStatus)}

MESSAGES: dict[str, str] = {
    "CREATED": "Member created; not yet aggregated.",
    "CONNECTED": "Connected to {institution}.",
    "CHALLENGED": "{institution} asks a security question. Answer it to continue.",
    "RESUMED": "Answer received; resuming the connection to {institution}.",
    "DENIED": "The credentials were not accepted by {institution}.",
    "REJECTED": "The answer to the security question was not accepted.",
    "EXPIRED": "The security question was not answered in time.",
    "LOCKED": "{institution} is blocking sign-in; contact the institution.",
    "FAILED": "Data could not be gathered from {institution}. Try again later.",
    "DEGRADED": "{institution} is not answering as expected. Try again later.",
    "UPDATED": "Credentials updated; reconnecting to {institution}.",
}


def message_for(status: str, institution: str) -> str:
    return MESSAGES.get(status, status.title()).format(institution=institution)
