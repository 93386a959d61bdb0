"""Where a member's data comes from. An institution names its connector."""

from __future__ import annotations

from sheaf.finance.connectors.base import Connector, ConnectorError, Login, Snapshot
from sheaf.finance.connectors.ofx import OfxConnector, StatementFileConnector
from sheaf.finance.connectors.sandbox import SandboxConnector

# an institution's ``connector`` names one of these
CONNECTORS: dict[str, type[Connector]] = {
    "sandbox": SandboxConnector,
    "ofx": OfxConnector,
    "file": StatementFileConnector,
}
# connectors whose members have no institution credentials
NO_CREDENTIALS = frozenset({"file"})


def connector_for(name: str, config: dict[str, object]) -> Connector:
    try:
        return CONNECTORS[name](config)
    except KeyError:
        raise ConnectorError("FAILED", f"No connector named {name!r}") from None


__all__ = ["CONNECTORS", "NO_CREDENTIALS", "Connector", "ConnectorError", "Login", "Snapshot",
           "connector_for"]
