"""The functions' IAM policy grants exactly what chalicelib calls.

"What chalicelib calls" is found by reading its source: every boto3 client
method call (and paginator) is mapped to its IAM action in the table below,
and every DynamoDB transaction item kind to the per-item action AWS checks
(TransactWriteItems has no IAM action of its own: AWS evaluates PutItem,
UpdateItem, DeleteItem or ConditionCheckItem for each item). A client call
missing from the table fails the test: map it, then grant it.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name

from chalicelib.aws import schema
from chalicelib.mirror.inbox import DONE_PREFIX, INBOX_PREFIX, REJECTED_PREFIX
from tests.infra.cfn import as_list, of_type, resolve, statements
from tests.infra.conftest import ROOT

# boto3 client method -> the IAM action AWS checks for it (a tuple: it checks
# each of them).
CLIENT_CALL_ACTIONS = {
    "get_item": "dynamodb:GetItem",
    "put_item": "dynamodb:PutItem",
    "update_item": "dynamodb:UpdateItem",
    "delete_item": "dynamodb:DeleteItem",
    "query": "dynamodb:Query",
    "batch_get_item": "dynamodb:BatchGetItem",
    "batch_write_item": "dynamodb:BatchWriteItem",
    "put_object": "s3:PutObject",
    "get_object": "s3:GetObject",
    "head_object": "s3:GetObject",
    "delete_object": "s3:DeleteObject",
    # GetObject on the source, PutObject on the destination.
    "copy_object": ("s3:GetObject", "s3:PutObject"),
    "list_objects_v2": "s3:ListBucket",
    "get_parameter": "ssm:GetParameter",
    "encrypt": "kms:Encrypt",
    "decrypt": "kms:Decrypt",
}
# TransactWriteItems: the actions come from the kinds of item it carries.
TRANSACT_CALLS = {"transact_write_items"}
TRANSACT_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
# Functions whose calls never run on AWS. schema.ensure_resources creates the
# table and bucket for the local stack and the tests; on AWS the template
# owns them, and the functions must not be able to create or drop them.
LOCAL_ONLY_FUNCTIONS = {("aws/schema.py", "ensure_resources"), ("upstream/tokens.py", "ensure_key")}
CHALICELIB = ROOT / "chalicelib"
# Called by the Lambda runtime for the function, not by chalicelib.
STREAM_MAPPING_ACTIONS = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
}
RUNTIME_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# `chalice deploy` does not create log groups, so its policy files also need:
CHALICE_DEPLOY_RUNTIME_ACTIONS = RUNTIME_ACTIONS | {"logs:CreateLogGroup"}
# X-Ray's write actions have no resource-level permissions: "*" is the only
# resource AWS accepts for them.
RESOURCE_STAR_ALLOWED = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


@dataclass(frozen=True)
class Call:
    where: str
    method: str


def _client_services(trees: dict[str, ast.AST]) -> set[str]:
    """Services the code builds clients for: new_client("x") / .client("x")."""
    services = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called_name(node) in {"new_client", "client"} and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    services.add(first.value)
    return services


def _called_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _operation_names(services: set[str]) -> set[str]:
    session = botocore.session.get_session()
    return {xform_name(op) for service in services for op in session.get_service_model(service).operation_names}


def _local_only_lines(path: Path, tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and (_relative(path), node.name) in LOCAL_ONLY_FUNCTIONS:
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def _relative(path: Path) -> str:
    return path.relative_to(CHALICELIB).as_posix()


def scan_chalicelib() -> tuple[list[Call], set[str]]:
    """Every boto3 client call in chalicelib (outside local-only code), and
    the kinds of transaction item it builds ("Put", "Update", ...)."""
    paths = sorted(CHALICELIB.rglob("*.py"))
    trees = {path: ast.parse(path.read_text(), filename=str(path)) for path in paths}
    operations = _operation_names(_client_services({str(p): t for p, t in trees.items()}))
    calls, item_kinds = [], set()
    for path, tree in trees.items():
        skipped = _local_only_lines(path, tree)
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skipped:
                continue
            where = f"{_relative(path)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                if name in {"get_paginator", "get_waiter"} and node.args and isinstance(node.args[0], ast.Constant):
                    calls.append(Call(where, str(node.args[0].value)))
                elif name in operations:
                    calls.append(Call(where, name))
            if isinstance(node, ast.Dict):
                item_kinds.update(
                    key.value
                    for key in node.keys
                    if isinstance(key, ast.Constant) and key.value in TRANSACT_ITEM_ACTIONS
                )
    return calls, item_kinds


def called_actions() -> set[str]:
    calls, item_kinds = scan_chalicelib()
    actions = set()
    for call in calls:
        mapped = CLIENT_CALL_ACTIONS.get(call.method, ())
        actions.update((mapped,) if isinstance(mapped, str) else mapped)
    if any(call.method in TRANSACT_CALLS for call in calls):
        actions |= {TRANSACT_ITEM_ACTIONS[kind] for kind in item_kinds}
    return actions


def _function_policies(resources: dict) -> list[dict]:
    """Every policy document any function's role carries, however attached."""
    documents = []
    roles = {
        body["Properties"]["Role"]["Fn::GetAtt"][0] for body in of_type(resources, "AWS::Serverless::Function").values()
    }
    for role in roles:
        props = resources[role]["Properties"]
        documents += [policy["PolicyDocument"] for policy in props.get("Policies", [])]
        for arn in props.get("ManagedPolicyArns", []):
            documents.append(resources[arn["Ref"]]["Properties"]["PolicyDocument"])
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {ref["Ref"] for ref in policy["Properties"].get("Roles", [])} & roles:
            documents.append(policy["Properties"]["PolicyDocument"])
    return documents


def _allows(documents: list[dict]) -> list[dict]:
    return [s for document in documents for s in statements(document) if s["Effect"] == "Allow"]


def _granted(documents: list[dict]) -> set[str]:
    return {action for s in _allows(documents) for action in as_list(s["Action"])}


# -- the scan itself ------------------------------------------------------------


def test_scan_sees_the_calls_we_know_are_there():
    calls, item_kinds = scan_chalicelib()
    methods = {call.method for call in calls}
    assert {"transact_write_items", "get_item", "query", "put_object", "list_objects_v2"} <= methods
    assert {"Put", "Update"} <= item_kinds
    assert "create_table" not in methods  # ensure_resources is local-only


def test_every_client_call_is_in_the_mapping_table():
    calls, _ = scan_chalicelib()
    unmapped = [call for call in calls if call.method not in CLIENT_CALL_ACTIONS and call.method not in TRANSACT_CALLS]
    assert unmapped == [], "map these boto3 calls to IAM actions in CLIENT_CALL_ACTIONS, then grant them"


# -- the template -----------------------------------------------------------------


def test_functions_are_granted_exactly_what_the_code_calls(resources):
    granted = _granted(_function_policies(resources))
    assert granted - RUNTIME_ACTIONS - STREAM_MAPPING_ACTIONS == called_actions()
    assert granted >= RUNTIME_ACTIONS


def test_only_the_stream_function_reads_the_stream_and_only_the_tables_stream(resources):
    # Lambda's event source mapping reads the stream with the function's role;
    # chalicelib never calls these itself.
    (policy,) = [name for name, body in of_type(resources, "AWS::IAM::ManagedPolicy").items() if _reads_stream(body)]
    holders = [
        name
        for name, role in resources.items()
        if {"Ref": policy} in role.get("Properties", {}).get("ManagedPolicyArns", [])
    ]
    assert holders == ["StreamChangesRole"]
    assert resources["StreamChangesRole"]["Properties"]["Policies"] == []
    (statement,) = statements(resources[policy]["Properties"]["PolicyDocument"])
    assert set(as_list(statement["Action"])) == STREAM_MAPPING_ACTIONS
    assert as_list(statement["Resource"]) == [{"Fn::Sub": "${PostsTable.Arn}/stream/*"}]


def _reads_stream(policy: dict) -> bool:
    return bool(_granted([policy["Properties"]["PolicyDocument"]]) & STREAM_MAPPING_ACTIONS)


@pytest.mark.parametrize("role", ["ApiHandlerRole", "MaintenanceRole"])
def test_chalice_roles_carry_only_the_precise_managed_policy(resources, role):
    props = resources[role]["Properties"]
    assert props["Policies"] == []
    assert props["ManagedPolicyArns"] == [{"Ref": "LambdaAccessPolicy"}]


def test_no_allow_anywhere_names_a_wildcard_action(resources):
    documents = [
        body["Properties"]["PolicyDocument"]
        for body in resources.values()
        if "PolicyDocument" in body.get("Properties", {})
    ]
    documents += [
        policy["PolicyDocument"]
        for role in of_type(resources, "AWS::IAM::Role").values()
        for policy in role["Properties"].get("Policies", [])
    ]
    actions = [action for s in _allows(_resolve_ifs(documents)) for action in as_list(s["Action"])]
    assert actions
    assert [action for action in actions if "*" in action] == []


def _resolve_ifs(documents: list[dict]) -> list[dict]:
    # Both branches of the PublicFeeds condition are checked.
    return [resolve(doc, {"PublicFeedsEnabled": on}) for doc in documents for on in (True, False)]


def _statements_where(resources, applies) -> list[dict]:
    """The function policies' Allow statements that `applies` to; never none,
    so that a renamed action or resource cannot make the check below vacuous."""
    statements = [statement for statement in _allows(_function_policies(resources)) if applies(statement)]
    assert statements, "no statement matched: the check would pass on nothing"
    return statements


def _acts_on(service: str):
    return lambda statement: any(action.startswith(service) for action in as_list(statement["Action"]))


def test_resource_star_only_for_actions_without_resource_level_permissions(resources):
    for statement in _statements_where(resources, lambda statement: "*" in as_list(statement["Resource"])):
        assert set(as_list(statement["Action"])) <= RESOURCE_STAR_ALLOWED, statement["Sid"]


def test_table_actions_name_only_this_table_and_its_indexes(resources):
    for statement in _statements_where(resources, _acts_on("dynamodb:")):
        if set(as_list(statement["Action"])) == STREAM_MAPPING_ACTIONS:
            continue  # the table's stream only: see the test above
        assert statement["Resource"] == [
            {"Fn::GetAtt": ["PostsTable", "Arn"]},
            {"Fn::Sub": "${PostsTable.Arn}/index/*"},
        ]


# Each object action, and the prefixes it may act on: the mirror's inbox is
# read and emptied, and only written to where its objects move.
APP_PREFIXES = [schema.SPOOL_PREFIX, schema.ARCHIVE_PREFIX, "feeds/"]
OBJECT_ACTION_PREFIXES = {
    "s3:GetObject": [*APP_PREFIXES, INBOX_PREFIX],
    "s3:DeleteObject": [*APP_PREFIXES, INBOX_PREFIX],
    "s3:PutObject": [*APP_PREFIXES, DONE_PREFIX, REJECTED_PREFIX],
}


def test_object_actions_name_only_the_apps_prefixes(resources):
    lists = _statements_where(resources, lambda statement: "s3:ListBucket" in as_list(statement["Action"]))
    for statement in lists:
        assert as_list(statement["Action"]) == ["s3:ListBucket"]
        assert statement["Resource"] == [{"Fn::GetAtt": ["DataBucket", "Arn"]}]
        assert statement["Condition"] == {"StringLike": {"s3:prefix": [p + "*" for p in [*APP_PREFIXES, INBOX_PREFIX]]}}
    # Every role carries the policy: the same statement may come twice.
    granted: dict[str, set[str]] = {}
    for statement in _statements_where(
        resources, lambda statement: _acts_on("s3:")(statement) and statement not in lists
    ):
        for action in as_list(statement["Action"]):
            granted.setdefault(action, set()).update(json.dumps(r) for r in as_list(statement["Resource"]))
    assert granted == {
        action: {json.dumps({"Fn::Sub": "${DataBucket.Arn}/" + p + "*"}) for p in prefixes}
        for action, prefixes in OBJECT_ACTION_PREFIXES.items()
    }


def test_logs_go_only_to_the_functions_own_log_groups(resources):
    for statement in _statements_where(resources, _acts_on("logs:")):
        assert statement["Resource"] == [
            {"Fn::GetAtt": ["ApiHandlerLogGroup", "Arn"]},
            {"Fn::GetAtt": ["MaintenanceLogGroup", "Arn"]},
        ]


# -- the policy files `chalice deploy` uses ---------------------------------------


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_chalice_deploy_policy_files_grant_the_same_actions(stage):
    document = json.loads((ROOT / ".chalice" / f"policy-{stage}.json").read_text())
    granted = _granted([document])
    assert granted - CHALICE_DEPLOY_RUNTIME_ACTIONS == called_actions()
    assert [action for action in granted if "*" in action] == []
    for statement in _allows([document]):
        if "*" in as_list(statement["Resource"]):
            assert set(as_list(statement["Action"])) <= RESOURCE_STAR_ALLOWED
