"""Typed settings, read from the environment once per container.

Nothing here runs at import time: Chalice's test client sets a stage's
environment variables only while a request runs, and moto must be started
before anything reads AWS settings.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

UPSTREAM_KINDS = ("generic", "mastodon")
DEFAULT_TOKEN_KEY_ID = "alias/lifeboat-upstream-tokens"  # noqa: S105 - a key alias, not a secret


class SettingsError(ValueError):
    """A setting is present but unusable; raised at first use, not import."""


def _number(env: Mapping[str, str], name: str, default, convert, kind: str):
    """`env[name]` converted, the default when unset, SettingsError when
    unusable; the callers add their own range check."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return convert(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be {kind}, got {raw!r}") from exc


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    value = _number(env, name, default, int, "an integer")
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Settings:
    table_name: str
    bucket_name: str
    # Only the hash of the admin token is kept in memory, so a heap dump or a
    # repr() in a log line never shows the secret.
    admin_token_sha256: str = field(repr=False)
    max_post_chars: int = 500
    max_body_bytes: int = 16 * 1024
    write_shards: int = 4
    # Partitions of the public timeline's chunks (posts.public_pages): one
    # takes ~60,000 posts/s; may grow, never shrink (docs/DESIGN.md).
    public_lanes: int = 1
    idempotency_ttl_seconds: int = 24 * 3600
    archive_settle_seconds: int = 60
    archive_batch_max: int = 1000
    # A user's static feed copy is republished at most once per interval (the
    # public one every run); a change, a delete too, reaches it within that.
    static_feed_interval_seconds: int = 900
    posts_per_minute: int = 30
    # Follows, unfollows and deletes, counted together, per user per minute.
    writes_per_minute: int = 30
    # Whom one user may follow at most: Mastodon's own cap.
    max_following: int = 7500
    # Home timelines (docs/DESIGN.md, "Home timeline"): an account with more
    # followers than this is merged at read instead of fanned out, and each
    # home keeps about its newest HOME_MAX_ITEMS posts (Twitter's figure).
    fanout_max_followers: int = 10000
    home_max_items: int = 800
    auth_cache_seconds: int = 60
    auth_stale_seconds: int = 900
    health_up_after: int = 3
    health_down_after: int = 2
    replay_concurrency: int = 8
    replay_max_rps: float = 50.0
    replay_circuit_failures: int = 10
    replay_window_per_shard: int = 500
    replay_safety_margin_seconds: float = 10.0
    spool_fold_batch: int = 500
    default_page_size: int = 20
    feed_items: int = 50
    # Where clients reach the API: the base of every link in a feed. It is a
    # setting, not the request's Host header, so a publicly cached feed
    # cannot be made to link elsewhere, and its static copy is the same bytes.
    public_base_url: str = "http://127.0.0.1:8000"
    # Where people reach the primary's own site once it is back: /status
    # names it, and the web client's banner links to it. None until set.
    primary_public_url: str | None = None
    max_page_size: int = 100
    # The primary's domain, for Mastodon account addresses (user@domain);
    # empty accepts any domain as local.
    instance_domain: str = ""
    # The instance entities' contact address; empty (as Mastodon sends it
    # when none is set) until CONTACT_EMAIL names one.
    contact_email: str = ""
    # How long mirrored posts of the primary are kept (DynamoDB TTL).
    mirror_retention_days: int = 7
    # Whether the maintenance job mirrors the primary's change feed.
    mirror_enabled: bool = False
    # OAuth sign-in: how long an admin's one-time sign-in code lasts, and how
    # many failed sign-ins a username and a client address get per window.
    sign_in_code_ttl_seconds: int = 86400
    sign_in_failures_per_username: int = 5
    sign_in_failures_per_address: int = 30
    sign_in_failure_window_seconds: int = 900

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        admin_hash = env.get("ADMIN_TOKEN_SHA256", "").strip().lower()
        if not admin_hash and env.get("ADMIN_TOKEN"):
            admin_hash = _sha256(env["ADMIN_TOKEN"])
        return cls(
            table_name=env.get("TABLE_NAME", "lifeboat-local"),
            bucket_name=env.get("BUCKET_NAME", "lifeboat-local"),
            admin_token_sha256=admin_hash,
            max_post_chars=_int(env, "MAX_POST_CHARS", 500, minimum=1),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 16 * 1024, minimum=1024),
            write_shards=_int(env, "WRITE_SHARDS", 4, minimum=1),
            public_lanes=_int(env, "PUBLIC_LANES", 1, minimum=1),
            idempotency_ttl_seconds=_int(env, "IDEMPOTENCY_TTL_SECONDS", 24 * 3600, minimum=60),
            archive_settle_seconds=_int(env, "ARCHIVE_SETTLE_SECONDS", 60),
            archive_batch_max=_int(env, "ARCHIVE_BATCH_MAX", 1000, minimum=1),
            static_feed_interval_seconds=_int(env, "STATIC_FEED_INTERVAL_SECONDS", 900, minimum=0),
            posts_per_minute=_int(env, "POSTS_PER_MINUTE", 30),
            writes_per_minute=_int(env, "WRITES_PER_MINUTE", 30),
            max_following=_int(env, "MAX_FOLLOWING", 7500, minimum=1),
            fanout_max_followers=_int(env, "FANOUT_MAX_FOLLOWERS", 10000),
            home_max_items=_int(env, "HOME_MAX_ITEMS", 800, minimum=1),
            auth_cache_seconds=_int(env, "AUTH_CACHE_SECONDS", 60),
            auth_stale_seconds=_int(env, "AUTH_STALE_SECONDS", 900),
            health_up_after=_int(env, "HEALTH_UP_AFTER", 3, minimum=1),
            health_down_after=_int(env, "HEALTH_DOWN_AFTER", 2, minimum=1),
            replay_concurrency=_int(env, "REPLAY_CONCURRENCY", 8, minimum=1),
            replay_max_rps=float(_int(env, "REPLAY_MAX_RPS", 50, minimum=1)),
            replay_circuit_failures=_int(env, "REPLAY_CIRCUIT_FAILURES", 10, minimum=1),
            replay_window_per_shard=_int(env, "REPLAY_WINDOW_PER_SHARD", 500, minimum=1),
            replay_safety_margin_seconds=float(_int(env, "REPLAY_SAFETY_MARGIN_SECONDS", 10, minimum=1)),
            spool_fold_batch=_int(env, "SPOOL_FOLD_BATCH", 500, minimum=1),
            instance_domain=env.get("INSTANCE_DOMAIN", "").strip().lower(),
            contact_email=env.get("CONTACT_EMAIL", "").strip(),
            feed_items=_int(env, "FEED_ITEMS", 50, minimum=1),
            public_base_url=env.get("PUBLIC_BASE_URL", "").strip().rstrip("/") or "http://127.0.0.1:8000",
            primary_public_url=_web_url(env, "PRIMARY_PUBLIC_URL"),
            mirror_retention_days=_int(env, "MIRROR_RETENTION_DAYS", 7, minimum=1),
            mirror_enabled=_bool(env, "MIRROR_ENABLED"),
            sign_in_code_ttl_seconds=_int(env, "SIGN_IN_CODE_TTL_SECONDS", 86400, minimum=60),
            sign_in_failures_per_username=_int(env, "SIGN_IN_FAILURES_PER_USERNAME", 5),
            sign_in_failures_per_address=_int(env, "SIGN_IN_FAILURES_PER_ADDRESS", 30),
            sign_in_failure_window_seconds=_int(env, "SIGN_IN_FAILURE_WINDOW_SECONDS", 900, minimum=60),
        )


def _bool(env: Mapping[str, str], name: str) -> bool:
    word = env.get(name, "").strip().lower()
    if word in ("", "0", "false", "no", "off"):
        return False
    if word in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name} must be true or false, got {word!r}")


def _web_url(env: Mapping[str, str], name: str) -> str | None:
    """An absolute http(s) URL, or None when unset: a link shown to people
    must not be `javascript:` or relative."""
    value = env.get(name, "").strip()
    if not value:
        return None
    if not re.fullmatch(r"https?://[^\s/?#]+(?:[/?#]\S*)?", value):
        raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    value = _number(env, name, default, float, "a number")
    if not (math.isfinite(value) and value > 0):
        raise SettingsError(f"{name} must be a positive number, got {value!r}")
    return value


def _path(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if not value.startswith("/"):
        raise SettingsError(f"{name} must start with '/', got {value!r}")
    return value


@dataclass(frozen=True)
class UpstreamSettings:
    """Where the primary is. An empty `url` means no primary is configured
    and Recovery stays off."""

    url: str = ""
    token: str = field(default="", repr=False)
    health_path: str = "/health"
    ingest_path: str = "/posts"
    timeout_seconds: float = 5.0
    # "generic" (the JSON ingest protocol) or "mastodon" (per-user tokens).
    kind: str = "generic"
    # The KMS key that encrypts per-user upstream tokens (kind "mastodon").
    token_key_id: str = DEFAULT_TOKEN_KEY_ID
    # The mirror's change feed (docs/DESIGN.md, "Warm standby").
    changes_path: str = "/lifeboat/changes"

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, read_secret: Callable[[str], str] | None = None
    ) -> UpstreamSettings:
        """Raises SettingsError for an unusable value; never shows the token.

        Deployed stages name an SSM SecureString in UPSTREAM_TOKEN_PARAMETER
        instead of putting the token in the environment (where the console
        and the template would show it); `read_secret` fetches it.
        """
        env = os.environ if env is None else env
        url = env.get("UPSTREAM_URL", "").strip().rstrip("/")
        token = env.get("UPSTREAM_TOKEN", "").strip()
        parameter = env.get("UPSTREAM_TOKEN_PARAMETER", "").strip()
        if url and not token and parameter and read_secret is not None:
            token = read_secret(parameter).strip()
        if url and not url.startswith(("http://", "https://")):
            raise SettingsError(f"UPSTREAM_URL must be an http(s) URL, got {url!r}")
        kind = env.get("UPSTREAM_KIND", "").strip().lower() or "generic"
        if kind not in UPSTREAM_KINDS:
            raise SettingsError(f"UPSTREAM_KIND must be one of {', '.join(UPSTREAM_KINDS)}, got {kind!r}")
        if url and not token and kind == "generic":
            raise SettingsError("UPSTREAM_TOKEN or UPSTREAM_TOKEN_PARAMETER must be set when UPSTREAM_URL is")
        return cls(
            url=url,
            token=token,
            kind=kind,
            token_key_id=env.get("UPSTREAM_TOKEN_KEY_ID", "").strip() or DEFAULT_TOKEN_KEY_ID,
            health_path=_path(env, "UPSTREAM_HEALTH_PATH", "/health"),
            ingest_path=_path(env, "UPSTREAM_INGEST_PATH", "/posts"),
            changes_path=_path(env, "UPSTREAM_CHANGES_PATH", "/lifeboat/changes"),
            timeout_seconds=_float(env, "UPSTREAM_TIMEOUT_SECONDS", 5.0),
        )


@dataclass(frozen=True)
class MastodonFeedSettings:
    """How the mirror reads a Mastodon primary (`upstream.mastodon_changes`):
    a full crawl of its accounts and follows every `crawl_every_seconds`, at
    most `crawl_requests_per_fetch` requests per page of it, public posts
    from `retention_days` back on a fresh start, and none younger than
    `posts_settle_seconds`."""

    crawl_every_seconds: int = 3600
    crawl_requests_per_fetch: int = 20
    retention_days: int = 7
    # Posts younger than this wait: a transaction that began earlier may
    # still commit a post with a lower id.
    posts_settle_seconds: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MastodonFeedSettings:
        env = os.environ if env is None else env
        return cls(
            crawl_every_seconds=_int(env, "MIRROR_CRAWL_EVERY_SECONDS", 3600),
            # One request lists the next accounts, the rest read their follows.
            crawl_requests_per_fetch=_int(env, "MIRROR_CRAWL_REQUESTS_PER_FETCH", 20, minimum=2),
            retention_days=_int(env, "MIRROR_RETENTION_DAYS", 7, minimum=1),
            posts_settle_seconds=_int(env, "MIRROR_POSTS_SETTLE_SECONDS", 10),
        )
