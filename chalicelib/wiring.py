"""The composition root: builds settings, AWS clients, adapters and services
lazily, once per container. Views and schedules ask here for what they need;
tests hand it fakes with `override(...)`, or call `reset()` and let the next
request build afresh (inside moto).

What every route uses (DynamoDB, the accounts, the posts) is imported here,
at cold start. Each other feature (feeds, Mastodon, recovery, upstream
tokens) is imported inside its builder, so only a container whose routes use
it pays for loading it (docs/DESIGN.md, "Cold start")."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from chalicelib.accounts.service import Accounts, TokenCache
from chalicelib.accounts.store import UserStore
from chalicelib.aws import clients as aws
from chalicelib.config import Settings, UpstreamSettings
from chalicelib.core import ids
from chalicelib.core.clock import utc_now_iso
from chalicelib.posts.archive import Spool
from chalicelib.posts.service import PostService
from chalicelib.posts.store import PostStore

if TYPE_CHECKING:
    from chalicelib.accounts.upstream_credentials import UpstreamCredentials
    from chalicelib.feeds.live import Feeds
    from chalicelib.feeds.markers import FeedStore
    from chalicelib.feeds.publisher import FeedPublisher
    from chalicelib.maintenance import Maintenance
    from chalicelib.mastodon.api import MastodonApi
    from chalicelib.mastodon.follows import FollowStore
    from chalicelib.mirror.service import Mirror
    from chalicelib.mirror.state import MirrorStateStore
    from chalicelib.mirror.store import MirrorStore
    from chalicelib.oauth.service import OAuthServer
    from chalicelib.posts.checkpoints import ArchiveCheckpoints
    from chalicelib.recovery.admin import RecoveryAdmin
    from chalicelib.recovery.backlog import BacklogStore
    from chalicelib.recovery.health_store import HealthStore
    from chalicelib.recovery.service import Recovery
    from chalicelib.upstream.port import Upstream
    from chalicelib.upstream.tokens import UpstreamTokens

Built = TypeVar("Built")


class Container:
    """What one container has built, by builder name, and what tests put in
    their place. A fresh Container is a fresh start: nothing to clear."""

    def __init__(self) -> None:
        self._built: dict[str, object] = {}
        self._overrides: dict[str, object] = {}

    def override(self, **things: object) -> None:
        """Use these instead of building (e.g. `override(feeds=fake)`);
        the names are the builders'."""
        unknown = sorted(set(things) - set(_BUILDERS))
        if unknown:
            raise TypeError(f"no builder named {', '.join(unknown)}")
        self._overrides.update(things)

    def once(self, name: str, build: Callable[[], Built]) -> Built:
        if name in self._overrides:
            return self._overrides[name]
        if name not in self._built:
            # setdefault: two threads racing here both get the first one built.
            return self._built.setdefault(name, build())
        return self._built[name]

    def each_time(self, name: str, build: Callable[[], Built]) -> Built:
        return self._overrides[name] if name in self._overrides else build()


_container = Container()
_BUILDERS: set[str] = set()


def _singleton(build: Callable[[], Built]) -> Callable[[], Built]:
    """Built once per container (or overridden)."""
    _BUILDERS.add(build.__name__)

    @functools.wraps(build)
    def built() -> Built:
        return _container.once(build.__name__, build)

    return built


def _per_call(build: Callable[[], Built]) -> Callable[[], Built]:
    """Built afresh on each call (cheap adapters over cached clients), or
    overridden."""
    _BUILDERS.add(build.__name__)

    @functools.wraps(build)
    def built() -> Built:
        return _container.each_time(build.__name__, build)

    return built


def reset() -> None:
    """Forget everything built so far and every override (tests; a changed
    environment)."""
    global _container
    _container = Container()


def override(**things: object) -> None:
    """Use these objects instead of building them, until `reset()`."""
    _container.override(**things)


@_singleton
def settings() -> Settings:
    return Settings.from_env()


@_singleton
def dynamodb():
    return aws.new_client("dynamodb")


@_singleton
def s3():
    return aws.new_client("s3")


@_singleton
def kms():
    return aws.new_client("kms")


@_singleton
def id_factory() -> ids.UlidFactory:
    return ids.UlidFactory()


@_per_call
def post_store() -> PostStore:
    return PostStore(
        dynamodb(), settings().table_name, settings().write_shards, reads_mirror=settings().mirror_enabled
    )


@_per_call
def backlog_store() -> BacklogStore:
    from chalicelib.recovery.backlog import BacklogStore

    return BacklogStore(dynamodb(), settings().table_name, settings().write_shards)


@_per_call
def archive_checkpoints() -> ArchiveCheckpoints:
    from chalicelib.posts.checkpoints import ArchiveCheckpoints

    return ArchiveCheckpoints(dynamodb(), settings().table_name)


@_per_call
def user_store() -> UserStore:
    return UserStore(dynamodb(), settings().table_name)


@_singleton
def accounts() -> Accounts:
    token_cache = TokenCache(settings().auth_cache_seconds, settings().auth_stale_seconds)
    return Accounts(user_store(), settings().admin_token_sha256, utc_now_iso, token_cache)


@_singleton
def posts() -> PostService:
    spool = Spool(s3(), settings().bucket_name)
    return PostService(post_store(), spool, user_store(), settings(), id_factory())


@_per_call
def follow_store() -> FollowStore:
    from chalicelib.mastodon.follows import FollowStore

    return FollowStore(dynamodb(), settings().table_name, settings().max_following)


@_per_call
def mirror_store() -> MirrorStore:
    """The mirror's writes: the primary's accounts, credentials, follows
    and recent posts as Lifeboat's own items."""
    from chalicelib.mirror.store import MirrorStore

    configured = settings()
    return MirrorStore(
        dynamodb(),
        kms(),
        configured.table_name,
        upstream_settings().token_key_id,
        follow_store(),
        configured.write_shards,
    )


@_per_call
def mirror_state() -> MirrorStateStore:
    from chalicelib.mirror.state import MirrorStateStore

    return MirrorStateStore(dynamodb(), settings().table_name)


@_singleton
def mirror() -> Mirror | None:
    """The mirror job, or None unless MIRROR_ENABLED and a generic primary
    is configured (a Mastodon primary's feed adapter plugs in here)."""
    from chalicelib.mirror.service import Mirror
    from chalicelib.upstream.change_feed import GenericChangeFeed

    configured = upstream_settings()
    if not (settings().mirror_enabled and configured.enabled and configured.kind == "generic"):
        return None
    feed = GenericChangeFeed.from_settings(configured)
    return Mirror(feed, mirror_store(), mirror_state(), settings().mirror_retention_days)


def mirror_status() -> dict:
    from chalicelib.mirror.service import status_of

    return status_of(mirror_state().load(), time.time())


@_singleton
def mastodon() -> MastodonApi:
    from chalicelib.mastodon.api import MastodonApi

    return MastodonApi(posts(), user_store(), follow_store(), settings(), utc_now_iso)


@_singleton
def oauth() -> OAuthServer:
    """The OAuth authorization server (loaded by its routes only)."""
    from chalicelib.oauth.service import OAuthServer, SignInPolicy
    from chalicelib.oauth.store import OAuthStore

    configured = settings()
    policy = SignInPolicy(
        configured.sign_in_code_ttl_seconds,
        configured.sign_in_failures_per_username,
        configured.sign_in_failures_per_address,
        configured.sign_in_failure_window_seconds,
    )
    return OAuthServer(
        OAuthStore(dynamodb(), configured.table_name),
        user_store(),
        mirror_store,
        accounts().forget_token,
        configured.public_base_url,
        policy,
        clock=utc_now_iso,
    )


@_singleton
def upstream_settings() -> UpstreamSettings:
    return UpstreamSettings.from_env(read_secret=read_ssm_secret)


def read_ssm_secret(name: str) -> str:
    """A SecureString from SSM Parameter Store, decrypted (once per
    container: upstream_settings is cached)."""
    response = aws.new_client("ssm").get_parameter(Name=name, WithDecryption=True)
    return response["Parameter"]["Value"]


@_per_call
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


@_singleton
def upstream_credentials() -> UpstreamCredentials:
    """An operator's setting and removing of users' tokens for the primary."""
    from chalicelib.accounts.upstream_credentials import UpstreamCredentials

    return UpstreamCredentials(accounts(), upstream_tokens)


@_singleton
def upstream_tokens() -> UpstreamTokens:
    """Per-user tokens for a Mastodon primary; cached so their decrypted
    values are reused for a few minutes rather than decrypted per post."""
    from chalicelib.upstream.tokens import UpstreamTokens

    return UpstreamTokens(dynamodb(), kms(), settings().table_name, upstream_settings().token_key_id)


@_singleton
def recovery() -> Recovery:
    from chalicelib.aws.lease import Lease
    from chalicelib.recovery.service import LEASE_NAME, Recovery

    lease = Lease(dynamodb(), settings().table_name, LEASE_NAME)
    spool = Spool(s3(), settings().bucket_name)
    return Recovery(backlog_store(), health_store(), lease, upstream(), settings(), spool=spool)


@_singleton
def recovery_admin() -> RecoveryAdmin:
    from chalicelib.recovery.admin import RecoveryAdmin

    return RecoveryAdmin(backlog_store(), health_store(), settings(), mirror_status=mirror_status)


@_per_call
def health_store() -> HealthStore:
    from chalicelib.recovery.health_store import HealthStore

    return HealthStore(dynamodb(), settings().table_name)


@_singleton
def maintenance() -> Maintenance:
    from chalicelib.maintenance import Maintenance
    from chalicelib.posts.archive import Archive
    from chalicelib.recovery.backlog import BacklogCounts

    bucket = settings().bucket_name
    return Maintenance(
        post_store(),
        Spool(s3(), bucket),
        Archive(s3(), bucket),
        archive_checkpoints(),
        settings(),
        recovery(),
        publisher=feed_publisher(),
        mirror=mirror(),
        backlog_empty=lambda: backlog_store().backlog_counts() == BacklogCounts(0, 0),
    )


@_per_call
def feed_store() -> FeedStore:
    from chalicelib.feeds.markers import FeedStore

    return FeedStore(dynamodb(), settings().table_name, settings().write_shards)


@_singleton
def feeds() -> Feeds:
    from chalicelib.feeds.live import Feeds

    return Feeds(post_store(), feed_store(), settings())


@_per_call
def feed_publisher() -> FeedPublisher:
    from chalicelib.aws.lease import Lease
    from chalicelib.feeds.publisher import FEEDS_LEASE_NAME, FeedPublisher
    from chalicelib.feeds.static import StaticFeeds

    static = StaticFeeds(s3(), settings().bucket_name)
    lease = Lease(dynamodb(), settings().table_name, FEEDS_LEASE_NAME)
    return FeedPublisher(feeds(), feed_store(), post_store(), static, lease, settings())
