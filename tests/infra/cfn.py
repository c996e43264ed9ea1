"""Reading a CloudFormation template in tests: resources by type, and
Fn::If resolved for a given set of condition values."""

from __future__ import annotations

from typing import Any

NO_VALUE = {"Ref": "AWS::NoValue"}


def of_type(resources: dict, resource_type: str) -> dict:
    return {name: body for name, body in resources.items() if body["Type"] == resource_type}


def resolve(value: Any, conditions: dict[str, bool]) -> Any:
    """`value` with every Fn::If decided by `conditions` and every
    AWS::NoValue dropped, as CloudFormation would deploy it."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            name, if_true, if_false = value["Fn::If"]
            return resolve(if_true if conditions[name] else if_false, conditions)
        return {key: resolve(item, conditions) for key, item in value.items() if resolve(item, conditions) != NO_VALUE}
    if isinstance(value, list):
        return [resolve(item, conditions) for item in value if resolve(item, conditions) != NO_VALUE]
    return value


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def statements(document: dict) -> list[dict]:
    return as_list(document["Statement"])
