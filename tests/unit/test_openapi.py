"""The contract, docs/openapi.yaml: valid OpenAPI 3.1, the same document as
the packaged JSON that GET /openapi.json serves, and the same routes as
app.py (every native route, nothing else)."""

from __future__ import annotations

import json

import yaml
from openapi_spec_validator import validate

from scripts import build_openapi

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# Every route can answer these: the body limit (middleware), Chalice's
# content-type check, and API Gateway's stage throttle.
ANY_ROUTE_ERRORS = {"413", "415", "429"}
# Answered without reading the store, so never a 503.
STORELESS_PATHS = {"/openapi.json", "/.well-known/nodeinfo", "/nodeinfo/2.0", "/instance/thumbnail.svg"}


def contract() -> dict:
    return yaml.safe_load(build_openapi.SOURCE.read_text(encoding="utf-8"))


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_the_contract_is_valid_openapi_3_1():
    document = contract()
    assert document["openapi"].startswith("3.1.")
    validate(document)


def test_the_packaged_json_is_the_contract():
    packaged = build_openapi.PACKAGED.read_text(encoding="utf-8")
    assert packaged == build_openapi.rendered(), "run: .venv/bin/python -m scripts.build_openapi"
    assert json.loads(packaged) == contract()


def test_the_contract_has_every_native_route_and_no_other():
    import app
    from chalicelib.api.fallback import CATCH_ALL

    # The catch-all and the preflights are described in the contract's text.
    routes = {
        (path, method.lower())
        for path, methods in app.app.routes.items()
        if not path.startswith("/api/") and path != CATCH_ALL
        for method in methods
        if method != "OPTIONS"
    }
    assert {(path, method) for path, method, _ in operations(contract())} == routes


def test_every_operation_documents_the_errors_any_route_can_give():
    every = list(operations(contract()))
    assert any(operation.get("security") for _, _, operation in every), "no secured operation to check"
    for path, method, operation in every:
        responses = set(operation["responses"])
        assert responses >= ANY_ROUTE_ERRORS, (method, path)
        assert any(code.startswith("2") for code in responses), (method, path)
        if operation.get("security"):
            assert "401" in responses, (method, path)
        if path not in STORELESS_PATHS:
            assert "503" in responses, (method, path)


def test_every_operation_has_a_unique_id():
    ids = [operation["operationId"] for _, _, operation in operations(contract())]
    assert len(ids) == len(set(ids))
