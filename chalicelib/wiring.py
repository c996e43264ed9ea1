"""The composition root: builds settings, AWS clients, adapters and services
lazily, once per container. Views and schedules ask here for what they need;
tests call `reset()` and let the next request build afresh (inside moto).

What every route uses (DynamoDB, the accounts, the posts) is imported here,
at cold start. Each other feature (feeds, Mastodon, recovery, upstream
tokens) is imported inside its builder, so only a container whose routes use
it pays for loading it (docs/DESIGN.md, "Cold start")."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from chalicelib.accounts.auth import Accounts, TokenCache, UserStore
from chalicelib.aws import clients as aws
from chalicelib.config import Settings, UpstreamSettings
from chalicelib.core import ids
from chalicelib.posts.archive import Spool
from chalicelib.posts.service import PostService
from chalicelib.posts.store import PostStore

if TYPE_CHECKING:
    from chalicelib.feeds.live import FeedPublisher, Feeds
    from chalicelib.feeds.markers import FeedStore
    from chalicelib.maintenance import Maintenance
    from chalicelib.mastodon.api import MastodonApi
    from chalicelib.mastodon.follows import FollowStore
    from chalicelib.posts.checkpoints import ArchiveCheckpoints
    from chalicelib.recovery.admin import RecoveryAdmin
    from chalicelib.recovery.backlog import BacklogStore
    from chalicelib.recovery.health_store import HealthStore
    from chalicelib.recovery.service import Recovery
    from chalicelib.upstream.generic import Upstream
    from chalicelib.upstream.tokens import UpstreamTokens


def utc_now_iso() -> str:
    now = datetime.now(UTC)
    return ids.iso_from_millis(int(now.timestamp() * 1000))


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def dynamodb():
    return aws.new_client("dynamodb")


@cache
def s3():
    return aws.new_client("s3")


@cache
def kms():
    return aws.new_client("kms")


@cache
def id_factory() -> ids.UlidFactory:
    return ids.UlidFactory()


def post_store() -> PostStore:
    return PostStore(dynamodb(), settings().table_name, settings().write_shards)


def backlog_store() -> BacklogStore:
    from chalicelib.recovery.backlog import BacklogStore

    return BacklogStore(dynamodb(), settings().table_name, settings().write_shards)


def archive_checkpoints() -> ArchiveCheckpoints:
    from chalicelib.posts.checkpoints import ArchiveCheckpoints

    return ArchiveCheckpoints(dynamodb(), settings().table_name)


def user_store() -> UserStore:
    return UserStore(dynamodb(), settings().table_name)


@cache
def accounts() -> Accounts:
    cache = TokenCache(settings().auth_cache_seconds, settings().auth_stale_seconds)
    return Accounts(user_store(), settings().admin_token_sha256, utc_now_iso, cache)


@cache
def posts() -> PostService:
    spool = Spool(s3(), settings().bucket_name)
    return PostService(post_store(), spool, user_store(), settings(), id_factory())


def follow_store() -> FollowStore:
    from chalicelib.mastodon.follows import FollowStore

    return FollowStore(dynamodb(), settings().table_name, settings().max_following)


@cache
def mastodon() -> MastodonApi:
    from chalicelib.mastodon.api import MastodonApi

    return MastodonApi(posts(), post_store(), user_store(), follow_store(), settings(), utc_now_iso)


@cache
def upstream_settings() -> UpstreamSettings:
    return UpstreamSettings.from_env(read_secret=read_ssm_secret)


def read_ssm_secret(name: str) -> str:
    """A SecureString from SSM Parameter Store, decrypted (once per
    container: upstream_settings is cached)."""
    response = aws.new_client("ssm").get_parameter(Name=name, WithDecryption=True)
    return response["Parameter"]["Value"]


def upstream() -> Upstream | None:
    """The primary to replay into, or None when no UPSTREAM_URL is set."""
    from chalicelib.upstream.generic import GenericIngestUpstream
    from chalicelib.upstream.mastodon import MastodonUpstream

    configured = upstream_settings()
    if not configured.enabled:
        return None
    if configured.kind == "mastodon":
        return MastodonUpstream.from_settings(configured, upstream_tokens().get)
    return GenericIngestUpstream.from_settings(configured)


@cache
def upstream_tokens() -> UpstreamTokens:
    """Per-user tokens for a Mastodon primary; cached so their decrypted
    values are reused for a few minutes rather than decrypted per post."""
    from chalicelib.upstream.tokens import UpstreamTokens

    return UpstreamTokens(dynamodb(), kms(), settings().table_name, upstream_settings().token_key_id)


@cache
def recovery() -> Recovery:
    from chalicelib.aws.lease import Lease
    from chalicelib.recovery.service import LEASE_NAME, Recovery

    lease = Lease(dynamodb(), settings().table_name, LEASE_NAME)
    spool = Spool(s3(), settings().bucket_name)
    return Recovery(backlog_store(), health_store(), lease, upstream(), settings(), spool=spool)


@cache
def recovery_admin() -> RecoveryAdmin:
    from chalicelib.recovery.admin import RecoveryAdmin

    return RecoveryAdmin(backlog_store(), health_store(), settings())


def health_store() -> HealthStore:
    from chalicelib.recovery.health_store import HealthStore

    return HealthStore(dynamodb(), settings().table_name)


@cache
def maintenance() -> Maintenance:
    from chalicelib.maintenance import Maintenance
    from chalicelib.posts.archive import Archive

    bucket = settings().bucket_name
    return Maintenance(
        post_store(),
        Spool(s3(), bucket),
        Archive(s3(), bucket),
        archive_checkpoints(),
        settings(),
        recovery(),
        publisher=feed_publisher(),
    )


def feed_store() -> FeedStore:
    from chalicelib.feeds.markers import FeedStore

    return FeedStore(dynamodb(), settings().table_name, settings().write_shards)


@cache
def feeds() -> Feeds:
    from chalicelib.feeds.live import Feeds

    return Feeds(post_store(), feed_store(), settings())


def feed_publisher() -> FeedPublisher:
    from chalicelib.aws.lease import Lease
    from chalicelib.feeds.live import FEEDS_LEASE_NAME, FeedPublisher
    from chalicelib.feeds.static import StaticFeeds

    static = StaticFeeds(s3(), settings().bucket_name)
    lease = Lease(dynamodb(), settings().table_name, FEEDS_LEASE_NAME)
    return FeedPublisher(feeds(), feed_store(), post_store(), static, lease, settings())


def reset() -> None:
    """Forget everything built so far (tests; a changed environment)."""
    built = (settings, dynamodb, s3, id_factory, accounts, posts, upstream_settings, recovery, maintenance, feeds)
    recovery_admin.cache_clear()
    for cached in built:
        cached.cache_clear()
    mastodon.cache_clear()
    kms.cache_clear()
    upstream_tokens.cache_clear()
