"""Drive the official ``sailpoint`` 1.x SDK (versioned ``/beta`` and ``/v2025`` APIs) against sheaf.

Run with the python of the ``sailpoint1`` SDK venv. Standalone on purpose (no
sheaf imports): it uses the SDK exactly as a 1.x user would, i.e.
``sailpoint.configuration.Configuration`` plus ``sailpoint.beta`` /
``sailpoint.v2025`` API classes, each prefixing its own version to base_url.

Input: one JSON object on argv[1] or stdin::

    {"base_url": "...", "client_id": "...", "client_secret": "...",
     "source_id": "...", "csv_path": "...", "steps": [{"op": "load", "api": "beta"}, ...]}

Step ops ("api" is "beta" or "v2025"; "expect_error": true marks steps whose
SDK exception is the point):

* ``load``: ``SourcesApi.import_accounts`` (beta: ``source_id=``, v2025: ``id=``)
  with ``file`` ``(name, bytes)`` and ``disable_optimization``; ``wait`` polls
  ``TaskManagementApi.get_task_status`` of the same API until completionStatus
  is set; ``cross_check`` also fetches the task through the other API version.
* ``status``: ``get_task_status(task_id)``; ``task_id`` may be ``"$N"`` (step N's task).
* ``list``: ``get_task_status_list(limit, offset, count, filters, sorters)``.

Output: ONE JSON object on stdout; exit 1 (traceback on stderr) on an unexpected exception.
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
from pathlib import Path
from typing import Any

import sailpoint.beta
import sailpoint.v2025
from sailpoint.beta.exceptions import ApiException as BetaApiException
from sailpoint.configuration import Configuration, ConfigurationParams
from sailpoint.v2025.exceptions import ApiException as V2025ApiException

POLL_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.1
OTHER_API = {"beta": "v2025", "v2025": "beta"}


def _type(value: Any) -> str:
    return type(value).__name__


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime | dt.date) else value


def summarize_load_task(resp: Any) -> dict[str, Any]:
    """Key fields of a parsed ``LoadAccountsTask`` (202 reply), with their Python types."""
    out: dict[str, Any] = {"model": _type(resp), "model_module": type(resp).__module__}
    if resp is None:
        return out
    out["success"] = resp.success
    task = resp.task
    out["task_model"] = _type(task)
    if task is None:
        return out
    attrs = task.attributes
    out.update(
        id=task.id,
        id_type=_type(task.id),
        type=task.type,
        name=task.name,
        created_type=_type(task.created),
        completion_status=task.completion_status,
        returns=[r.to_dict() for r in task.returns or []],
        app_id=getattr(attrs, "app_id", None),
        optimized_aggregation=getattr(attrs, "optimized_aggregation", None),
        optimized_aggregation_type=_type(getattr(attrs, "optimized_aggregation", None)),
    )
    return out


def summarize_task_status(ts: Any) -> dict[str, Any]:
    """Key fields of a parsed ``TaskStatus``, with their Python types."""
    out: dict[str, Any] = {"model": _type(ts), "model_module": type(ts).__module__}
    if ts is None:
        return out
    out.update(
        id=ts.id,
        id_type=_type(ts.id),
        type=ts.type,
        unique_name=ts.unique_name,
        created_type=_type(ts.created),
        modified_type=_type(ts.modified),
        completed=_iso(ts.completed),
        completed_type=_type(ts.completed),
        completion_status=ts.completion_status,
        percent_complete=ts.percent_complete,
        attributes=ts.attributes,
        returns=[r.to_dict() for r in ts.returns],
    )
    return out


def summarize_exception(exc: BaseException) -> dict[str, Any]:
    """Class name and HTTP details of an exception raised by the SDK."""
    body: Any = getattr(exc, "body", None)
    with contextlib.suppress(TypeError, ValueError):
        body = json.loads(body)
    return {
        "class": _type(exc),
        "module": type(exc).__module__,
        "is_api_exception": isinstance(exc, BetaApiException | V2025ApiException),
        "status": getattr(exc, "status", None),
        "body": body,
    }


class Driver:
    """Runs the step list against beta and v2025 ApiClients sharing one Configuration."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        params = ConfigurationParams()
        params.base_url = spec["base_url"]
        params.client_id = spec["client_id"]
        params.client_secret = spec["client_secret"]
        self.config = Configuration(params)
        if self.config.access_token is None:
            raise RuntimeError("SDK could not fetch an access token from /oauth/token")
        beta_client = sailpoint.beta.ApiClient(self.config)
        v2025_client = sailpoint.v2025.ApiClient(self.config)
        self.sources = {
            "beta": sailpoint.beta.SourcesApi(beta_client),
            "v2025": sailpoint.v2025.SourcesApi(v2025_client),
        }
        self.tasks = {
            "beta": sailpoint.beta.TaskManagementApi(beta_client),
            "v2025": sailpoint.v2025.TaskManagementApi(v2025_client),
        }
        self.results: list[dict[str, Any]] = []

    def _task_id(self, step: dict[str, Any]) -> str:
        ref = step["task_id"]
        if isinstance(ref, str) and ref.startswith("$"):
            return self.results[int(ref[1:])]["task_id"]
        return ref

    def wait_for(self, api: str, task_id: str) -> tuple[Any, int]:
        """Poll task status until completionStatus is set; return it and the poll count."""
        deadline = time.monotonic() + POLL_TIMEOUT_S
        polls = 0
        while True:
            ts = self.tasks[api].get_task_status(task_id)
            polls += 1
            if ts is None or ts.completion_status is not None:
                return ts, polls
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} still pending after {POLL_TIMEOUT_S}s")
            time.sleep(POLL_INTERVAL_S)

    def op_load(self, step: dict[str, Any]) -> dict[str, Any]:
        api = step["api"]
        csv_path = Path(step.get("csv_path", self.spec.get("csv_path", "")))
        source_id = step.get("source_id", self.spec["source_id"])
        kwargs: dict[str, Any] = {
            "file": (csv_path.name, csv_path.read_bytes()),
            "disable_optimization": step.get("disable_optimization", "false"),
        }
        if api == "beta":
            resp = self.sources["beta"].import_accounts(source_id=source_id, **kwargs)
        else:
            resp = self.sources[api].import_accounts(id=source_id, **kwargs)
        out: dict[str, Any] = {"api": api, "load": summarize_load_task(resp)}
        task_id = out["load"].get("id")
        out["task_id"] = task_id
        if step.get("wait") and task_id:
            final, polls = self.wait_for(api, task_id)
            out["final"] = summarize_task_status(final)
            out["polls"] = polls
        if step.get("cross_check") and task_id:
            other = OTHER_API[api]
            out["cross"] = summarize_task_status(self.tasks[other].get_task_status(task_id))
        return out

    def op_status(self, step: dict[str, Any]) -> dict[str, Any]:
        task_id = self._task_id(step)
        ts = self.tasks[step["api"]].get_task_status(task_id)
        return {"api": step["api"], "task_id": task_id, "status": summarize_task_status(ts)}

    def op_list(self, step: dict[str, Any]) -> dict[str, Any]:
        filters = step.get("filters")
        if filters:
            filters = filters.replace("{source_id}", step.get("source_id", self.spec["source_id"]))
        items = self.tasks[step["api"]].get_task_status_list(
            limit=step.get("limit"),
            offset=step.get("offset"),
            count=step.get("count"),
            filters=filters,
            sorters=step.get("sorters"),
        )
        return {
            "api": step["api"],
            "list_type": _type(items),
            "items": [summarize_task_status(ts) for ts in items or []],
        }

    def run(self) -> int:
        """Run every step; return the process exit status."""
        rc = 0
        for index, step in enumerate(self.spec.get("steps", [])):
            result: dict[str, Any] = {"op": step["op"], "index": index}
            try:
                result.update(getattr(self, "op_" + step["op"])(step))
                if step.get("expect_error"):
                    result["unexpected_success"] = True
            except Exception as exc:  # noqa: BLE001 - reported, then judged below
                result["exception"] = summarize_exception(exc)
                if not step.get("expect_error"):
                    traceback.print_exc(file=sys.stderr)
                    rc = 1
            self.results.append(result)
            if rc:
                break
        return rc


def load_spec(argv: list[str]) -> dict[str, Any]:
    """Input JSON from argv[1] if given, else stdin."""
    return json.loads(argv[1] if len(argv) > 1 else sys.stdin.read())


def main(argv: list[str]) -> int:
    spec = load_spec(argv)
    output: dict[str, Any] = {"sdk": "sailpoint", "steps": []}
    rc = 0
    # The SDK prints diagnostics (e.g. token failures) on stdout; keep stdout for our JSON.
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("always")
        driver: Driver | None = None
        try:
            driver = Driver(spec)
            rc = driver.run()
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            output["fatal"] = summarize_exception(exc)
            rc = 1
        if driver is not None:
            output["steps"] = driver.results
    output["warnings"] = [
        {"category": w.category.__name__, "message": str(w.message), "file": w.filename}
        for w in caught
    ]
    output["sdk_version"] = importlib.metadata.version("sailpoint")
    print(json.dumps(output, default=str))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
