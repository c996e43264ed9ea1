"""Write chalicelib/api/openapi.json from docs/openapi.yaml.

docs/openapi.yaml is the contract people read and edit. The Lambda bundle
holds only chalicelib/ and has no YAML parser, so GET /openapi.json serves
this JSON copy; tests/unit/test_openapi.py fails when the two differ.
Usage: .venv/bin/python -m scripts.build_openapi
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "docs" / "openapi.yaml"
PACKAGED = ROOT / "chalicelib" / "api" / "openapi.json"


def rendered() -> str:
    """The packaged JSON text for the current YAML source."""
    return json.dumps(yaml.safe_load(SOURCE.read_text(encoding="utf-8")), separators=(",", ":")) + "\n"


def main() -> None:
    PACKAGED.write_text(rendered(), encoding="utf-8")
    print(f"wrote {PACKAGED.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
