"""What AWS says about each resource type's properties: which force a new resource when they
change (``createOnlyProperties``) and which can be written but never read back
(``writeOnlyProperties``).

From the CloudFormation resource provider schemas that ``cfn-lint`` ships for every region
(``cfnlint/data/schemas``), maintained by AWS, rather than a table written by hand: a change set
says a property forces replacement exactly when CloudFormation's own would.
"""

from __future__ import annotations

import functools
from typing import Any

from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

_PREFIX = "/properties/"


@functools.cache
def _paths(type_name: str, key: str, region: str) -> tuple[tuple[str, ...], ...]:
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, type_name).schema
    return tuple(
        tuple(path[len(_PREFIX) :].split("/"))
        for path in schema.get(key) or ()
        if path.startswith(_PREFIX)
    )


def create_only(type_name: str, region: str = "us-east-1") -> tuple[tuple[str, ...], ...]:
    """The property paths (``("CidrBlock",)``, ``("DnsOptions", "PrivateDnsPreference")``)
    whose change replaces the resource."""
    return _paths(type_name, "createOnlyProperties", region)


def write_only(type_name: str, region: str = "us-east-1") -> tuple[tuple[str, ...], ...]:
    """The property paths AWS never returns (a secret's ``GenerateSecretString``): a drift
    check cannot compare them."""
    return _paths(type_name, "writeOnlyProperties", region)


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if part == "*":
            return value  # a change anywhere in a list item: compared whole
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def forces_replacement(
    type_name: str, name: str, before: Any, after: Any, region: str = "us-east-1"
) -> bool:
    """Whether changing top-level property ``name`` from ``before`` to ``after`` replaces the
    resource: the property is create-only, or a create-only path inside it changed."""
    for path in create_only(type_name, region):
        if path[0] != name:
            continue
        if len(path) == 1:
            return True
        if _at({name: before}, path) != _at({name: after}, path):
            return True
    return False


def is_write_only(type_name: str, name: str, region: str = "us-east-1") -> bool:
    """Whether top-level property ``name`` is write-only as a whole."""
    return (name,) in write_only(type_name, region)
