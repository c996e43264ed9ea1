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

from chalicelib.accounts.rate_limits import PostWindows
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
    from chalicelib.home.store import HomeStore
    from chalicelib.home.timeline import HomeTimeline
    from chalicelib.maintenance import Maintenance
    from chalicelib.mastodon.api import MastodonApi
    from chalicelib.mastodon.follows import FollowStore
    from chalicelib.mirror.inbox import Inbox
    from chalicelib.mirror.service import Mirror
    from chalicelib.mirror.state import MirrorState, MirrorStateStore
    from chalicelib.mirror.store import MirrorStore
    from chalicelib.oauth.service import OAuthServer
    from chalicelib.posts.checkpoints import ArchiveCheckpoints
    from chalicelib.recovery.admin import RecoveryAdmin
    from chalicelib.recovery.backlog import BacklogStore
    from chalicelib.recovery.health_store import HealthStore
    from chalicelib.recovery.service import Recovery
    from chalicelib.stream.active_store import DynamoActiveShards
    from chalicelib.stream.consumer import HomeFanout, StreamConsumer
    from chalicelib.stream.store import StreamStore
    from chalicelib.upstream.port import Upstream
    from chalicelib.upstream.tokens import KeptTokens, TokenSealer, UpstreamTokens

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
    configured = settings()
    return PostStore(
        dynamodb(),
        configured.table_name,
        configured.write_shards,
        reads_mirror=configured.mirror_enabled,
        public_lanes=configured.public_lanes,
        post_windows=post_windows(),
    )


@_singleton
def post_windows() -> PostWindows:
    """The posts this container accepted in each author's rate window (the
    part of the count the stream may not have delivered yet)."""
    return PostWindows()


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
    return UserStore(dynamodb(), settings().table_name, mirrored_accounts=settings().mirror_enabled)


@_singleton
def accounts() -> Accounts:
    token_cache = TokenCache(settings().auth_cache_seconds, settings().auth_stale_seconds)
    return Accounts(user_store(), settings().admin_token_sha256, utc_now_iso, token_cache)


@_singleton
def posts() -> PostService:
    spool = Spool(s3(), settings().bucket_name)
    return PostService(post_store(), spool, user_store(), settings(), id_factory(), sealer=token_sealer)


@_per_call
def follow_store() -> FollowStore:
    from chalicelib.mastodon.follows import FollowStore

    return FollowStore(dynamodb(), settings().table_name, settings().max_following)


@_per_call
def markers():
    """Mastodon read markers (chalicelib/mastodon/markers.py)."""
    from chalicelib.mastodon.markers import Markers, MarkerStore

    return Markers(MarkerStore(dynamodb(), settings().table_name), utc_now_iso)


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
    """The mirror job, or None unless MIRROR_ENABLED and a primary is
    configured: the generic change feed, or a Mastodon primary's API read
    as one (its unfollows told against the mirror's own follow graph)."""
    from chalicelib.config import MastodonFeedSettings
    from chalicelib.mirror.service import Mirror
    from chalicelib.upstream.change_feed import GenericChangeFeed
    from chalicelib.upstream.mastodon_changes import MastodonChangeSource

    configured = upstream_settings()
    if not (settings().mirror_enabled and configured.enabled):
        return None
    if configured.kind == "mastodon":
        if not configured.token:
            # The replay needs no token of ours on Mastodon; the mirror needs the
            # admin's. Without it the mirror is off, and the replay still runs.
            from chalicelib.observability import logger

            logger.error("mirror off: UPSTREAM_TOKEN (an admin:read:accounts token) is not set")
            return None
        feed = MastodonChangeSource.from_settings(configured, MastodonFeedSettings.from_env(), follow_store().following)
    else:
        feed = GenericChangeFeed.from_settings(configured)
    return Mirror(feed, mirror_store(), mirror_state(), settings().mirror_retention_days)


@_singleton
def mirror_inbox() -> Inbox | None:
    """The S3 inbox (pushed change documents), whenever MIRROR_ENABLED:
    with a change feed or without one, with a primary or none."""
    from chalicelib.mirror.inbox import Inbox
    from chalicelib.mirror.inbox_bucket import S3InboxBucket

    if not settings().mirror_enabled:
        return None
    bucket = S3InboxBucket(s3(), settings().bucket_name)
    return Inbox(bucket, mirror_store(), mirror_state(), settings().mirror_retention_days)


def mirror_status(state: MirrorState) -> dict:
    """`/status`'s `mirror`, from the state read with the backlog's counts."""
    from chalicelib.mirror.service import status_of

    return status_of(state, time.time())


@_singleton
def mastodon() -> MastodonApi:
    from chalicelib.mastodon.api import MastodonApi
    from chalicelib.mastodon.notifications import NotificationStore

    notifications = NotificationStore(dynamodb(), settings().table_name)
    return MastodonApi(
        posts(), user_store(), follow_store(), settings(), utc_now_iso, notifications, home=home_timeline()
    )


@_per_call
def home_store() -> HomeStore:
    from chalicelib.home.store import HomeStore

    configured = settings()
    return HomeStore(dynamodb(), configured.table_name, configured.write_shards, reads_mirror=configured.mirror_enabled)


@_singleton
def home_timeline() -> HomeTimeline:
    """Home pages: the fanned-out entries, and the accounts merged at read
    through the post service's author windows."""
    from chalicelib.home.timeline import HomeTimeline

    return HomeTimeline(home_store(), posts().authors_window)


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
        return MastodonUpstream.from_settings(configured, upstream_tokens().get, kept=kept_tokens())
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


def keeps_primary_tokens() -> bool:
    """Whether posts made with the primary's own tokens keep them for the
    replay: only a Mastodon primary is replayed into as each author."""
    configured = upstream_settings()
    return configured.enabled and configured.kind == "mastodon"


@_singleton
def token_sealer() -> TokenSealer | None:
    """Seals the primary token a post was made with (KMS), or None when the
    primary does not need it. Built by the first such post of a container."""
    from chalicelib.upstream.tokens import KEPT_TOKEN_PURPOSE, TokenCipher, TokenSealer

    if not keeps_primary_tokens():
        return None
    return TokenSealer(TokenCipher(kms(), upstream_settings().token_key_id, KEPT_TOKEN_PURPOSE))


@_singleton
def kept_tokens() -> KeptTokens:
    """The authors' kept primary tokens, as the replay reads and retires them."""
    from chalicelib.upstream.tokens import KEPT_TOKEN_PURPOSE, KeptTokens, TokenCipher

    cipher = TokenCipher(kms(), upstream_settings().token_key_id, KEPT_TOKEN_PURPOSE)
    return KeptTokens(dynamodb(), cipher, settings().table_name, settings().write_shards)


def kept_token_retirement():
    """Kept tokens retired over the marker shards the stream noted (`recovery.kept_retirement`)."""
    from chalicelib.recovery.kept_retirement import NotedRetirement
    from chalicelib.stream.active import Visits

    configured = settings()
    visits = Visits(active_shards(), configured.archive_settle_seconds, configured.write_shards)
    return NotedRetirement(kept_tokens(), visits)


@_singleton
def recovery() -> Recovery:
    from chalicelib.aws.lease import Lease
    from chalicelib.recovery.service import LEASE_NAME, Recovery

    lease = Lease(dynamodb(), settings().table_name, LEASE_NAME)
    spool = Spool(s3(), settings().bucket_name)
    retire = kept_token_retirement() if keeps_primary_tokens() else None
    return Recovery(backlog_store(), health_store(), lease, upstream(), settings(), spool=spool, kept_tokens=retire)


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
        active_shards=active_shards(),
        mirror=mirror(),
        inbox=mirror_inbox(),
        backlog_empty=lambda: backlog_store().backlog_counts() == BacklogCounts(0, 0),
    )


@_per_call
def feed_store() -> FeedStore:
    from chalicelib.feeds.markers import FeedStore

    configured = settings()
    return FeedStore(dynamodb(), configured.table_name, configured.write_shards, reads_mirror=configured.mirror_enabled)


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
    return FeedPublisher(feeds(), feed_store(), post_store(), static, lease, settings(), active_shards())


@_per_call
def stream_store() -> StreamStore:
    from chalicelib.stream.store import StreamStore

    return StreamStore(dynamodb(), settings().table_name, settings().write_shards)


@_singleton
def home_fanout() -> HomeFanout:
    """The home timelines' fan-out on write (chalicelib/home/fanout.py)."""
    from chalicelib.home.fanout import HomeFanout

    configured = settings()
    return HomeFanout(home_store(), configured.fanout_max_followers, configured.home_max_items)


@_singleton
def stream_consumer() -> StreamConsumer:
    """The stream's handler: counts, feed markers, dirty feeds, home fan-out."""
    from chalicelib.stream.consumer import StreamConsumer

    configured = settings()
    return StreamConsumer(
        stream_store(),
        home_fanout(),
        public=post_store(),
        counts_posts=configured.posts_per_minute > 0,
        active_shards=active_shards(),
        write_shards=configured.write_shards,
        notes_kept_tokens=keeps_primary_tokens(),
    )


@_per_call
def active_shards() -> DynamoActiveShards:
    """The write shards noted per minute by the stream, for the job (`stream.active`)."""
    from chalicelib.stream.active_store import DynamoActiveShards

    return DynamoActiveShards(dynamodb(), settings().table_name)
