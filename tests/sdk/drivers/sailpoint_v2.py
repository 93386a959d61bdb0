"""Drive the official ``sailpoint`` 2.x SDK (per-service ``/<service>/v1`` APIs) against sheaf.

Run with the python of the ``sailpoint2`` SDK venv, never the project venv: the
SDK pins its own pydantic/urllib3. Standalone on purpose (no sheaf imports), so
it exercises the server exactly as an SDK user would. The step loop, JSON
output and model-summary helpers are in the sibling ``common.py`` (stdlib only).

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

import sys
import time
from pathlib import Path
from typing import Any

import common
from common import StepDriver, aggregation_attributes, completion, iso, main, type_name
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


def load_task_fields(task: Any) -> dict[str, Any]:
    """Key fields of the task in a ``LoadAccountsTask`` reply, with their Python types."""
    attrs = task.attributes
    return {
        "launcher": task.launcher,
        "created": iso(task.created),
        "created_type": type_name(task.created),
        "launched_type": type_name(task.launched),
        "completion_status": task.completion_status,
        "messages": [m.to_dict() for m in task.messages or []],
        "returns": [r.to_dict() for r in task.returns or []],
        "attributes_model": type_name(attrs),
        **aggregation_attributes(attrs),
        "attributes_extra": getattr(attrs, "additional_properties", None),
    }


def summarize_load_task(resp: Any) -> dict[str, Any]:
    """Key fields of a parsed ``LoadAccountsTask`` (202 reply), with their Python types."""
    return common.summarize_load_reply(resp, load_task_fields)


def task_status_fields(ts: Any) -> dict[str, Any]:
    """Key fields of a parsed ``TaskStatus`` after its identity, with their Python types."""
    return {
        "launcher": ts.launcher,
        "target": ts.target.to_dict() if ts.target else None,
        "created": iso(ts.created),
        "created_type": type_name(ts.created),
        "modified_type": type_name(ts.modified),
        "launched_type": type_name(ts.launched),
        **completion(ts),
        "progress": ts.progress,
        "percent_complete": ts.percent_complete,
        "percent_complete_type": type_name(ts.percent_complete),
        "attributes": ts.attributes,
        "returns": [r.to_dict() for r in ts.returns],
        "messages": [m.to_dict() for m in ts.messages],
    }


def summarize_task_status(ts: Any) -> dict[str, Any]:
    """Key fields of a parsed ``TaskStatus``, with their Python types."""
    return common.summarize_task_status(ts, task_status_fields)


def summarize_aggregation_status(st: Any) -> dict[str, Any]:
    """Key fields of a parsed ``AccountAggregationStatus``."""
    out: dict[str, Any] = {"model": type_name(st)}
    if st is not None:
        # to_dict(), not to_json(): the SDK's to_json cannot serialise datetimes.
        out.update({k: iso(v) for k, v in st.to_dict().items()})
        out["start_type"] = type_name(st.start)
    return out


def make_config(base_url: str, client_id: str, client_secret: str) -> Configuration:
    """Configuration exactly as documented for users; the SDK fetches the token itself."""
    params = ConfigurationParams()
    params.base_url = base_url
    params.client_id = client_id
    params.client_secret = client_secret
    return Configuration(params)


class Driver(StepDriver):
    """Runs the step list against one SDK ApiClient."""

    api_exceptions = (ApiException,)

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.config = make_config(spec["base_url"], spec["client_id"], spec["client_secret"])
        if self.config.access_token is None:
            raise RuntimeError("SDK could not fetch an access token from /oauth/token")
        self.client = ApiClient(self.config)
        self.sources = SourcesApi(self.client)
        self.tasks = TaskManagementApi(self.client)
        self.aggregations = AccountAggregationsApi(self.client)

    @classmethod
    def summarize_exception(cls, exc: BaseException) -> dict[str, Any]:
        """The common exception summary plus the type of the SDK's parsed error body."""
        out = super().summarize_exception(exc)
        out["data_model"] = type_name(getattr(exc, "data", None))
        return out

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
            final, polls = self.poll_until_complete(self.tasks.get_task_status_v1, task_id)
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
        resp = self.tasks.get_task_status_list_v1_with_http_info(**self._list_args(step))
        items = resp.data
        headers = {k.lower(): v for k, v in (resp.headers or {}).items()}
        return {
            "status_code": resp.status_code,
            "list_type": type_name(items),
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


if __name__ == "__main__":
    sys.exit(main(sys.argv, Driver))
