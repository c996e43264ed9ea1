"""Abuse at the edge: reads cannot spend the posting budget, and an optional
per-IP WAF rule (docs/OPERATIONS.md, "Abuse at the edge")."""

from __future__ import annotations

import re

import pytest

from tests.infra.cfn import of_type, resolve
from tests.infra.conftest import ROOT

READ_BUDGET = ("ApiReadThrottleRateLimit", "ApiReadThrottleBurstLimit")
WRITE_BUDGET = ("ApiWriteThrottleRateLimit", "ApiWriteThrottleBurstLimit")
WAF_RESOURCES = {"ApiWebAcl": "AWS::WAFv2::WebACL", "ApiWebAclAssociation": "AWS::WAFv2::WebACLAssociation"}


def client_writes() -> set[tuple[str, str]]:
    """Every method a client uses to change something (admin routes aside;
    preflights and the catch-all's 404s change nothing, so they read)."""
    import app
    from chalicelib.api.fallback import CATCH_ALL

    return {
        (path, method)
        for path, methods in app.app.routes.items()
        if not path.startswith("/admin/") and path != CATCH_ALL
        for method in methods
        if method not in ("GET", "OPTIONS")
    }


def method_settings(resources: dict) -> dict[tuple[str, str], tuple[dict, dict]]:
    """(path, method) -> (rate, burst) of the stage's method settings."""
    settings = {}
    for setting in resources["RestAPI"]["Properties"]["MethodSettings"]:
        settings[decoded(setting["ResourcePath"]), setting["HttpMethod"]] = (
            setting["ThrottlingRateLimit"],
            setting["ThrottlingBurstLimit"],
        )
    return settings


def decoded(resource_path: str) -> str:
    """A MethodSetting's ResourcePath as the route it names: API Gateway wants
    a leading slash, then the path with each of its slashes written ~1
    (`/~1posts~1{post_id}`); `/*` is every resource."""
    if resource_path == "/*":
        return resource_path
    assert re.fullmatch(r"/(~1[^/~]+)+", resource_path), f"not API Gateway's form: {resource_path}"
    return resource_path[1:].replace("~1", "/")


def refs(*names: str) -> tuple[dict, ...]:
    return tuple({"Ref": name} for name in names)


def stage_parameters(stage: str) -> dict[str, str]:
    lines = (ROOT / "infra" / f"params-{stage}.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_every_method_but_the_client_writes_has_the_read_budget(resources):
    settings = method_settings(resources)
    assert settings.pop(("/*", "*")) == refs(*READ_BUDGET)
    assert set(settings) == client_writes()


def test_each_client_write_has_its_own_write_budget(resources):
    settings = method_settings(resources)
    assert {route for route in client_writes() if settings.get(route) == refs(*WRITE_BUDGET)} == client_writes()
    assert ("/posts", "POST") in client_writes()


def test_reads_get_less_than_writes_by_default_and_in_each_stage(template):
    defaults = {name: template["Parameters"][name]["Default"] for name in READ_BUDGET + WRITE_BUDGET}
    for values in (defaults, *(stage_parameters(stage) for stage in ("dev", "prod"))):
        read_rate, read_burst, write_rate, write_burst = (float(values[name]) for name in READ_BUDGET + WRITE_BUDGET)
        assert read_rate < write_rate and read_burst < write_burst, values


def test_the_waf_is_off_by_default(template):
    assert template["Parameters"]["WafRateLimit"]["Default"] == "false"
    assert template["Conditions"]["WafRateLimitEnabled"] == {"Fn::Equals": [{"Ref": "WafRateLimit"}, "true"]}
    for stage in ("dev", "prod"):
        assert stage_parameters(stage)["WafRateLimit"] == "false"


def test_the_waf_resources_exist_only_when_it_is_on(resources):
    waf = {name: body for name, body in resources.items() if body["Type"].startswith("AWS::WAFv2::")}
    assert {name: body["Type"] for name, body in waf.items()} == WAF_RESOURCES
    assert {body.get("Condition") for body in waf.values()} == {"WafRateLimitEnabled"}


def test_the_waf_rule_limits_each_ip_and_answers_in_the_apis_error_shape(resources):
    acl = resources["ApiWebAcl"]["Properties"]
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    [rule] = acl["Rules"]
    statement = rule["Statement"]["RateBasedStatement"]
    assert statement["AggregateKeyType"] == "IP"
    assert statement["Limit"] == {"Ref": "WafRateLimitPerIp"}
    assert statement["EvaluationWindowSec"] == {"Ref": "WafRateLimitWindowSeconds"}
    blocked = rule["Action"]["Block"]["CustomResponse"]
    assert blocked["ResponseCode"] == 429
    body = acl["CustomResponseBodies"][blocked["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON"
    assert body["Content"].startswith('{"error": "rate_limited", "message": "')


def test_the_waf_guards_this_apis_stage(resources):
    association = resources["ApiWebAclAssociation"]["Properties"]
    assert association["WebACLArn"] == {"Fn::GetAtt": ["ApiWebAcl", "Arn"]}
    arn = association["ResourceArn"]["Fn::Sub"]
    assert arn.endswith("/restapis/${RestAPI}/stages/${RestAPI.Stage}")


@pytest.mark.parametrize(("reserved", "expected"), [(True, {"Ref": "ApiReservedConcurrency"}), (False, None)])
def test_reserved_concurrency_is_set_only_when_asked_for(template, resources, reserved, expected):
    assert template["Parameters"]["ApiReservedConcurrency"]["Default"] == 0
    decided = {"HasApiReservedConcurrency": reserved, "PublicBaseUrlIsTheFailoverDomain": False}
    properties = resolve(resources["APIHandler"]["Properties"], decided)
    assert properties.get("ReservedConcurrentExecutions") == expected
    assert "ReservedConcurrentExecutions" not in resources["Maintenance"]["Properties"]


def test_only_the_api_function_is_behind_the_throttles(resources):
    # The schedule does not go through API Gateway: no stage setting slows the replay.
    assert set(of_type(resources, "AWS::Serverless::Api")) == {"RestAPI"}
