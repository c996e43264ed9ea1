"""scripts/package and scripts/deploy: argument handling, and deploy's
refusal to start without credentials (nothing here can reach AWS)."""

from __future__ import annotations

import subprocess

import pytest

from tests.infra.conftest import ROOT, run_script


@pytest.mark.parametrize("script", ["package", "deploy", "lib/bootstrap.sh", "mastodon_export_since"])
def test_script_parses(script):
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)], check=False).returncode == 0


def test_package_refuses_an_unknown_stage():
    result = run_script("package", "--stage", "staging", "/nonexistent/out")
    assert result.returncode == 2
    assert "dev or prod" in result.stderr


def test_deploy_requires_a_stage():
    result = run_script("deploy")
    assert result.returncode == 2
    assert "--stage" in result.stderr


def test_deploy_fails_clearly_without_credentials():
    # Given no credentials, files or instance metadata to find any in,
    # when an operator deploys, then it stops before building anything.
    result = run_script("deploy", "--stage", "dev", "--artifact-bucket", "unused", timeout=120)
    assert result.returncode == 1
    assert "no usable AWS credentials" in result.stderr or "AWS CLI (aws) is not installed" in result.stderr
    assert "Creating deployment package" not in result.stderr
