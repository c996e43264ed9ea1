"""The optional Route 53 failover (docs/OPERATIONS.md, "Failover by DNS").

Off by default. On, the primary's own API name has two failover records:
PRIMARY, the primary's endpoint, while its health check passes; SECONDARY,
Lifeboat's regional custom domain, when it fails. cfn-lint
(test_template.py::test_cfn_lint_reports_nothing) checks the resources of
every condition and both branches of every Fn::If, so the one packaged
template it lints covers the failover on and off.
"""

from __future__ import annotations

import re

import pytest

from tests.infra.cfn import conditions, failed_assertions, parameter_values, resolve
from tests.infra.test_edge_protection import stage_parameters

FAILOVER_RESOURCES = {
    "FailoverDomain": "AWS::ApiGateway::DomainName",
    "FailoverBasePathMapping": "AWS::ApiGateway::BasePathMapping",
    "PrimaryHealthCheck": "AWS::Route53::HealthCheck",
    "FailoverHealthCheck": "AWS::Route53::HealthCheck",
    "FailoverPrimaryRecord": "AWS::Route53::RecordSet",
    "FailoverLifeboatRecord": "AWS::Route53::RecordSet",
}
FAILOVER_PARAMETERS = (
    "FailoverDomainName",
    "HostedZoneId",
    "CertificateArn",
    "PrimaryEndpointDnsName",
    "PrimaryEndpointHostedZoneId",
    "PrimaryHealthCheckPath",
    "PrimaryHealthCheckIntervalSeconds",
    "PrimaryHealthCheckFailureThreshold",
    "FailoverRouting",
)
FAILOVER_ON = {
    "FailoverDomainName": "api.example.com",
    "HostedZoneId": "Z0123456789ABCDEFGHIJ",
    "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/8d3b1c2e-5f4a-4b6c-9d7e-0a1b2c3d4e5f",
    "PrimaryEndpointDnsName": "origin.api.example.com",
}
PUBLIC_BASE_URL = "https://lifeboat.example.com"
FUNCTIONS = ("APIHandler", "Maintenance")


def deployed(template: dict, resources: dict, name: str, **parameters) -> dict:
    """Resource `name`'s properties as CloudFormation creates them for these parameters."""
    decided = conditions(template, parameter_values(template, **parameters))
    return resolve(resources[name]["Properties"], decided)


# -- off by default -------------------------------------------------------------


def test_failover_is_off_by_default_and_in_each_stage(template):
    assert template["Parameters"]["FailoverDomainName"]["Default"] == ""
    assert conditions(template, parameter_values(template, PublicBaseUrl=PUBLIC_BASE_URL))["FailoverEnabled"] is False
    assert conditions(template, parameter_values(template, **FAILOVER_ON))["FailoverEnabled"] is True
    for stage in ("dev", "prod"):
        parameters = stage_parameters(stage)
        assert set(FAILOVER_PARAMETERS) <= set(parameters)
        assert parameters["FailoverDomainName"] == ""
        assert conditions(template, parameter_values(template, **parameters))["FailoverEnabled"] is False


def test_the_failover_resources_exist_only_when_it_is_on(template, resources):
    conditional = {name: body["Type"] for name, body in resources.items() if body.get("Condition") == "FailoverEnabled"}
    assert conditional == FAILOVER_RESOURCES
    # Nothing else in the stack touches DNS or custom domains.
    dns = {name for name, body in resources.items() if body["Type"].startswith("AWS::Route53::")}
    domains = {name for name, body in resources.items() if body["Type"].startswith("AWS::ApiGateway::DomainName")}
    assert dns | domains <= set(FAILOVER_RESOURCES)
    outputs = {name for name, body in template["Outputs"].items() if body.get("Condition") == "FailoverEnabled"}
    assert outputs == {"FailoverRegionalDomainName", "PrimaryHealthCheckId", "FailoverHealthCheckId"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_public_base_url_is_the_parameter_unless_failover_fills_it_in(template, resources, function):
    def public_base_url(**parameters):
        return deployed(template, resources, function, **parameters)["Environment"]["Variables"]["PUBLIC_BASE_URL"]

    assert public_base_url(PublicBaseUrl=PUBLIC_BASE_URL) == {"Ref": "PublicBaseUrl"}
    # Failover on: links and Location headers are for the primary's own name, served at the stage's root.
    assert public_base_url(**FAILOVER_ON) == {"Fn::Sub": "https://${FailoverDomainName}"}
    assert public_base_url(**FAILOVER_ON, PublicBaseUrl=PUBLIC_BASE_URL) == {"Ref": "PublicBaseUrl"}


# -- the records ------------------------------------------------------------------


def test_the_primary_record_aliases_the_primary_and_carries_the_health_check(template, resources):
    record = deployed(template, resources, "FailoverPrimaryRecord", **FAILOVER_ON)
    assert (record["Failover"], record["Type"]) == ("PRIMARY", "A")
    assert record["Name"] == {"Ref": "FailoverDomainName"}
    assert record["HostedZoneId"] == {"Ref": "HostedZoneId"}
    assert record["HealthCheckId"] == {"Ref": "FailoverHealthCheck"}
    target = record["AliasTarget"]
    assert target["DNSName"] == {"Ref": "PrimaryEndpointDnsName"}
    # The health check alone decides; a load balancer's own target health does not.
    assert target["EvaluateTargetHealth"] is False
    # Empty PrimaryEndpointHostedZoneId: the primary's endpoint is a record in the same zone.
    assert target["HostedZoneId"] == {"Ref": "HostedZoneId"}
    elsewhere = deployed(
        template, resources, "FailoverPrimaryRecord", **FAILOVER_ON, PrimaryEndpointHostedZoneId="Z35SXDOTRQ7X7K"
    )
    assert elsewhere["AliasTarget"]["HostedZoneId"] == {"Ref": "PrimaryEndpointHostedZoneId"}


def test_the_secondary_record_aliases_lifeboats_regional_domain(template, resources):
    primary = deployed(template, resources, "FailoverPrimaryRecord", **FAILOVER_ON)
    secondary = deployed(template, resources, "FailoverLifeboatRecord", **FAILOVER_ON)
    assert secondary["Failover"] == "SECONDARY"
    assert {key: secondary[key] for key in ("Name", "Type", "HostedZoneId")} == {
        key: primary[key] for key in ("Name", "Type", "HostedZoneId")
    }
    assert secondary["SetIdentifier"] != primary["SetIdentifier"]
    # No health check: when the primary's fails, Route 53 answers with this one.
    assert "HealthCheckId" not in secondary
    assert secondary["AliasTarget"] == {
        "DNSName": {"Fn::GetAtt": ["FailoverDomain", "RegionalDomainName"]},
        "HostedZoneId": {"Fn::GetAtt": ["FailoverDomain", "RegionalHostedZoneId"]},
        "EvaluateTargetHealth": False,
    }
    # Clients are never sent to the domain before it routes to the stage.
    assert resources["FailoverLifeboatRecord"]["DependsOn"] == ["FailoverBasePathMapping"]


def test_turning_failover_off_leaves_the_primarys_name_resolving(resources):
    # Deleting the PRIMARY record would take the primary's own API name off the
    # internet; it stays (with the checks it names) until an operator replaces it.
    for name in ("FailoverPrimaryRecord", "FailoverHealthCheck", "PrimaryHealthCheck"):
        assert resources[name]["DeletionPolicy"] == "Retain", name
    assert resources["FailoverPrimaryRecord"]["UpdateReplacePolicy"] == "Retain"
    # Lifeboat's own answer leaves with Lifeboat.
    for name in ("FailoverLifeboatRecord", "FailoverDomain", "FailoverBasePathMapping"):
        assert resources[name].get("DeletionPolicy", "Delete") == "Delete", name


# -- the custom domain ------------------------------------------------------------


def test_the_custom_domain_is_regional_with_the_certificate(template, resources):
    domain = deployed(template, resources, "FailoverDomain", **FAILOVER_ON)
    assert domain["DomainName"] == {"Ref": "FailoverDomainName"}
    assert domain["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert domain["RegionalCertificateArn"] == {"Ref": "CertificateArn"}
    assert "CertificateArn" not in domain  # the edge-optimized (us-east-1) certificate
    assert domain["SecurityPolicy"] == "TLS_1_2"


def test_the_domains_root_is_the_stages_root(template, resources):
    mapping = deployed(template, resources, "FailoverBasePathMapping", **FAILOVER_ON)
    # No BasePath: /api/v1/statuses on the primary's name is /api/v1/statuses here.
    assert mapping == {
        "DomainName": {"Ref": "FailoverDomain"},
        "RestApiId": {"Ref": "RestAPI"},
        "Stage": {"Ref": "RestAPI.Stage"},
    }


# -- the health checks --------------------------------------------------------------


def test_the_health_check_calls_the_primary_itself_on_the_path_over_https(template, resources):
    config = deployed(template, resources, "PrimaryHealthCheck", **FAILOVER_ON)["HealthCheckConfig"]
    assert (config["Type"], config["Port"], config["EnableSNI"]) == ("HTTPS", 443, True)
    assert config["ResourcePath"] == {"Ref": "PrimaryHealthCheckPath"}
    # Never FailoverDomainName: once failed over, that name is Lifeboat, which
    # would pass and send clients back to a primary that is down.
    assert config["FullyQualifiedDomainName"] == {"Ref": "PrimaryEndpointDnsName"}
    assert config["RequestInterval"] == {"Ref": "PrimaryHealthCheckIntervalSeconds"}
    assert config["FailureThreshold"] == {"Ref": "PrimaryHealthCheckFailureThreshold"}
    parameters = template["Parameters"]
    assert parameters["PrimaryHealthCheckPath"]["Default"] == "/health"
    assert parameters["PrimaryHealthCheckIntervalSeconds"]["AllowedValues"] == [10, 30]
    assert parameters["PrimaryHealthCheckIntervalSeconds"]["Default"] == 30
    threshold = parameters["PrimaryHealthCheckFailureThreshold"]
    assert (threshold["MinValue"], threshold["MaxValue"], threshold["Default"]) == (1, 10, 3)


@pytest.mark.parametrize(("routing", "follows_the_primary"), [("health-check", True), ("lifeboat", False)])
def test_the_records_health_follows_the_primary_unless_held_on_lifeboat(
    template, resources, routing, follows_the_primary
):
    assert template["Parameters"]["FailoverRouting"]["Default"] == "health-check"
    config = deployed(template, resources, "FailoverHealthCheck", **FAILOVER_ON, FailoverRouting=routing)[
        "HealthCheckConfig"
    ]
    assert config["Type"] == "CALCULATED"
    assert config["ChildHealthChecks"] == [{"Ref": "PrimaryHealthCheck"}]
    # Route 53: healthy when at least HealthThreshold children are; a threshold
    # above the number of children is always unhealthy, so clients go to Lifeboat.
    children = len(config["ChildHealthChecks"])
    assert (config["HealthThreshold"] == children) is follows_the_primary
    assert (config["HealthThreshold"] > children) is not follows_the_primary


# -- parameters CloudFormation refuses --------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "refused_for"),
    [
        ({}, ["PublicBaseUrl"]),  # the default deploy still needs PublicBaseUrl, as before
        ({"PublicBaseUrl": PUBLIC_BASE_URL}, []),
        (FAILOVER_ON, []),
        (FAILOVER_ON | {"HostedZoneId": ""}, ["HostedZoneId"]),
        (FAILOVER_ON | {"CertificateArn": ""}, ["CertificateArn"]),
        (FAILOVER_ON | {"PrimaryEndpointDnsName": ""}, ["PrimaryEndpointDnsName"]),
        (FAILOVER_ON | {"PrimaryEndpointDnsName": FAILOVER_ON["FailoverDomainName"]}, ["PrimaryEndpointDnsName"]),
    ],
)
def test_rules_refuse_a_deploy_missing_what_it_needs(template, parameters, refused_for):
    failed = failed_assertions(template, parameter_values(template, **parameters))
    assert len(failed) == len(refused_for)
    for description, parameter in zip(failed, refused_for, strict=True):
        assert description.startswith(parameter) or f"needs {parameter}" in description, description


@pytest.mark.parametrize(
    ("parameter", "accepted", "refused"),
    [
        (
            "FailoverDomainName",
            ["", "api.example.com"],
            ["API.example.com", "api.example.com.", "https://api.example.com"],
        ),
        (
            "PrimaryEndpointDnsName",
            ["", "dualstack.my-lb-1234.us-east-1.elb.amazonaws.com"],
            ["origin", "-x.example.com"],
        ),
        ("HostedZoneId", ["", "Z0123456789ABCDEFGHIJ"], ["z012", "/hostedzone/Z012"]),
        ("PrimaryEndpointHostedZoneId", ["", "Z35SXDOTRQ7X7K"], ["Z35SXDOTRQ7X7K "]),
        ("CertificateArn", ["", FAILOVER_ON["CertificateArn"]], ["arn:aws:iam::123456789012:server-certificate/x"]),
        ("PublicBaseUrl", ["", PUBLIC_BASE_URL], ["http://lifeboat.example.com", "https://"]),
        ("PrimaryHealthCheckPath", ["/health", "/api/v1/instance"], ["", "health", "/a b"]),
    ],
)
def test_parameter_patterns(template, parameter, accepted, refused):
    pattern = template["Parameters"][parameter]["AllowedPattern"]
    assert [value for value in accepted if re.fullmatch(pattern, value)] == accepted
    assert [value for value in refused if re.fullmatch(pattern, value)] == []
