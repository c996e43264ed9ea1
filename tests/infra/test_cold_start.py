"""What a Lambda cold start loads and compiles: the deployment.zip carries
bytecode for every module, and `import app` loads only what every route
uses (docs/DESIGN.md, "Cold start")."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.imports import modules_loaded_by

# Run inside the unpacked zip as Lambda does: the zip and the standard library
# only, nothing written. Counts the modules compiled from source in the zip.
COUNT_COMPILES = """
import sys
code_dir = sys.argv[1]
compiled = []
def watch(event, args):
    if event == "compile" and isinstance(args[1], str) and args[1].startswith(code_dir):
        compiled.append(args[1])
sys.addaudithook(watch)
sys.path.insert(0, code_dir)
import app
import chalicelib.mastodon.api, chalicelib.recovery.service, chalicelib.feeds.live, chalicelib.maintenance, feedgen.feed
print(len([name for name in sys.modules if name.startswith("chalicelib.")]))
for path in compiled:
    print(path)
"""

FEATURES_LOADED_PER_ROUTE = [
    "chalicelib.mastodon.api",
    "chalicelib.mastodon.entities",
    "chalicelib.mastodon.forms",
    "chalicelib.mastodon.follows",
    "chalicelib.mastodon.markers",
    "chalicelib.mastodon.notifications",
    "chalicelib.recovery.service",
    "chalicelib.recovery.admin",
    "chalicelib.recovery.backlog",
    "chalicelib.maintenance",
    "chalicelib.recovery.health",
    "chalicelib.feeds.live",
    "chalicelib.feeds.publisher",
    "chalicelib.feeds.static",
    "chalicelib.upstream.port",
    "chalicelib.upstream.headers",
    "chalicelib.upstream.transport",
    "chalicelib.upstream.generic",
    "chalicelib.upstream.mastodon",
    "chalicelib.upstream.tokens",
    "chalicelib.accounts.upstream_credentials",
    "chalicelib.api.openapi",
    "feedgen",
]


@pytest.fixture(scope="module")
def unpacked(package_dir, tmp_path_factory) -> Path:
    code_dir = tmp_path_factory.mktemp("lambda-task")
    with zipfile.ZipFile(package_dir / "deployment.zip") as package:
        package.extractall(code_dir)
    return code_dir


def test_the_bytecode_in_the_zip_is_for_the_lambda_runtime(template, unpacked):
    runtimes = {
        resource["Properties"]["Runtime"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert runtimes == {f"python{sys.version_info.major}.{sys.version_info.minor}"}
    assert (unpacked / "__pycache__" / f"app.{sys.implementation.cache_tag}.pyc").is_file()


def test_a_cold_start_in_the_package_compiles_nothing_from_source(unpacked):
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", COUNT_COMPILES, str(unpacked)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded, *compiled = result.stdout.splitlines()
    assert int(loaded) > 20  # the app and its features were imported from the zip
    assert compiled == []


def test_importing_the_app_leaves_the_per_route_features_unloaded():
    loaded = modules_loaded_by("app")
    # Every route's core is loaded at cold start:
    assert {"chalicelib.posts.service", "chalicelib.accounts.service", "boto3"} <= loaded
    assert loaded.isdisjoint(FEATURES_LOADED_PER_ROUTE)
