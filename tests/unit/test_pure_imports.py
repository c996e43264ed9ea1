"""The pure modules of the upstream, feeds and Mastodon packages load no AWS
SDK and no HTTP client: they hold values, rules and rendering, so they can be
imported (and unit-tested) without either. Each import runs in a fresh
interpreter, as this test process has loaded everything already."""

from __future__ import annotations

import pytest

from tests.imports import modules_loaded_by

PURE_MODULES = [
    "chalicelib.upstream.port",
    "chalicelib.upstream.mastodon_feed",
    "chalicelib.feeds.render",
    "chalicelib.feeds.conditional",
    "chalicelib.mastodon.entities",
    "chalicelib.mastodon.forms",
    "chalicelib.mastodon.ids",
    "chalicelib.mirror.changes",
    "chalicelib.mirror.layout",
    "chalicelib.accounts.windows",
    "chalicelib.stream.post_windows",
]
FORBIDDEN = {"boto3", "botocore", "urllib.request", "http.client"}


@pytest.mark.parametrize("module", PURE_MODULES)
def test_a_pure_module_loads_no_aws_sdk_and_no_http_client(module):
    assert modules_loaded_by(module) & FORBIDDEN == set()


@pytest.mark.parametrize(
    ("module", "loads"),
    [("chalicelib.upstream.transport", "http.client"), ("chalicelib.mastodon.follows", "boto3")],
)
def test_the_probe_sees_what_an_adapter_loads(module, loads):
    # Without this, a probe that saw nothing would pass every module above.
    assert loads in modules_loaded_by(module)
