"""The recovery logic loads no AWS SDK and no HTTP client: its stores,
lease, spool and primary are ports it is handed, so it can be imported
(and unit-tested) without either. Each import runs in a fresh interpreter,
as this test process has loaded everything already."""

from __future__ import annotations

import pytest

from tests.imports import modules_loaded_by

PURE_MODULES = ["schedule", "pacing", "replay", "service", "admin", "health"]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_the_recovery_logic_loads_no_aws_sdk(module):
    loaded = modules_loaded_by(f"chalicelib.recovery.{module}")
    assert not {name for name in loaded if name == "boto3" or name.startswith(("boto3.", "botocore."))}
    # The bare `botocore` package is all powertools' Logger (chalicelib.observability)
    # imports, to tag its user agent; no session or client comes with it.
    assert loaded & {"chalicelib.aws.clients", "chalicelib.aws.dynamo", "chalicelib.aws.lease"} == set()


@pytest.mark.parametrize("module", PURE_MODULES)
def test_the_recovery_logic_loads_no_http_client(module):
    loaded = modules_loaded_by(f"chalicelib.recovery.{module}")
    assert loaded.isdisjoint({"urllib.request", "http.client"})
