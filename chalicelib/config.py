"""Typed settings, read from the environment once per container.

Nothing here runs at import time: Chalice's test client sets a stage's
environment variables only while a request runs, and moto must be started
before anything reads AWS settings.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field


class SettingsError(ValueError):
    """A setting is present but unusable; raised at first use, not import."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
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
    idempotency_ttl_seconds: int = 24 * 3600
    archive_settle_seconds: int = 60
    archive_batch_max: int = 1000
    posts_per_minute: int = 30
    auth_cache_seconds: int = 60
    auth_stale_seconds: int = 900
    health_up_after: int = 3
    health_down_after: int = 2
    replay_concurrency: int = 8
    replay_max_rps: float = 50.0
    replay_circuit_failures: int = 10
    replay_window_per_shard: int = 500
    replay_safety_margin_seconds: float = 10.0
    default_page_size: int = 20
    feed_items: int = 50
    # Where clients reach the API: the base of every link in a feed. It is a
    # setting, not the request's Host header, so a publicly cached feed
    # cannot be made to link elsewhere, and its static copy is the same bytes.
    public_base_url: str = "http://127.0.0.1:8000"
    max_page_size: int = 100
    # The primary's domain, for Mastodon account addresses (user@domain);
    # empty accepts any domain as local.
    instance_domain: str = ""

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
            idempotency_ttl_seconds=_int(env, "IDEMPOTENCY_TTL_SECONDS", 24 * 3600, minimum=60),
            archive_settle_seconds=_int(env, "ARCHIVE_SETTLE_SECONDS", 60),
            archive_batch_max=_int(env, "ARCHIVE_BATCH_MAX", 1000, minimum=1),
            posts_per_minute=_int(env, "POSTS_PER_MINUTE", 30),
            auth_cache_seconds=_int(env, "AUTH_CACHE_SECONDS", 60),
            auth_stale_seconds=_int(env, "AUTH_STALE_SECONDS", 900),
            health_up_after=_int(env, "HEALTH_UP_AFTER", 3, minimum=1),
            health_down_after=_int(env, "HEALTH_DOWN_AFTER", 2, minimum=1),
            replay_concurrency=_int(env, "REPLAY_CONCURRENCY", 8, minimum=1),
            replay_max_rps=float(_int(env, "REPLAY_MAX_RPS", 50, minimum=1)),
            replay_circuit_failures=_int(env, "REPLAY_CIRCUIT_FAILURES", 10, minimum=1),
            replay_window_per_shard=_int(env, "REPLAY_WINDOW_PER_SHARD", 500, minimum=1),
            replay_safety_margin_seconds=float(_int(env, "REPLAY_SAFETY_MARGIN_SECONDS", 10, minimum=1)),
            instance_domain=env.get("INSTANCE_DOMAIN", "").strip().lower(),
            feed_items=_int(env, "FEED_ITEMS", 50, minimum=1),
            public_base_url=env.get("PUBLIC_BASE_URL", "").strip().rstrip("/") or "http://127.0.0.1:8000",
        )
