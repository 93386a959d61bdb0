"""Drive the official ``sailpoint`` 2.x SDK (per-service ``/<service>/v1`` APIs) against sheaf.

Run with the python of the ``sailpoint2`` SDK venv, never the project venv: the
SDK pins its own pydantic/urllib3. Standalone on purpose (no sheaf imports), so
it exercises the server exactly as an SDK user would.

Input: one JSON object on argv[1] or stdin::

    {"base_url": "http://127.0.0.1:PORT", "client_id": "...", "client_secret": "...",
     "source_id": "...", "csv_path": "...", "steps": [{"op": "load", ...}, ...]}

Step ops (each may set "source_id"/"csv_path" to override the top-level ones and
"expect_error": true when an SDK exception is the point of the step):

* ``load``: ``SourcesApi.import_accounts_v1``; ``file_form`` "tuple" (default) or
  "bytes"; ``disable_optimization`` (default "false"); ``wait`` polls
  ``get_task_status_v1`` until completionStatus is set; ``aggregation_status``
  also calls ``get_account_aggregation_status_v1`` on the task id.
* ``status``: ``get_task_status_v1(task_id)``, after sleeping ``delay`` seconds if given.
* ``list``: ``get_task_status_list_v1`` (limit/offset/count/filters/sorters);
  ``filters`` may contain ``{source_id}``.
* ``patch``: ``update_task_status_v1(task_id, [replace /completionStatus "Error"])``.
* ``aggregation_status``: ``get_account_aggregation_status_v1(task_id)``.
* ``bad_token``: ``get_task_status_v1`` with a bogus bearer token.
* ``bad_secret``: build a Configuration with a wrong client secret, then call.

``task_id`` may be ``"$N"`` meaning "the task id returned by step N".

Output: ONE JSON object on stdout ``{"steps": [...], "warnings": [...]}``.
Exit status 1 (traceback on stderr) on any unexpected exception.
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

from sailpoint import (
    AccountAggregationsApi,
    ApiClient,
    Configuration,
    ConfigurationParams,
    SourcesApi,
    TaskManagementApi,
)
from sailpoint.exceptions import ApiException
from sailpoint.task_management.models.json_patch_operation import JsonPatchOperation
from sailpoint.task_management.models.json_patch_operation_value import (
    JsonPatchOperationValue,
)

POLL_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.1


def _type(value: Any) -> str:
    return type(value).__name__


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime | dt.date) else value


def summarize_load_task(resp: Any) -> dict[str, Any]:
    """Key fields of a parsed ``LoadAccountsTask`` (202 reply), with their Python types."""
    out: dict[str, Any] = {"model": _type(resp)}
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
        launcher=task.launcher,
        created=_iso(task.created),
        created_type=_type(task.created),
        launched_type=_type(task.launched),
        completion_status=task.completion_status,
        messages=[m.to_dict() for m in task.messages or []],
        returns=[r.to_dict() for r in task.returns or []],
        attributes_model=_type(attrs),
        app_id=getattr(attrs, "app_id", None),
        optimized_aggregation=getattr(attrs, "optimized_aggregation", None),
        optimized_aggregation_type=_type(getattr(attrs, "optimized_aggregation", None)),
        attributes_extra=getattr(attrs, "additional_properties", None),
    )
    return out


def summarize_task_status(ts: Any) -> dict[str, Any]:
    """Key fields of a parsed ``TaskStatus``, with their Python types."""
    out: dict[str, Any] = {"model": _type(ts)}
    if ts is None:
        return out
    out.update(
        id=ts.id,
        id_type=_type(ts.id),
        type=ts.type,
        unique_name=ts.unique_name,
        launcher=ts.launcher,
        target=ts.target.to_dict() if ts.target else None,
        created=_iso(ts.created),
        created_type=_type(ts.created),
        modified_type=_type(ts.modified),
        launched_type=_type(ts.launched),
        completed=_iso(ts.completed),
        completed_type=_type(ts.completed),
        completion_status=ts.completion_status,
        progress=ts.progress,
        percent_complete=ts.percent_complete,
        percent_complete_type=_type(ts.percent_complete),
        attributes=ts.attributes,
        returns=[r.to_dict() for r in ts.returns],
        messages=[m.to_dict() for m in ts.messages],
    )
    return out


def summarize_aggregation_status(st: Any) -> dict[str, Any]:
    """Key fields of a parsed ``AccountAggregationStatus``."""
    out: dict[str, Any] = {"model": _type(st)}
    if st is not None:
        # to_dict(), not to_json(): the SDK's to_json cannot serialise datetimes.
        out.update({k: _iso(v) for k, v in st.to_dict().items()})
        out["start_type"] = _type(st.start)
    return out


def summarize_exception(exc: BaseException) -> dict[str, Any]:
    """Class name and HTTP details of an exception raised by the SDK."""
    body: Any = getattr(exc, "body", None)
    with contextlib.suppress(TypeError, ValueError):
        body = json.loads(body)
    return {
        "class": _type(exc),
        "module": type(exc).__module__,
        "is_api_exception": isinstance(exc, ApiException),
        "status": getattr(exc, "status", None),
        "body": body,
        "data_model": _type(getattr(exc, "data", None)),
    }


def make_config(base_url: str, client_id: str, client_secret: str) -> Configuration:
    """Configuration exactly as documented for users; the SDK fetches the token itself."""
    params = ConfigurationParams()
    params.base_url = base_url
    params.client_id = client_id
    params.client_secret = client_secret
    return Configuration(params)


class Driver:
    """Runs the step list against one SDK ApiClient."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.config = make_config(spec["base_url"], spec["client_id"], spec["client_secret"])
        if self.config.access_token is None:
            raise RuntimeError("SDK could not fetch an access token from /oauth/token")
        self.client = ApiClient(self.config)
        self.sources = SourcesApi(self.client)
        self.tasks = TaskManagementApi(self.client)
        self.aggregations = AccountAggregationsApi(self.client)
        self.results: list[dict[str, Any]] = []
        self.partial: dict[str, Any] = {}  # facts an op records before it raises

    def _task_id(self, step: dict[str, Any]) -> str:
        ref = step["task_id"]
        if isinstance(ref, str) and ref.startswith("$"):
            return self.results[int(ref[1:])]["task_id"]
        return ref

    def wait_for(self, task_id: str) -> tuple[Any, int]:
        """Poll task status until completionStatus is set; return it and the poll count."""
        deadline = time.monotonic() + POLL_TIMEOUT_S
        polls = 0
        while True:
            ts = self.tasks.get_task_status_v1(task_id)
            polls += 1
            if ts is None or ts.completion_status is not None:
                return ts, polls
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} still pending after {POLL_TIMEOUT_S}s")
            time.sleep(POLL_INTERVAL_S)

    def op_load(self, step: dict[str, Any]) -> dict[str, Any]:
        csv_path = Path(step.get("csv_path", self.spec.get("csv_path", "")))
        data = csv_path.read_bytes()
        file: Any = data if step.get("file_form") == "bytes" else (csv_path.name, data)
        resp = self.sources.import_accounts_v1(
            step.get("source_id", self.spec["source_id"]),
            file=file,
            disable_optimization=step.get("disable_optimization", "false"),
        )
        out: dict[str, Any] = {"load": summarize_load_task(resp)}
        task_id = out["load"].get("id")
        out["task_id"] = task_id
        if step.get("wait") and task_id:
            final, polls = self.wait_for(task_id)
            out["final"] = summarize_task_status(final)
            out["polls"] = polls
        if step.get("aggregation_status") and task_id:
            out["aggregation"] = summarize_aggregation_status(
                self.aggregations.get_account_aggregation_status_v1(task_id)
            )
        return out

    def op_status(self, step: dict[str, Any]) -> dict[str, Any]:
        time.sleep(float(step.get("delay", 0)))
        task_id = self._task_id(step)
        ts = self.tasks.get_task_status_v1(task_id)
        return {"task_id": task_id, "status": summarize_task_status(ts)}

    def op_list(self, step: dict[str, Any]) -> dict[str, Any]:
        filters = step.get("filters")
        if filters:
            filters = filters.replace("{source_id}", step.get("source_id", self.spec["source_id"]))
        resp = self.tasks.get_task_status_list_v1_with_http_info(
            limit=step.get("limit"),
            offset=step.get("offset"),
            count=step.get("count"),
            filters=filters,
            sorters=step.get("sorters"),
        )
        items = resp.data
        headers = {k.lower(): v for k, v in (resp.headers or {}).items()}
        return {
            "status_code": resp.status_code,
            "list_type": _type(items),
            "items": [summarize_task_status(ts) for ts in items or []],
            "total_count": headers.get("x-total-count"),
        }

    def op_patch(self, step: dict[str, Any]) -> dict[str, Any]:
        task_id = self._task_id(step)
        ops = [
            JsonPatchOperation(
                op="replace",
                path="/completionStatus",
                value=JsonPatchOperationValue(step.get("value", "Error")),
            )
        ]
        ts = self.tasks.update_task_status_v1(task_id, ops)
        return {"task_id": task_id, "status": summarize_task_status(ts)}

    def op_aggregation_status(self, step: dict[str, Any]) -> dict[str, Any]:
        task_id = self._task_id(step)
        st = self.aggregations.get_account_aggregation_status_v1(task_id)
        return {"task_id": task_id, "aggregation": summarize_aggregation_status(st)}

    def op_bad_token(self, step: dict[str, Any]) -> dict[str, Any]:
        params = ConfigurationParams()
        params.base_url = self.spec["base_url"]
        params.access_token = "not-a-valid-token"
        api = TaskManagementApi(ApiClient(Configuration(params)))
        return {"status": summarize_task_status(api.get_task_status_v1(self._task_id(step)))}

    def op_bad_secret(self, step: dict[str, Any]) -> dict[str, Any]:
        config = make_config(self.spec["base_url"], self.spec["client_id"], "wrong-secret")
        # Recorded before the call below, which is expected to raise.
        self.partial["token_is_none"] = config.access_token is None
        api = TaskManagementApi(ApiClient(config))
        return {"status": summarize_task_status(api.get_task_status_v1(self._task_id(step)))}

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
                result["exception"] = summarize_exception(exc)
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
