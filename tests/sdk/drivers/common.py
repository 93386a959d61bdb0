"""Scaffolding shared by the SDK drivers in this directory.

Each driver runs as a standalone script with the python of its own SDK venv, so
this module is imported as the top-level ``common`` (the script's directory is on
``sys.path``). It must stay importable without any SDK installed, and it imports
nothing from ``sheaf`` or pytest: only the standard library.

A driver subclasses :class:`StepDriver`, defines one ``op_<name>(step)`` method
per step op, sets ``api_exceptions`` to the SDK's exception classes, and calls
:func:`main` with its class.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

POLL_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.1


def type_name(value: Any) -> str:
    """The Python type name of ``value``, as reported in the driver output."""
    return type(value).__name__


def iso(value: Any) -> Any:
    """Dates and datetimes as ISO strings; anything else unchanged."""
    return value.isoformat() if isinstance(value, dt.datetime | dt.date) else value


def model_summary(obj: Any, *, with_module: bool = False) -> dict[str, Any]:
    """The start of every model summary: its class name (and module, if asked)."""
    out: dict[str, Any] = {"model": type_name(obj)}
    if with_module:
        out["model_module"] = type(obj).__module__
    return out


def task_identity(task: Any) -> dict[str, Any]:
    """The leading fields of a task (``TaskStatus`` or the task of a ``LoadAccountsTask``)."""
    return {"id": task.id, "id_type": type_name(task.id), "type": task.type}


def completion(ts: Any) -> dict[str, Any]:
    """A ``TaskStatus``'s completion fields, with the Python type of ``completed``."""
    return {
        "completed": iso(ts.completed),
        "completed_type": type_name(ts.completed),
        "completion_status": ts.completion_status,
    }


def aggregation_attributes(attrs: Any) -> dict[str, Any]:
    """Fields of a load task's ``attributes`` model, with their Python types."""
    optimized = getattr(attrs, "optimized_aggregation", None)
    return {
        "app_id": getattr(attrs, "app_id", None),
        "optimized_aggregation": optimized,
        "optimized_aggregation_type": type_name(optimized),
    }


def summarize_load_reply(
    resp: Any, task_fields: Callable[[Any], dict[str, Any]], *, with_module: bool = False
) -> dict[str, Any]:
    """A parsed ``LoadAccountsTask`` (202 reply): its envelope and task identity, then
    the SDK-specific ``task_fields(resp.task)``."""
    out = model_summary(resp, with_module=with_module)
    if resp is None:
        return out
    out["success"] = resp.success
    task = resp.task
    out["task_model"] = type_name(task)
    if task is not None:
        out.update(task_identity(task), name=task.name)
        out.update(task_fields(task))
    return out


def summarize_task_status(
    ts: Any, status_fields: Callable[[Any], dict[str, Any]], *, with_module: bool = False
) -> dict[str, Any]:
    """A parsed ``TaskStatus``: model and identity, then the SDK-specific ``status_fields(ts)``."""
    out = model_summary(ts, with_module=with_module)
    if ts is not None:
        out.update(task_identity(ts), unique_name=ts.unique_name)
        out.update(status_fields(ts))
    return out


def summarize_exception(
    exc: BaseException, api_exceptions: tuple[type[BaseException], ...] = ()
) -> dict[str, Any]:
    """Class name and HTTP details of an exception raised by the SDK.

    ``api_exceptions`` are the SDK's own API exception classes, which set
    ``is_api_exception``.
    """
    body: Any = getattr(exc, "body", None)
    with contextlib.suppress(TypeError, ValueError):
        body = json.loads(body)
    return {
        "class": type_name(exc),
        "module": type(exc).__module__,
        "is_api_exception": isinstance(exc, api_exceptions),
        "status": getattr(exc, "status", None),
        "body": body,
    }


class StepDriver:
    """Runs ``spec["steps"]`` through the subclass's ``op_<name>`` methods."""

    #: The SDK's API exception classes (reported as ``is_api_exception``).
    api_exceptions: tuple[type[BaseException], ...] = ()

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.results: list[dict[str, Any]] = []
        self.partial: dict[str, Any] = {}  # facts an op records before it raises

    @classmethod
    def summarize_exception(cls, exc: BaseException) -> dict[str, Any]:
        """How an exception is reported, in a step's result or as the run's ``fatal``."""
        return summarize_exception(exc, cls.api_exceptions)

    @staticmethod
    def poll_until_complete(get_status: Callable[[str], Any], task_id: str) -> tuple[Any, int]:
        """Call ``get_status(task_id)`` until completionStatus is set; return it and the polls."""
        deadline = time.monotonic() + POLL_TIMEOUT_S
        polls = 0
        while True:
            ts = get_status(task_id)
            polls += 1
            if ts is None or ts.completion_status is not None:
                return ts, polls
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} still pending after {POLL_TIMEOUT_S}s")
            time.sleep(POLL_INTERVAL_S)

    def _task_id(self, step: dict[str, Any]) -> str:
        """``step["task_id"]``, where ``"$N"`` means the task id returned by step N."""
        ref = step["task_id"]
        if isinstance(ref, str) and ref.startswith("$"):
            return self.results[int(ref[1:])]["task_id"]
        return ref

    def _list_args(self, step: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments of a task-status list call; ``{source_id}`` in filters filled in."""
        filters = step.get("filters")
        if filters:
            filters = filters.replace("{source_id}", step.get("source_id", self.spec["source_id"]))
        return {
            "limit": step.get("limit"),
            "offset": step.get("offset"),
            "count": step.get("count"),
            "filters": filters,
            "sorters": step.get("sorters"),
        }

    def run(self) -> int:
        """Run every step; return the process exit status."""
        rc = 0
        for index, step in enumerate(self.spec.get("steps", [])):
            result: dict[str, Any] = {"op": step["op"], "index": index}
            self.partial = {}
            try:
                result.update(getattr(self, "op_" + step["op"])(step))
                if step.get("expect_error"):
                    result["unexpected_success"] = True
            except Exception as exc:  # noqa: BLE001 - reported, then judged below
                result["exception"] = self.summarize_exception(exc)
                if not step.get("expect_error"):
                    traceback.print_exc(file=sys.stderr)
                    rc = 1
            result.update(self.partial)
            self.results.append(result)
            if rc:
                break
        return rc


def load_spec(argv: list[str]) -> dict[str, Any]:
    """Input JSON from argv[1] if given, else stdin."""
    return json.loads(argv[1] if len(argv) > 1 else sys.stdin.read())


def main(
    argv: list[str], make_driver: type[StepDriver], sdk_version_package: str = "sailpoint"
) -> int:
    """Build the driver from the input spec, run it, print ONE JSON object on stdout.

    Returns the process exit status: 1 if the driver could not be built or a step
    raised unexpectedly (traceback on stderr), else 0.
    """
    spec = load_spec(argv)
    output: dict[str, Any] = {"sdk": "sailpoint", "steps": []}
    rc = 0
    # The SDK prints diagnostics (e.g. token failures) on stdout; keep stdout for our JSON.
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("always")
        driver: StepDriver | None = None
        try:
            driver = make_driver(spec)
            rc = driver.run()
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            output["fatal"] = make_driver.summarize_exception(exc)
            rc = 1
        if driver is not None:
            output["steps"] = driver.results
    output["warnings"] = [
        {"category": w.category.__name__, "message": str(w.message), "file": w.filename}
        for w in caught
    ]
    output["sdk_version"] = importlib.metadata.version(sdk_version_package)
    print(json.dumps(output, default=str))
    return rc
