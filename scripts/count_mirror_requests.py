"""Count the AWS requests and estimate the DynamoDB write units per mirrored post.

Runs the real mirror job (`Mirror` over the DynamoDB adapters, moto in
process) over a change feed of N posts by 50 authors, with the accounts
first, and counts every AWS call with a botocore event hook; write units
come from the items actually sent (scripts/count_requests.py's rules). Two
runs: steady state (no outage mark), and right after an outage (the replay
markers are read for every post).
Usage: .venv/bin/python -m scripts.count_mirror_requests [--posts N]
"""

from __future__ import annotations

import argparse

from scripts.count_requests import Recorder, on_moto

TEXT = "A typical post of about a hundred characters, mirrored from the primary while it was still up."


def feed_of(posts: int, first: int = 0) -> list[dict]:
    return [
        {
            "type": "post",
            "id": f"10{n:010d}",
            "author": f"user{n % 50}",
            "text": TEXT,
            "created_at": f"2026-12-01T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
            "in_reply_to": None,
            "deleted": False,
        }
        for n in range(first, first + posts)
    ]


def measure(posts: int) -> None:
    from moto import mock_aws

    from chalicelib import wiring
    from chalicelib.aws import clients as aws
    from chalicelib.aws import schema
    from chalicelib.mirror.service import Mirror
    from chalicelib.upstream.tokens import ensure_key
    from devtools.fakes.mirror import ScriptedChangeFeed
    from devtools.localaws import serialize_moto_dynamodb

    serialize_moto_dynamodb()
    with mock_aws():
        wiring.reset()
        schema.ensure_resources(aws.new_client("dynamodb"), aws.new_client("s3"), "lifeboat-local", "lifeboat-local")
        ensure_key(aws.new_client("kms"), wiring.upstream_settings().token_key_id)
        recorder = Recorder()
        wiring.dynamodb().meta.events.register("before-parameter-build", recorder)
        state = wiring.mirror_state()
        feed = ScriptedChangeFeed()
        mirror = Mirror(feed, wiring.mirror_store(), state, retention_days=7, clock=lambda: 1_796_100_000.0)

        def report(label: str, changes: list[dict]) -> None:
            feed.changes += changes
            recorder.reset()
            result = mirror.run(lambda: 600.0)
            assert result.posts == len(changes) and result.stop == "end", result
            per_post = {name: round(count / len(changes), 4) for name, count in sorted(recorder.calls.items())}
            print(
                f"{label}: {sum(recorder.calls.values()) / len(changes):.4f} AWS requests/post {per_post}, "
                f"~{recorder.wcu / len(changes):.2f} WCU/post ({len(changes)} posts)"
            )

        report("steady state", feed_of(posts))
        state.note_outage("2026-12-01T00:00:00.000Z")
        report("after an outage (replay markers read)", feed_of(posts, first=posts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=10_000)
    args = parser.parse_args()
    on_moto()
    measure(args.posts)


if __name__ == "__main__":
    main()
