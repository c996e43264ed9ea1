"""Publish the web client (web/) to the data bucket's web/ prefix, which the
stack's CloudFront distribution serves at the site root.

Usage: .venv/bin/python -m scripts.publish_web --bucket NAME [--source web/]
           [--endpoint-url URL] [--distribution-id ID]

Every file goes up with its Content-Type and a Cache-Control: index.html is
`no-cache` (a deploy shows on the next load), everything else `public,
max-age=300`. The page goes up last, so it never names a script that is not
there yet; keys under web/ that no longer name a source file are deleted
after. With --distribution-id, CloudFront is told to drop its copies (/*).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from devtools.local_site import INDEX, TEXT_TYPES  # noqa: E402

PREFIX = "web/"
PAGE_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=300"
DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys


@dataclass(frozen=True)
class Upload:
    path: Path
    key: str
    content_type: str
    cache_control: str


def content_type(name: str) -> str:
    return TEXT_TYPES.get(Path(name).suffix, "application/octet-stream")


def uploads(source: Path) -> list[Upload]:
    """One upload per file under `source` (dot files left out), the page last."""
    files = [
        path
        for path in sorted(source.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(source).parts)
    ]
    planned = [
        Upload(
            path=path,
            key=PREFIX + path.relative_to(source).as_posix(),
            content_type=content_type(path.name),
            cache_control=PAGE_CACHE if path.relative_to(source).as_posix() == INDEX else ASSET_CACHE,
        )
        for path in files
    ]
    return sorted(planned, key=lambda upload: upload.key == PREFIX + INDEX)


def stale_keys(existing: Iterable[str], planned: Iterable[Upload]) -> list[str]:
    wanted = {upload.key for upload in planned}
    return sorted(key for key in existing if key not in wanted)


def existing_keys(s3, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def delete(s3, bucket: str, keys: Sequence[str]) -> None:
    for start in range(0, len(keys), DELETE_BATCH):
        batch = keys[start : start + DELETE_BATCH]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True})


def publish(s3, bucket: str, source: Path) -> tuple[int, int]:
    """Upload `source` and delete what it no longer holds: (uploaded, deleted)."""
    planned = uploads(source)
    if not any(upload.key == PREFIX + INDEX for upload in planned):
        raise SystemExit(f"{source} has no {INDEX}: refusing to publish (it would delete the live site)")
    for upload in planned:
        s3.put_object(
            Bucket=bucket,
            Key=upload.key,
            Body=upload.path.read_bytes(),
            ContentType=upload.content_type,
            CacheControl=upload.cache_control,
        )
    stale = stale_keys(existing_keys(s3, bucket), planned)
    delete(s3, bucket, stale)
    return len(planned), len(stale)


def invalidate(cloudfront, distribution_id: str) -> str:
    answer = cloudfront.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": uuid.uuid4().hex},
    )
    return answer["Invalidation"]["Id"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True, help="the stack's data bucket (output BucketName)")
    parser.add_argument("--source", type=Path, default=REPO / "web", help="the web client's directory")
    parser.add_argument("--endpoint-url", help="an S3 endpoint other than AWS's (moto, the local stack)")
    parser.add_argument("--distribution-id", help="invalidate this CloudFront distribution (WebDistributionId)")
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        parser.error(f"--source {args.source} is not a directory")

    import boto3

    session = boto3.session.Session()
    s3 = session.client("s3", endpoint_url=args.endpoint_url)
    uploaded, deleted = publish(s3, args.bucket, args.source)
    print(f"published {uploaded} files to s3://{args.bucket}/{PREFIX}, deleted {deleted} stale", file=sys.stderr)
    if args.distribution_id:
        invalidation = invalidate(session.client("cloudfront"), args.distribution_id)
        print(f"invalidation {invalidation} of /* on {args.distribution_id}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
