"""GET /openapi.json serves the contract, and loading it costs a cold start nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from scripts import build_openapi

ROOT = Path(__file__).resolve().parents[2]


def test_the_contract_is_served_as_json(api):
    reply = api.get("/openapi.json")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.body == yaml.safe_load(build_openapi.SOURCE.read_text(encoding="utf-8"))


def test_importing_the_app_does_not_load_the_contract():
    # The document is read on the first GET /openapi.json, never at cold start.
    probe = "import sys, app; print('chalicelib.api.openapi' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
