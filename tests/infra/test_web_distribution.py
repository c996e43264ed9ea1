"""The web client deployed: CloudFront serves the bucket's web/ (and feeds/)
and the API on one origin, and the bucket stays private, read only by this
distribution through its origin access control."""

from __future__ import annotations

import pytest

from devtools.local_site import PAGE_HEADERS
from tests.infra.cfn import as_list, of_type, resolve, statements

CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
API_PATHS = (
    "/api/*",
    "/oauth/*",
    "/status",
    "/posts/*",
    "/users/*",
    "/timeline/*",
    "/.well-known/*",
    "/nodeinfo/*",
    "/openapi.json",
    "/instance/*",
    "/admin/*",
)
ALL_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}
BUCKET_DOMAIN = {"Fn::GetAtt": ["DataBucket", "RegionalDomainName"]}
SOURCE_ARN = {"Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${WebDistribution}"}


@pytest.fixture(scope="module")
def config(resources) -> dict:
    [(name, distribution)] = of_type(resources, "AWS::CloudFront::Distribution").items()
    assert name == "WebDistribution"
    return distribution["Properties"]["DistributionConfig"]


@pytest.fixture(scope="module")
def origins(config) -> dict[str, dict]:
    return {origin["Id"]: origin for origin in config["Origins"]}


@pytest.fixture(scope="module")
def behaviours(config) -> dict[str, dict]:
    return {behaviour["PathPattern"]: behaviour for behaviour in config["CacheBehaviors"]}


def _all_behaviours(config: dict) -> list[dict]:
    return [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]


def test_origin_access_control_signs_every_s3_request(resources):
    oac = resources["WebOriginAccessControl"]
    assert oac["Type"] == "AWS::CloudFront::OriginAccessControl"
    settings = oac["Properties"]["OriginAccessControlConfig"]
    assert (settings["OriginAccessControlOriginType"], settings["SigningBehavior"], settings["SigningProtocol"]) == (
        "s3",
        "always",
        "sigv4",
    )


def test_every_bucket_origin_goes_through_the_origin_access_control(origins):
    s3 = {name: origin for name, origin in origins.items() if "S3OriginConfig" in origin}
    assert set(s3) == {"web", "feeds"}
    for origin in s3.values():
        assert origin["DomainName"] == BUCKET_DOMAIN
        assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["WebOriginAccessControl", "Id"]}
        # An empty identity: no legacy OAI, the OAC signs instead.
        assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert origins["web"]["OriginPath"] == "/web"
    assert "OriginPath" not in origins["feeds"]  # /feeds/x is the key feeds/x


def test_api_origin_is_the_rest_api_stage_over_https_only(origins):
    api = origins["api"]
    assert api["DomainName"] == {"Fn::Sub": "${RestAPI}.execute-api.${AWS::Region}.amazonaws.com"}
    assert api["OriginPath"] == "/api"
    assert api["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert set(origins) == {"web", "feeds", "api"}


def test_default_behaviour_serves_the_web_client_with_security_headers(config, resources):
    default = config["DefaultCacheBehavior"]
    assert default["TargetOriginId"] == "web"
    assert default["CachePolicyId"] == CACHING_OPTIMIZED
    assert set(default["AllowedMethods"]) == {"GET", "HEAD"}
    assert config["DefaultRootObject"] == "index.html"
    assert default["ResponseHeadersPolicyId"] == {"Ref": "WebSecurityHeadersPolicy"}
    headers = resources["WebSecurityHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"][
        "SecurityHeadersConfig"
    ]
    # The page gets what the local stack sends it, so what passes locally
    # (the browser tests) passes deployed.
    assert headers["ContentSecurityPolicy"]["ContentSecurityPolicy"] == PAGE_HEADERS["Content-Security-Policy"]
    assert "script-src 'self';" in PAGE_HEADERS["Content-Security-Policy"]
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == PAGE_HEADERS["Referrer-Policy"] == "no-referrer"
    assert headers["ContentTypeOptions"]["Override"] is True
    assert all(header["Override"] is True for header in headers.values())


def test_feeds_are_served_from_the_bucket_feeds_prefix(behaviours):
    feeds = behaviours["/feeds/*"]
    assert feeds["TargetOriginId"] == "feeds"
    assert feeds["CachePolicyId"] == CACHING_OPTIMIZED
    assert set(feeds["AllowedMethods"]) == {"GET", "HEAD"}


@pytest.mark.parametrize("pattern", API_PATHS)
def test_api_paths_reach_the_api_uncached_with_every_method(behaviours, pattern):
    behaviour = behaviours[pattern]
    assert behaviour["TargetOriginId"] == "api"
    assert behaviour["CachePolicyId"] == CACHING_DISABLED
    # Everything the viewer sent but Host: API Gateway routes on its own name.
    assert behaviour["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER
    assert set(behaviour["AllowedMethods"]) == ALL_METHODS


def test_nothing_but_the_api_paths_and_feeds_leaves_the_default(behaviours):
    assert set(behaviours) == {*API_PATHS, "/feeds/*"}


def test_viewers_are_redirected_to_https_everywhere(config):
    assert {behaviour["ViewerProtocolPolicy"] for behaviour in _all_behaviours(config)} == {"redirect-to-https"}
    assert config["HttpVersion"] == "http2and3"
    assert config["Enabled"] is True


def _cloudfront_statements(resources: dict, public_feeds: bool) -> list[dict]:
    policy = resolve(
        resources["DataBucketPolicy"]["Properties"]["PolicyDocument"], {"PublicFeedsEnabled": public_feeds}
    )
    return [s for s in statements(policy) if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]


@pytest.mark.parametrize("public_feeds", [False, True])
def test_bucket_policy_lets_only_this_distribution_read_web_and_feeds(resources, public_feeds):
    [statement] = _cloudfront_statements(resources, public_feeds)
    assert statement["Effect"] == "Allow"
    assert as_list(statement["Action"]) == ["s3:GetObject"]
    assert as_list(statement["Resource"]) == [
        {"Fn::Sub": "${DataBucket.Arn}/web/*"},
        {"Fn::Sub": "${DataBucket.Arn}/feeds/*"},
    ]
    assert statement["Condition"] == {"StringEquals": {"AWS:SourceArn": SOURCE_ARN}}


def test_bucket_policy_keeps_its_other_statements(resources):
    policy = resolve(resources["DataBucketPolicy"]["Properties"]["PolicyDocument"], {"PublicFeedsEnabled": True})
    sids = [s.get("Sid") for s in statements(policy)]
    assert sids == ["DenyInsecureTransport", "PublicReadFeeds", "CloudFrontReadsWebAndFeeds"]


def test_bucket_stays_private_with_the_distribution(resources):
    # A service principal bounded by aws:SourceArn is not public to S3, so
    # Block Public Access stays on by default and still allows it.
    block = resolve(
        resources["DataBucket"]["Properties"]["PublicAccessBlockConfiguration"], {"PublicFeedsEnabled": False}
    )
    assert all(block.values()) and len(block) == 4
    policy = resolve(resources["DataBucketPolicy"]["Properties"]["PolicyDocument"], {"PublicFeedsEnabled": False})
    public = [s for s in statements(policy) if s["Effect"] == "Allow" and s["Principal"] in ("*", {"AWS": "*"})]
    assert public == []


def test_outputs_name_the_web_url_and_the_distribution(template):
    outputs = template["Outputs"]
    assert outputs["WebUrl"]["Value"] == {"Fn::Sub": "https://${WebDistribution.DomainName}"}
    assert outputs["WebDistributionId"]["Value"] == {"Ref": "WebDistribution"}
    assert "Condition" not in outputs["WebUrl"] and "Condition" not in outputs["WebDistributionId"]
