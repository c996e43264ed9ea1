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


def parameter_values(template: dict, **given: Any) -> dict[str, Any]:
    """What a deploy passes: each parameter's default, overridden by `given`."""
    values = {name: body["Default"] for name, body in template["Parameters"].items() if "Default" in body}
    return values | given


def evaluate(expression: Any, template: dict, values: dict[str, Any]) -> Any:
    """A condition or rule expression (Fn::Equals, Not, And, Or, Ref,
    Condition) for these parameter values, as CloudFormation decides it:
    Fn::Equals compares the values as strings."""
    if not isinstance(expression, dict):
        return expression
    [(function, argument)] = expression.items()
    if function == "Ref":
        return values[argument]
    if function == "Condition":
        return evaluate(template["Conditions"][argument], template, values)
    operands = [evaluate(operand, template, values) for operand in argument]
    if function == "Fn::Equals":
        left, right = operands
        return str(left) == str(right)
    if function == "Fn::Not":
        [operand] = operands
        return not operand
    if function == "Fn::And":
        return all(operands)
    if function == "Fn::Or":
        return any(operands)
    raise ValueError(f"{function} is not a condition function")


def conditions(template: dict, values: dict[str, Any]) -> dict[str, bool]:
    """Every condition of the template, decided for these parameter values."""
    return {name: evaluate({"Condition": name}, template, values) for name in template["Conditions"]}


def failed_assertions(template: dict, values: dict[str, Any]) -> list[str]:
    """The AssertDescription of every Rules assertion these parameter values
    break: CloudFormation refuses to create or update the stack with them."""
    failed = []
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], template, values):
            continue
        for assertion in rule["Assertions"]:
            if not evaluate(assertion["Assert"], template, values):
                failed.append(assertion["AssertDescription"])
    return failed
