"""The README's warm-standby walkthrough, run as written: its shell block,
extracted from README.md, against `./scripts/run` with a seeded primary."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.stack import start_stack

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- walkthrough:warm-standby"


def walkthrough_block() -> str:
    readme = (ROOT / "README.md").read_text()
    after_marker = readme[readme.index(MARKER) :]
    match = re.search(r"```sh\n(.*?)```", after_marker, re.DOTALL)
    assert match, "the walkthrough's shell block is missing from README.md"
    return match.group(1)


@pytest.fixture(scope="module")
def seeded_stack():
    stack = start_stack({"SEED_PRIMARY": "true", "HEALTH_UP_AFTER": "2"})
    yield stack
    stack.stop()


def test_the_warm_standby_walkthrough_runs_as_written(seeded_stack):
    assert seeded_stack.primary_token, "./scripts/run printed no primary token"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough_block()],
        env={
            "PATH": "/usr/bin:/bin",
            "LB": seeded_stack.base_url,
            "PRIMARY": seeded_stack.primary_url,
            "ADA": seeded_stack.primary_token,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # 1: the mirror holds the seeded primary;
    assert "'accounts': 5, 'posts': 20" in lines[0]
    # 3: the primary's own token posts, with no account made here;
    assert "posted: 200" in lines
    # 4: the home timeline is full: her outage post first, then mirrored posts of whom she follows, newest first;
    home = [line for line in lines if re.match(r"^\w+: <p>", line)]
    assert home == [
        "ada: <p>Posting through the outage</p>",
        "margaret: <p>Margaret&#x27;s post 4 on the primary</p>",
        "linus: <p>Linus&#x27;s post 4 on the primary</p>",
        "grace: <p>Grace&#x27;s post 4 on the primary</p>",
        "ada: <p>Ada&#x27;s post 4 on the primary</p>",
    ]
    # 5: only the outage's post reached the primary, once.
    assert [line for line in lines if line.startswith("replayed:")] == ["replayed: ada Posting through the outage"]
