"""The app imports, and answers, with no AWS credentials anywhere in sight."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.infra.conftest import ROOT


def test_the_app_imports_with_no_aws_credentials(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none")
    )
    code = "import app; print('/admin/users' in app.app.routes)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
