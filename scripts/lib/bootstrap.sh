# Sourced by the scripts in scripts/: make sure .venv exists and matches
# pyproject.toml, installing only from the package registries.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.installed-from"

bootstrap_venv() {
  local want
  want="$(cat "$ROOT/pyproject.toml" "$ROOT/requirements.txt" | sha256sum | cut -d' ' -f1)"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "Setting up $VENV (first run, or pyproject.toml changed)..." >&2
  [ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev]" >&2
  echo "$want" > "$STAMP"
}

bootstrap_venv
