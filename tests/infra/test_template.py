"""The packaged template (scripts/package -> sam.json) describes the whole
system: what Chalice generates plus infra/resources.json, merged."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.aws import schema
from tests.infra.cfn import as_list, of_type, resolve, statements
from tests.infra.conftest import ROOT, build

FUNCTIONS = ("APIHandler", "Maintenance")
API_STAGE = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["dev"]["api_gateway_stage"]
APP_DIMENSIONS = [{"Name": "service", "Value": "lifeboat"}]


def test_template_holds_chalice_functions_api_and_our_resources(resources):
    expected = {
        "APIHandler": "AWS::Serverless::Function",
        "Maintenance": "AWS::Serverless::Function",
        "RestAPI": "AWS::Serverless::Api",
        "APIHandlerInvokePermission": "AWS::Lambda::Permission",
        "ApiHandlerRole": "AWS::IAM::Role",
        "MaintenanceRole": "AWS::IAM::Role",
        "LambdaAccessPolicy": "AWS::IAM::ManagedPolicy",
        "PostsTable": "AWS::DynamoDB::Table",
        "DataBucket": "AWS::S3::Bucket",
        "DataBucketPolicy": "AWS::S3::BucketPolicy",
        "ApiHandlerLogGroup": "AWS::Logs::LogGroup",
        "MaintenanceLogGroup": "AWS::Logs::LogGroup",
        "AlarmTopic": "AWS::SNS::Topic",
        "Dashboard": "AWS::CloudWatch::Dashboard",
    }
    assert {name: resources[name]["Type"] for name in expected if name in resources} == expected
    # Every merged override landed on a resource Chalice made: a renamed
    # logical id would otherwise leave a resource without a Type.
    assert all("Type" in body for body in resources.values())


def test_deployment_zip_is_beside_the_template(package_dir, resources):
    for name in FUNCTIONS:
        assert resources[name]["Properties"]["CodeUri"] == "./deployment.zip"
    assert (package_dir / "deployment.zip").stat().st_size > 0


def test_deployment_zip_holds_linux_builds_of_every_requirement(package_dir):
    # Chalice only warns when it cannot get a Linux wheel for a dependency:
    # the zip would deploy and fail at import time, so look inside.
    names = zipfile.ZipFile(package_dir / "deployment.zip").namelist()
    assert "app.py" in names and "chalicelib/aws/schema.py" in names
    assert "aws_lambda_powertools/__init__.py" in names and "feedgen/__init__.py" in names
    assert "chalicelib/api/openapi.json" in names  # GET /openapi.json serves it
    assert any(name.startswith("lxml/etree.cpython-311-x86_64-linux-gnu") for name in names)


def test_cfn_lint_reports_nothing(package_dir):
    # cfn-lint checks both branches of every Fn::If and the resources of every
    # condition, so this covers the optional parts (WAF, reserved concurrency)
    # both on and off; `--parameters` would not narrow it.
    result = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "cfn-lint"), "--format", "parseable", "--", "sam.json"],
        cwd=package_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stdout.strip(), result.stderr.strip()) == (0, "", "")


# -- data ----------------------------------------------------------------------


def test_table_keys_and_indexes_are_exactly_the_schema_definition(resources):
    table = resources["PostsTable"]["Properties"]
    definition = schema.table_definition("ignored")
    for field in ("BillingMode", "KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes"):
        assert table[field] == definition[field], field
    assert "TableName" not in table  # CloudFormation names it: stacks side by side never clash


def test_table_is_on_demand_with_pitr_encryption_and_ttl(resources):
    table = resources["PostsTable"]
    assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": schema.TTL_ATTRIBUTE, "Enabled": True}
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_bucket_is_versioned_encrypted_and_cleans_up_after_itself(resources):
    bucket = resources["DataBucket"]
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    [encryption] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    rules = props["LifecycleConfiguration"]["Rules"]
    archive = [rule for rule in rules if rule.get("Prefix") == schema.ARCHIVE_PREFIX]
    assert archive and archive[0]["Transitions"][0]["TransitionInDays"] == 30
    assert any("NoncurrentVersionExpiration" in rule for rule in rules)
    assert any("AbortIncompleteMultipartUpload" in rule for rule in rules)
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")


def _public_statements(resources: dict, public_feeds: bool) -> list[dict]:
    policy = resolve(
        resources["DataBucketPolicy"]["Properties"]["PolicyDocument"], {"PublicFeedsEnabled": public_feeds}
    )
    return [s for s in statements(policy) if s["Effect"] == "Allow" and s.get("Principal") in ("*", {"AWS": "*"})]


def test_bucket_is_private_by_default(resources):
    block = resolve(
        resources["DataBucket"]["Properties"]["PublicAccessBlockConfiguration"], {"PublicFeedsEnabled": False}
    )
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    assert _public_statements(resources, public_feeds=False) == []


def test_public_feeds_opens_only_get_object_on_feeds_prefix(template, resources):
    assert template["Conditions"]["PublicFeedsEnabled"] == {"Fn::Equals": [{"Ref": "PublicFeeds"}, "true"]}
    assert template["Parameters"]["PublicFeeds"]["Default"] == "false"
    block = resolve(
        resources["DataBucket"]["Properties"]["PublicAccessBlockConfiguration"], {"PublicFeedsEnabled": True}
    )
    # ACLs stay blocked: only the bucket policy below may grant public reads.
    assert block["BlockPublicAcls"] is True and block["IgnorePublicAcls"] is True
    [public] = _public_statements(resources, public_feeds=True)
    assert as_list(public["Action"]) == ["s3:GetObject"]
    assert as_list(public["Resource"]) == [{"Fn::Sub": "${DataBucket.Arn}/feeds/*"}]


def test_bucket_refuses_plain_http(resources):
    policy = resources["DataBucketPolicy"]["Properties"]["PolicyDocument"]
    deny = [s for s in statements(resolve(policy, {"PublicFeedsEnabled": False})) if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# -- functions and API ----------------------------------------------------------


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_environment_refers_to_created_resources(resources, function):
    variables = resources[function]["Properties"]["Environment"]["Variables"]
    assert variables["TABLE_NAME"] == {"Ref": "PostsTable"}
    assert variables["BUCKET_NAME"] == {"Ref": "DataBucket"}
    assert variables["ADMIN_TOKEN_SHA256"] == {"Ref": "AdminTokenSha256"}
    assert variables["UPSTREAM_URL"] == {"Ref": "UpstreamUrl"}
    assert "ADMIN_TOKEN" not in variables


def test_admin_token_arrives_only_as_a_hash_through_a_noecho_parameter(template):
    parameter = template["Parameters"]["AdminTokenSha256"]
    assert parameter["NoEcho"] is True
    assert "Default" not in parameter
    assert parameter["AllowedPattern"] == "^[0-9a-f]{64}$"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_functions_trace_and_log_to_their_own_retained_log_group(resources, function):
    props = resources[function]["Properties"]
    assert props["Tracing"] == "Active"
    [log_group] = resources[function]["DependsOn"]
    name = resources[log_group]["Properties"]["LogGroupName"]["Fn::Sub"]
    assert name == "/aws/lambda/" + props["FunctionName"]["Fn::Sub"]
    assert resources[log_group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_api_states_its_request_size_limits(resources):
    assert "10 MB" in resources["RestAPI"]["Metadata"]["RequestSizeLimits"]


def test_api_is_named_after_the_stack_so_its_metrics_are_its_own(resources):
    # API Gateway metrics are keyed by ApiName: two stacks in one account
    # must not share "lifeboat".
    assert resources["RestAPI"]["Properties"]["DefinitionBody"]["info"]["title"] == {"Fn::Sub": "${AWS::StackName}"}


# -- alarms and dashboard ---------------------------------------------------------


def _alarms(resources: dict) -> dict:
    return {name: body["Properties"] for name, body in of_type(resources, "AWS::CloudWatch::Alarm").items()}


def test_every_alarm_notifies_the_alarm_topic(resources):
    alarms = _alarms(resources)
    assert alarms
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert "docs/OPERATIONS.md#" in alarm["AlarmDescription"], name


def test_replay_stuck_alarm_fires_only_while_the_primary_is_up(resources):
    alarm = _alarms(resources)["ReplayStuckAlarm"]
    by_id = {query["Id"]: query for query in alarm["Metrics"]}
    assert by_id["age"]["MetricStat"]["Metric"]["MetricName"] == "OldestPendingAgeSeconds"
    assert by_id["up"]["MetricStat"]["Metric"]["MetricName"] == "UpstreamUp"
    for metric_id in ("age", "up"):
        metric = by_id[metric_id]["MetricStat"]["Metric"]
        assert (metric["Namespace"], metric["Dimensions"]) == ("Lifeboat", APP_DIMENSIONS)
    [returned] = [query for query in alarm["Metrics"] if query["ReturnData"]]
    assert returned["Expression"] == {"Fn::Sub": "IF(up == 1 AND age > ${ReplayStuckSeconds}, 1, 0)"}


def test_any_dead_letter_alarms(resources):
    alarm = _alarms(resources)["DeadLetterAlarm"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == (
        "Lifeboat",
        "DeadLettered",
        APP_DIMENSIONS,
    )
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == ("Sum", "GreaterThanThreshold", 0)


@pytest.mark.parametrize(
    ("name", "metric"),
    [
        ("MirrorUnauthorizedAlarm", "MirrorUnauthorized"),
        ("MirrorInboxRejectedAlarm", "MirrorInboxRejected"),
        ("MirrorInboxFailedAlarm", "MirrorInboxFailed"),
    ],
)
def test_a_stopped_mirror_alarms_at_its_first_count(resources, name, metric):
    alarm = _alarms(resources)[name]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == ("Lifeboat", metric, APP_DIMENSIONS)
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == ("Sum", "GreaterThanThreshold", 0)


def test_each_function_has_error_and_throttle_alarms(resources):
    functions = of_type(resources, "AWS::Serverless::Function")
    watched = {
        (alarm["MetricName"], alarm["Dimensions"][0]["Value"]["Ref"])
        for alarm in _alarms(resources).values()
        if alarm.get("Namespace") == "AWS/Lambda"
    }
    every = {(metric, name) for name in functions for metric in ("Errors", "Throttles")}
    assert watched == every | {("IteratorAge", "StreamChanges")}


def test_api_5xx_rate_alarm_watches_this_api(resources):
    alarm = _alarms(resources)["Api5xxRateAlarm"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/ApiGateway", "5XXError", "Average")
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dimensions == {"ApiName": {"Fn::Sub": "${AWS::StackName}"}, "Stage": API_STAGE}
    assert alarm["Threshold"] == {"Ref": "Api5xxRateThreshold"}


def test_dashboard_shows_backlog_replay_primary_requests_and_posts(resources):
    body = json.loads(resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"])
    shown = {tuple(metric[:2]) for widget in body["widgets"] for metric in widget["properties"]["metrics"]}
    for name in ("BacklogSize", "Replayed", "UpstreamUp", "PostsAccepted", "PostsSpooled"):
        assert ("Lifeboat", name) in shown
    assert ("AWS/ApiGateway", "Count") in shown


def test_alarm_email_subscription_is_optional(template, resources):
    assert resources["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""


# -- stages -----------------------------------------------------------------------


def test_prod_stage_packages_the_same_system(tmp_path, resources):
    prod = build(tmp_path, "prod")["Resources"]
    assert {name: body["Type"] for name, body in prod.items()} == {
        name: body["Type"] for name, body in resources.items()
    }
    assert prod["APIHandler"]["Properties"]["Environment"]["Variables"]["WRITE_SHARDS"] == "16"


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_stage_parameter_files_name_only_template_parameters(template, stage):
    lines = (ROOT / "infra" / f"params-{stage}.env").read_text().splitlines()
    names = {line.split("=", 1)[0] for line in lines if line.strip() and not line.startswith("#")}
    assert names <= set(template["Parameters"])
    assert "AdminTokenSha256" not in names


def test_gateway_errors_keep_the_apps_error_shape(resources):
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGateway::GatewayResponse"
    }
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "MISSING_AUTHENTICATION_TOKEN", "THROTTLED", "REQUEST_TOO_LARGE"} <= set(
        responses
    )
    # An unknown path is a 404 for clients, not API Gateway's 403 "Missing Authentication Token".
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    for props in responses.values():
        body = props["ResponseTemplates"]["application/json"]
        assert body.startswith('{"error": "') and '"message": $context.error.messageString' in body
