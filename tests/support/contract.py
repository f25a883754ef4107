"""The back office's contract, ``backoffice/openapi.yaml``, as a checker for JSON bodies.

Used by the scripted fakes (a canned reply that breaks the contract is not served) and by the
contract tests::

    problems = contract_problems("GET", "/api/v1/accounts/1000001/balance", 200, body)
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

__all__ = ["OPENAPI", "contract_problems", "documented_statuses"]

OPENAPI = Path(__file__).resolve().parents[2] / "backoffice" / "openapi.yaml"


@functools.cache
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(OPENAPI.read_text())
    return spec


@functools.cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    found = []
    for template in _spec()["paths"]:
        pattern = re.sub(r"\{[^/}]+\}", "[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
        found.append((re.compile(f"^{pattern}$"), template))
    return found


def _operation(method: str, path: str) -> dict[str, Any] | None:
    for pattern, template in _templates():
        if pattern.match(path):
            operation: dict[str, Any] | None = _spec()["paths"][template].get(method.lower())
            return operation
    return None


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = _spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def documented_statuses(method: str, path: str) -> set[int]:
    """The statuses the contract lists for ``method path`` (empty when the path is not in it)."""
    operation = _operation(method, path)
    return {int(code) for code in (operation or {}).get("responses", {}) if code.isdigit()}


@functools.cache
def _validator(method: str, template_path: str, status: int) -> Any:
    operation = _operation(method, template_path)
    assert operation is not None
    response = _resolve(operation["responses"][str(status)])
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return None
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "components": _spec()["components"],
            **schema}
    return jsonschema_rs.validator_for(root)


def contract_problems(method: str, path: str, status: int, body: Any) -> list[str]:
    """Why ``body`` answered with ``status`` to ``method path`` breaks the contract ([] when it does not)."""
    operation = _operation(method, path)
    if operation is None:
        return [f"{method} {path} is not in openapi.yaml"]
    if str(status) not in operation.get("responses", {}):
        return [f"{method} {path} does not document status {status}"]
    validator = _validator(method, path, status)
    if validator is None:
        return [] if body is None else [f"{method} {path} {status} documents no JSON body"]
    return [f"{error.instance_path}: {error.message}" for error in validator.iter_errors(body)]
