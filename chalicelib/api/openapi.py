"""The native API's OpenAPI document, served at GET /openapi.json.

The packaged copy is JSON made from docs/openapi.yaml at build time
(`python -m scripts.build_openapi`): the bundle has no YAML parser, and the
file is read on the first request only, so no cold start pays for it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

PACKAGED = Path(__file__).with_name("openapi.json")


@cache
def json_text() -> str:
    return PACKAGED.read_text(encoding="utf-8")
