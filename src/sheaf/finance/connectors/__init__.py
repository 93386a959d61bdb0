"""Where a member's data comes from. An institution names its connector."""

from __future__ import annotations

import importlib

from sheaf.finance.connectors.base import Connector, ConnectorError, Login, Snapshot

# an institution's ``connector`` names one of these: a class, or where to import it from
# (imported when a member first aggregates: ofxtools alone is ~30 MiB that an API process
# never needs)
CONNECTORS: dict[str, type[Connector] | str] = {
    "sandbox": "sheaf.finance.connectors.sandbox:SandboxConnector",
    "ofx": "sheaf.finance.connectors.ofx:OfxConnector",
    "file": "sheaf.finance.connectors.ofx:StatementFileConnector",
}
# connectors whose members have no institution credentials
NO_CREDENTIALS = frozenset({"file"})


def connector_for(name: str, config: dict[str, object]) -> Connector:
    try:
        found = CONNECTORS[name]
    except KeyError:
        raise ConnectorError("FAILED", f"No connector named {name!r}") from None
    if isinstance(found, str):
        module, _, attribute = found.partition(":")
        found = getattr(importlib.import_module(module), attribute)
    return found(config)


__all__ = ["CONNECTORS", "NO_CREDENTIALS", "Connector", "ConnectorError", "Login", "Snapshot",
           "connector_for"]
