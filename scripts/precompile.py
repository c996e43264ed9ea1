"""Add compiled bytecode to a Lambda deployment.zip, so a cold start loads it
instead of compiling every module from source.

`chalice package` zips sources only: app.py, chalicelib/ and the dependencies
unpacked from their wheels (boto3, botocore, powertools, ...), with no
`__pycache__`. Lambda's code directory is read-only, so CPython compiles each
imported module anew on every cold start and cannot keep the result.

Each `.py` gets `__pycache__/<name>.<cache tag>.pyc` beside it. The .pyc is
"unchecked-hash" (PEP 552): CPython uses it without comparing the source's
mtime, which a zip keeps only to 2 seconds. The source stays in the zip for
tracebacks. The cache tag is this interpreter's, and Chalice takes the Lambda
runtime from the same interpreter, so they agree (tests/infra checks it).

Usage: python -m scripts.precompile build/package/deployment.zip
"""

from __future__ import annotations

import argparse
import importlib.util
import marshal
import os
import sys
import tempfile
import zipfile
from pathlib import PurePosixPath

SOURCE_SUFFIX = ".py"
CACHE_DIRECTORY = "__pycache__"


def cache_path(source_path: str) -> str:
    """Where CPython looks for the bytecode of a module at `source_path`."""
    source = PurePosixPath(source_path)
    return str(source.parent / CACHE_DIRECTORY / f"{source.stem}.{sys.implementation.cache_tag}.pyc")


def bytecode(source: bytes, zip_path: str) -> bytes | None:
    """The .pyc of `source`, or None if it is not valid Python here (some
    packages ship Python 2 files that are never imported)."""
    try:
        code = compile(source, zip_path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    source_hash = importlib.util.source_hash(source)
    flags = 0b01  # hash-based, unchecked (PEP 552)
    header = importlib.util.MAGIC_NUMBER + flags.to_bytes(4, "little") + source_hash
    return header + marshal.dumps(code)


def precompile(zip_file: str) -> tuple[int, int]:
    """Rewrite `zip_file` with a .pyc beside each .py; returns (compiled, skipped)."""
    compiled = skipped = 0
    directory = os.path.dirname(os.path.abspath(zip_file))
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".zip", delete=False) as scratch:
        scratch_path = scratch.name
    try:
        with zipfile.ZipFile(zip_file) as source_zip, zipfile.ZipFile(scratch_path, "w") as target_zip:
            for entry in source_zip.infolist():
                if CACHE_DIRECTORY in PurePosixPath(entry.filename).parts:
                    continue  # a developer's own, timestamp-checked: made anew below
                data = source_zip.read(entry)
                target_zip.writestr(entry, data)
                if not entry.filename.endswith(SOURCE_SUFFIX):
                    continue
                pyc = bytecode(data, entry.filename)
                if pyc is None:
                    skipped += 1
                    continue
                pyc_entry = zipfile.ZipInfo(cache_path(entry.filename), date_time=entry.date_time)
                pyc_entry.external_attr = entry.external_attr
                target_zip.writestr(pyc_entry, pyc, compress_type=zipfile.ZIP_DEFLATED)
                compiled += 1
        os.chmod(scratch_path, os.stat(zip_file).st_mode)
        os.replace(scratch_path, zip_file)
    finally:
        if os.path.exists(scratch_path):
            os.unlink(scratch_path)
    return compiled, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zip_file")
    args = parser.parse_args()
    compiled, skipped = precompile(args.zip_file)
    print(f"{args.zip_file}: {compiled} modules precompiled ({skipped} not valid Python here)", file=sys.stderr)


if __name__ == "__main__":
    main()
