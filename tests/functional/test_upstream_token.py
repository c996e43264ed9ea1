"""On AWS the primary's token comes from an SSM SecureString, not the environment."""

from __future__ import annotations

import boto3

from chalicelib import wiring


def test_the_upstream_token_is_read_from_ssm_once(moto, monkeypatch):
    boto3.client("ssm").put_parameter(
        Name="/lifeboat/upstream-token", Value="token-in-ssm", Type="SecureString", Overwrite=True
    )
    monkeypatch.setenv("UPSTREAM_URL", "https://primary.example")
    monkeypatch.delenv("UPSTREAM_TOKEN", raising=False)
    monkeypatch.setenv("UPSTREAM_TOKEN_PARAMETER", "/lifeboat/upstream-token")
    wiring.reset()

    assert wiring.upstream_settings().token == "token-in-ssm"
    assert "token-in-ssm" not in repr(wiring.upstream())
