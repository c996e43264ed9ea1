"""Count the requests per mirrored post on the Mastodon path: HTTP requests
to the primary and AWS requests (with the write units they carry).

Runs the real mirror job (`Mirror` over `MastodonChangeSource` and the
DynamoDB adapters, moto in process) against the fake Mastodon on loopback:
50 local accounts, each following 10 others, and N public posts. Two
figures: a fresh start (the new accounts, every post, then the crawl of
every account's follows), and the steady state after it (N more posts,
no crawl due). HTTP requests are the fake's own counts; AWS calls are
counted with a botocore hook, write units by scripts/count_requests.py's
rules.
Usage: .venv/bin/python -m scripts.count_mastodon_mirror_requests [--posts N]
"""

from __future__ import annotations

import argparse

from scripts.count_requests import Recorder, on_moto

ADMIN = "admin-token-for-counting"
ACCOUNTS = 50
FOLLOWING = 10
TEXT = "A typical post of about a hundred characters, mirrored from the primary while it was still up."
HTTP_COUNTERS = ("admin_account_requests", "public_timeline_requests", "following_requests")


def seed(server, posts: int, first: int = 0) -> None:
    for n in range(first, first + posts):
        server.add_status(f"user{n % ACCOUNTS}", f"{TEXT} {n}")


def measure(posts: int) -> None:
    from moto import mock_aws

    from chalicelib import wiring
    from chalicelib.aws import clients as aws
    from chalicelib.aws import schema
    from chalicelib.config import MastodonFeedSettings
    from chalicelib.mirror.service import Mirror
    from chalicelib.upstream.mastodon_changes import MastodonChangeSource
    from chalicelib.upstream.tokens import ensure_key
    from devtools.fake_mastodon import FakeMastodon
    from devtools.localaws import serialize_moto_dynamodb

    serialize_moto_dynamodb()
    with mock_aws(), FakeMastodon({}, admin_tokens={ADMIN: "admin:read:accounts"}) as server:
        wiring.reset()
        schema.ensure_resources(aws.new_client("dynamodb"), aws.new_client("s3"), "lifeboat-local", "lifeboat-local")
        ensure_key(aws.new_client("kms"), wiring.upstream_settings().token_key_id)
        for n in range(ACCOUNTS):
            server.add_account(f"user{n}", display_name=f"User {n}")
        for n in range(ACCOUNTS):
            for step in range(1, FOLLOWING + 1):
                server.add_follow(f"user{n}", f"user{(n + step) % ACCOUNTS}")
        recorder = Recorder()
        for client in (wiring.dynamodb(), wiring.kms()):
            client.meta.events.register("before-parameter-build", recorder)
        # Posts settle at once: the fake writes them all before the mirror reads.
        settings = MastodonFeedSettings(posts_settle_seconds=0, crawl_every_seconds=3600)
        feed = MastodonChangeSource(server.url, ADMIN, settings, followees_of=wiring.follow_store().following)
        mirror = Mirror(feed, wiring.mirror_store(), wiring.mirror_state(), retention_days=7)

        def report(label: str, new_posts: int, first: int) -> None:
            seed(server, new_posts, first)
            recorder.reset()
            before = server.stats()
            result = mirror.run(lambda: 600.0)
            assert result.posts == new_posts and result.stop == "end", result
            after = server.stats()
            http = {name: after[name] - before[name] for name in HTTP_COUNTERS}
            aws_calls = sum(recorder.calls.values())
            per_post = {name: round(count / new_posts, 4) for name, count in sorted(recorder.calls.items())}
            print(
                f"{label}: {sum(http.values()) / new_posts:.4f} HTTP requests/post {http}; "
                f"{aws_calls / new_posts:.4f} AWS requests/post {per_post}, "
                f"~{recorder.wcu / new_posts:.2f} WCU/post ({new_posts} posts, {result.pages} pages, "
                f"{result.accounts} account and {result.follows} follow changes)"
            )

        report("fresh start", posts, first=0)
        report("steady state", posts, first=posts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2_000)
    args = parser.parse_args()
    on_moto()
    measure(args.posts)


if __name__ == "__main__":
    main()
