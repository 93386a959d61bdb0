"""Drive the official ``sailpoint`` 1.x SDK (versioned ``/beta`` and ``/v2025`` APIs) against sheaf.

Run with the python of the ``sailpoint1`` SDK venv. Standalone on purpose (no
sheaf imports): it uses the SDK exactly as a 1.x user would, i.e.
``sailpoint.configuration.Configuration`` plus ``sailpoint.beta`` /
``sailpoint.v2025`` API classes, each prefixing its own version to base_url.
The step loop, JSON output and model-summary helpers are in the sibling
``common.py`` (stdlib only).

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

import sys
from pathlib import Path
from typing import Any

import common
import sailpoint.beta
import sailpoint.v2025
from common import StepDriver, aggregation_attributes, completion, main, type_name
from sailpoint.beta.exceptions import ApiException as BetaApiException
from sailpoint.configuration import Configuration, ConfigurationParams
from sailpoint.v2025.exceptions import ApiException as V2025ApiException

OTHER_API = {"beta": "v2025", "v2025": "beta"}


def load_task_fields(task: Any) -> dict[str, Any]:
    """Key fields of the task in a ``LoadAccountsTask`` reply, with their Python types."""
    return {
        "created_type": type_name(task.created),
        "completion_status": task.completion_status,
        "returns": [r.to_dict() for r in task.returns or []],
        **aggregation_attributes(task.attributes),
    }


def summarize_load_task(resp: Any) -> dict[str, Any]:
    """Key fields of a parsed ``LoadAccountsTask`` (202 reply), with their Python types."""
    return common.summarize_load_reply(resp, load_task_fields, with_module=True)


def task_status_fields(ts: Any) -> dict[str, Any]:
    """Key fields of a parsed ``TaskStatus`` after its identity, with their Python types."""
    return {
        "created_type": type_name(ts.created),
        "modified_type": type_name(ts.modified),
        **completion(ts),
        "percent_complete": ts.percent_complete,
        "attributes": ts.attributes,
        "returns": [r.to_dict() for r in ts.returns],
    }


def summarize_task_status(ts: Any) -> dict[str, Any]:
    """Key fields of a parsed ``TaskStatus``, with their Python types."""
    return common.summarize_task_status(ts, task_status_fields, with_module=True)


class Driver(StepDriver):
    """Runs the step list against beta and v2025 ApiClients sharing one Configuration."""

    api_exceptions = (BetaApiException, V2025ApiException)

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
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
            final, polls = self.poll_until_complete(self.tasks[api].get_task_status, task_id)
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
        items = self.tasks[step["api"]].get_task_status_list(**self._list_args(step))
        return {
            "api": step["api"],
            "list_type": type_name(items),
            "items": [summarize_task_status(ts) for ts in items or []],
        }


if __name__ == "__main__":
    sys.exit(main(sys.argv, Driver))
