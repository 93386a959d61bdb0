"""Where a member's data comes from. An institution names its connector."""

from __future__ import annotations

from sheaf.finance.connectors.base import Connector, ConnectorError, Login, Snapshot
from sheaf.finance.connectors.sandbox import SandboxConnector

CONNECTORS: dict[str, type[Connector]] = {"sandbox": SandboxConnector}


def connector_for(name: str, config: dict[str, object]) -> Connector:
    try:
        return CONNECTORS[name](config)
    except KeyError:
        raise ConnectorError("FAILED", f"No connector named {name!r}") from None


__all__ = ["CONNECTORS", "Connector", "ConnectorError", "Login", "Snapshot", "connector_for"]
