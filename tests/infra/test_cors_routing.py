"""The deployed API routes as the local server does: a greedy `/{proxy+}`
resource sends every unknown path (any method) to the function, every
cross-origin resource has an OPTIONS method the function answers, and the
answers API Gateway makes itself carry the CORS headers."""

from __future__ import annotations

from chalicelib.api import cors
from chalicelib.api.fallback import CATCH_ALL, EVERY_METHOD, GREEDY_PARAMETER
from tests.infra.cfn import of_type


def _paths(resources) -> dict:
    return resources["RestAPI"]["Properties"]["DefinitionBody"]["paths"]


def _is_function_integration(operation: dict) -> bool:
    integration = operation["x-amazon-apigateway-integration"]
    return integration["type"] == "aws_proxy" and "${APIHandler.Arn}" in integration["uri"]["Fn::Sub"]


def test_every_method_of_an_unknown_path_reaches_the_function(resources):
    catch_all = _paths(resources)[CATCH_ALL]
    assert {method.upper() for method in catch_all if method != "parameters"} == set(EVERY_METHOD)
    assert all(_is_function_integration(catch_all[method.lower()]) for method in EVERY_METHOD)
    # API Gateway names the greedy parameter without its "+".
    assert catch_all["parameters"] == [{"name": GREEDY_PARAMETER, "in": "path", "required": True, "type": "string"}]


def test_every_cross_origin_resource_answers_its_preflight_in_the_function(resources):
    paths = _paths(resources)
    cross_origin = [path for path in paths if cors.is_cross_origin(path)]
    assert "/api/v1/accounts/{account_id}" in cross_origin and "/nodeinfo/2.0" in cross_origin
    for path in cross_origin:
        assert _is_function_integration(paths[path]["options"]), path


def test_no_other_resource_declares_a_preflight(resources):
    paths = _paths(resources)
    others = [path for path in paths if not cors.is_cross_origin(path) and path != CATCH_ALL]
    assert "/admin/users" in others
    assert [path for path in others if "options" in paths[path]] == []


def test_the_answers_api_gateway_makes_itself_carry_the_cors_headers(resources):
    responses = of_type(resources, "AWS::ApiGateway::GatewayResponse")
    assert {"DEFAULT_4XX", "DEFAULT_5XX"} <= {body["Properties"]["ResponseType"] for body in responses.values()}
    for body in responses.values():
        parameters = body["Properties"]["ResponseParameters"]
        assert parameters["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"
        assert parameters["gatewayresponse.header.Access-Control-Expose-Headers"] == f"'{cors.EXPOSED_HEADERS}'"
