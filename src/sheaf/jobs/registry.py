"""Job type name -> handler, with the per-type retry policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sheaf.jobs.context import JobContext


@dataclass(frozen=True)
class JobOutcome:
    """What a handler reports: ``warning`` is success with something to look at."""

    warning: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, Any] = field(default_factory=dict)


Handler = Callable[["JobContext"], JobOutcome]


@dataclass(frozen=True)
class JobSpec:
    type: str
    handler: Handler
    max_attempts: int = 3
    backoff_seconds: float = 5.0


_REGISTRY: dict[str, JobSpec] = {}


def job_handler(
    type_: str, *, max_attempts: int = 3, backoff_seconds: float = 5.0
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _REGISTRY[type_] = JobSpec(type_, handler, max_attempts, backoff_seconds)
        return handler

    return register


def spec_for(type_: str) -> JobSpec:
    try:
        return _REGISTRY[type_]
    except KeyError:
        raise LookupError(f"no handler registered for job type {type_!r}") from None
