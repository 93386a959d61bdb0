"""Check a JSON response against the EnergyCapSdk's own models
(``../shared/specs/energycap-chargeback-subset.json``): every field the SDK knows must
have the type its msrest deserializer expects."""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

# the project's shared/ folder sits beside the checkout (``../shared``)
SPEC = Path(__file__).resolve().parents[3] / "shared" / "specs" / \
    "energycap-chargeback-subset.json"
FALLBACK = Path("/work/shared/specs/energycap-chargeback-subset.json")


def available() -> bool:
    return SPEC.exists() or FALLBACK.exists()


@cache
def spec() -> dict[str, Any]:
    path = SPEC if SPEC.exists() else FALLBACK
    return dict(json.loads(path.read_text()))


def operation_for(method: str, path: str) -> dict[str, Any] | None:
    """The SDK operation answering ``method path`` (path parameters matched loosely,
    paths compared without case, as EnergyCAP's routes are). None without the spec."""
    if not available():
        return None
    for op in spec()["operations"].values():
        pattern = re.sub(r"\{[^}]+\}", r"-?\\d+", op["path"].lower())
        if op["method"] == method.upper() and re.fullmatch(pattern, path.lower()):
            return dict(op)
    return None


def problems(value: Any, type_name: str, where: str = "$") -> list[str]:
    """Why msrest could not deserialize ``value`` as ``type_name`` (empty: it can)."""
    if value is None:
        return []
    if type_name.startswith("[") and type_name.endswith("]"):
        if not isinstance(value, list):
            return [f"{where}: expected a list for {type_name}"]
        return [p for i, item in enumerate(value) for p in problems(item, type_name[1:-1],
                                                                    f"{where}[{i}]")]
    if type_name.startswith("{"):
        return [] if isinstance(value, dict) else [f"{where}: expected an object"]
    simple = {"int": (int,), "long": (int,), "float": (int, float), "str": (str,),
              "bool": (bool,), "object": (dict, list, str, int, float, bool)}
    if type_name in simple:
        ok = isinstance(value, simple[type_name]) and not (
            type_name in ("int", "long", "float") and isinstance(value, bool))
        return [] if ok else [f"{where}: {value!r} is not {type_name}"]
    if type_name == "iso-8601":
        try:
            datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return [f"{where}: {value!r} is not an ISO-8601 date-time"]
        return []
    model = spec()["models"].get(type_name)
    if model is None:
        return []  # a model outside the subset: nothing to check it against
    if not isinstance(value, dict):
        return [f"{where}: expected an object for {type_name}"]
    out: list[str] = []
    keys = {a["key"]: a["type"] for a in model["attributes"].values()}
    for key, item in value.items():
        if key in keys:
            out.extend(problems(item, keys[key], f"{where}.{key}"))
    return out
