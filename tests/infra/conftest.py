"""The deployable template, built once per test session by the script the
operators run, offline and with no AWS credentials in reach."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def no_credentials_env(**extra: str) -> dict[str, str]:
    """This environment without any AWS setting, credential files that do
    not exist, and no instance-metadata lookup (it would leave the machine)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=os.devnull + ".missing",
        AWS_SHARED_CREDENTIALS_FILE=os.devnull + ".missing",
        AWS_EC2_METADATA_DISABLED="true",
        LIFEBOAT_VENV=sys.prefix,
    )
    env.update(extra)
    return env


def run_script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "scripts" / args[0]), *args[1:]],
        cwd=ROOT,
        env=no_credentials_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def build(out_dir: Path, stage: str) -> dict:
    result = run_script("package", "--stage", stage, str(out_dir))
    assert result.returncode == 0, result.stderr
    return json.loads((out_dir / "sam.json").read_text())


@pytest.fixture(scope="session")
def package_dir(tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("package-dev")
    build(out_dir, "dev")
    return out_dir


@pytest.fixture(scope="session")
def template(package_dir) -> dict:
    return json.loads((package_dir / "sam.json").read_text())


@pytest.fixture(scope="session")
def resources(template) -> dict:
    return template["Resources"]
