"""The connector contract: log in (possibly through challenges), then fetch a snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # (only connectors that fetch in bulk build frames; the API never does)
    import polars as pl

CENT = Decimal("0.01")


def money(value: Decimal | float | int | str) -> str:
    """A money amount as the decimal string sheaf stores: rounded half-even to the cent."""
    return str(Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_EVEN))


class ConnectorError(Exception):
    """The institution refused or failed; ``status`` is the member's connection status."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Login:
    """The outcome of logging in: CONNECTED, or CHALLENGED with the questions to ask."""

    status: str
    challenges: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Snapshot:
    """Everything the institution holds for a member now, keyed by its own ids.

    accounts: {"id", ...wire fields}; transactions: {"id", "account_id", "date",
    "status", ...}; holdings: {"id", "account_id", ...}. ``None`` for a kind that was
    not asked for (its stored records stay as they are). A connector with many
    transactions may give them as a polars frame of those columns instead (encoded and
    hashed by polars, not record by record).
    """

    accounts: list[dict[str, Any]]
    transactions: list[dict[str, Any]] | pl.DataFrame | None
    holdings: list[dict[str, Any]] | None


@dataclass(frozen=True)
class MemberContext:
    """What a connector knows about the member it gathers for."""

    guid: str
    created_on: date
    generation: int  # successful aggregations so far


class Connector(Protocol):
    def __init__(self, config: dict[str, Any]) -> None: ...

    def login(self, credentials: dict[str, str], answers: list[str] | None) -> Login:
        """Authenticate; ``answers`` are the member's replies to the last challenges."""
        ...

    def fetch(self, member: MemberContext, credentials: dict[str, str], *,
              transactions: bool, holdings: bool) -> Snapshot: ...
