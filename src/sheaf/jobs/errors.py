"""Exceptions a handler raises to end its job in a particular way."""

from __future__ import annotations

from typing import Any


class JobCancelled(Exception):
    """Raised at a safe point once cancellation has been requested."""


class JobLost(Exception):
    """This worker no longer owns its job (its lease ran out and it was taken over, or it
    was ended): whatever it was about to commit is rolled back."""


class JobFailed(Exception):
    """An expected failure (bad input, refused run): no retry, ends the job as failed."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        messages: list[dict[str, Any]] | None = None,
        counters: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.messages = messages or [{"level": "error", "key": code, "text": message}]
        self.counters = counters or {}
