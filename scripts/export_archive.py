"""Export the S3 archive between two times as JSON Lines, sorted by id.

Usage: .venv/bin/python -m scripts.export_archive --since ISO --until ISO [--out FILE]
Reads BUCKET_NAME (default lifeboat-local) and, for the local stack or any
other endpoint, AWS_ENDPOINT_URL, as the app does. `since` is inclusive and
`until` exclusive, on each post's created_at; a time without a zone is UTC.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from chalicelib.aws import clients as aws  # noqa: E402
from chalicelib.config import Settings  # noqa: E402
from chalicelib.core.clock import parse_iso  # noqa: E402
from chalicelib.posts.archive import Archive  # noqa: E402


def moment(text: str) -> datetime:
    """An ISO 8601 time (a trailing Z is accepted); naive means UTC."""
    parsed = parse_iso(text)
    if parsed is None:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}")
    return parsed


def export(archive: Archive, since: datetime, until: datetime, out) -> int:
    """Write each archived post as one JSON line, in id order; returns the count."""
    written = 0
    for record in archive.read(since, until):
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        written += 1
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--since", type=moment, required=True)
    parser.add_argument("--until", type=moment, required=True)
    parser.add_argument("--out", type=Path, help="the file to write (default: standard output)")
    args = parser.parse_args(argv)
    if args.until <= args.since:
        parser.error("--until must be after --since")
    archive = Archive(aws.new_client("s3"), Settings.from_env().bucket_name)
    if args.out is None:
        count = export(archive, args.since, args.until, sys.stdout)
    else:
        with args.out.open("w", encoding="utf-8") as out:
            count = export(archive, args.since, args.until, out)
    print(f"exported {count} posts", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
