"""The pure parts of the upstream module: header parsing, backoff, settings.
No I/O here; the adapter meets a real server in tests/e2e."""

from __future__ import annotations

import email.utils

import pytest

from chalicelib.config import SettingsError, UpstreamSettings
from chalicelib.upstream.generic import GenericIngestUpstream
from chalicelib.upstream.headers import (
    MAX_RETRY_AFTER_SECONDS,
    parse_rate_limit,
    parse_rate_limit_reset,
    parse_retry_after,
)
from chalicelib.upstream.port import Backoff, RateLimit, UpstreamPost

NOW = 1_717_000_000.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("0", 0.0),
        ("7", 7.0),
        (" 30 ", 30.0),
        (email.utils.formatdate(NOW + 90, usegmt=True), 90.0),
        (email.utils.formatdate(NOW - 90, usegmt=True), 0.0),
        ("99999", MAX_RETRY_AFTER_SECONDS),
    ],
)
def test_retry_after_accepts_seconds_and_http_dates_clamped(header, seconds):
    assert parse_retry_after(header, NOW) == seconds


@pytest.mark.parametrize("header", [None, "", "-5", "1.5", "soon", "\u0661\u0662", "Mon, 99 Foo 2024"])
def test_retry_after_that_cannot_be_read_is_none(header):
    assert parse_retry_after(header, NOW) is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("42", 42.0),
        (str(int(NOW) + 60), 60.0),
        ("2024-05-29T16:27:40.000Z", 60.0),
        ("2024-05-29T16:27:40+00:00", 60.0),
        ("2024-05-29T16:27:40", 60.0),
        (str(int(NOW) - 60), 0.0),
    ],
)
def test_rate_limit_reset_accepts_delta_epoch_and_iso(header, seconds):
    # NOW is 2024-05-29T16:26:40Z
    assert parse_rate_limit_reset(header, NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("header", [None, "later", "nan", "inf"])
def test_rate_limit_reset_that_cannot_be_read_is_none(header):
    assert parse_rate_limit_reset(header, NOW) is None


def test_rate_limit_collects_what_the_primary_sent():
    headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "5"}

    assert parse_rate_limit(headers, NOW) == RateLimit(limit=300, remaining=12, reset_after_seconds=5.0)


def test_rate_limit_is_none_without_headers_and_partial_with_some():
    assert parse_rate_limit({}, NOW) is None
    assert parse_rate_limit({"X-RateLimit-Remaining": "0"}, NOW) == RateLimit(remaining=0)


def test_backoff_grows_exponentially_up_to_the_cap_with_the_top_draw():
    backoff = Backoff(base_seconds=1.0, cap_seconds=60.0, rng=lambda: 0.999)

    delays = [backoff.delay(attempt) for attempt in range(8)]

    assert delays == pytest.approx([0.999, 1.998, 3.996, 7.992, 15.984, 31.968, 59.94, 59.94])


def test_backoff_full_jitter_can_wait_nothing():
    assert Backoff(rng=lambda: 0.0).delay(5) == 0.0


def test_backoff_never_waits_less_than_the_primary_asked():
    assert Backoff(rng=lambda: 0.0).delay(0, at_least=12.5) == 12.5


def test_backoff_survives_absurd_attempt_numbers():
    assert Backoff(cap_seconds=300.0, rng=lambda: 0.5).delay(10_000) == 150.0


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (2.0, 1.0)])
def test_backoff_rejects_a_base_it_cannot_grow_from(base, cap):
    with pytest.raises(ValueError):
        Backoff(base_seconds=base, cap_seconds=cap)


def test_backoff_rejects_negative_attempts():
    with pytest.raises(ValueError):
        Backoff().delay(-1)


def test_idempotency_key_prefers_the_clients_key():
    post = UpstreamPost(id="01HZY", author="a", text="t", created_at="c")

    assert post.effective_idempotency_key == "01HZY"
    assert UpstreamPost("01HZY", "a", "t", "c", idempotency_key="k").effective_idempotency_key == "k"


def test_settings_defaults_leave_recovery_off():
    settings = UpstreamSettings.from_env({})

    assert settings == UpstreamSettings(url="", token="", health_path="/health", ingest_path="/posts")
    assert settings.timeout_seconds == 5.0
    assert not settings.enabled


def test_settings_read_every_variable():
    env = {
        "UPSTREAM_URL": "https://primary.example/api/",
        "UPSTREAM_TOKEN": "s3cret",
        "UPSTREAM_HEALTH_PATH": "/v1/health",
        "UPSTREAM_INGEST_PATH": "/v1/statuses",
        "UPSTREAM_TIMEOUT_SECONDS": "2.5",
    }

    settings = UpstreamSettings.from_env(env)

    assert settings == UpstreamSettings("https://primary.example/api", "s3cret", "/v1/health", "/v1/statuses", 2.5)
    assert settings.enabled
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    "env",
    [
        {"UPSTREAM_URL": "ftp://primary.example", "UPSTREAM_TOKEN": "t"},
        {"UPSTREAM_URL": "https://primary.example"},
        {"UPSTREAM_INGEST_PATH": "posts"},
        {"UPSTREAM_TIMEOUT_SECONDS": "0"},
        {"UPSTREAM_TIMEOUT_SECONDS": "fast"},
    ],
)
def test_settings_refuse_unusable_values(env):
    with pytest.raises(SettingsError):
        UpstreamSettings.from_env(env)


def test_a_missing_token_error_does_not_quote_anything_secret():
    with pytest.raises(SettingsError) as caught:
        UpstreamSettings.from_env({"UPSTREAM_URL": "https://primary.example", "UPSTREAM_TOKEN": " "})

    assert "UPSTREAM_TOKEN" in str(caught.value)


@pytest.mark.parametrize(("url", "token"), [("file:///etc/passwd", "t"), ("https://primary.example", "")])
def test_adapter_refuses_other_schemes_and_an_empty_token(url, token):
    with pytest.raises(ValueError):
        GenericIngestUpstream(url, token)


def test_adapter_refuses_a_token_that_would_inject_headers_without_quoting_it():
    with pytest.raises(ValueError) as caught:
        GenericIngestUpstream("https://primary.example", "s3cret\r\nX-Evil: 1")

    assert "s3cret" not in str(caught.value)


def test_a_deployed_stage_reads_the_upstream_token_from_ssm():
    asked = []

    def read_secret(name):
        asked.append(name)
        return "s3cret-from-ssm\n"

    env = {"UPSTREAM_URL": "https://primary.example", "UPSTREAM_TOKEN_PARAMETER": "/lifeboat/upstream-token"}
    settings = UpstreamSettings.from_env(env, read_secret=read_secret)
    assert settings.token == "s3cret-from-ssm"
    assert asked == ["/lifeboat/upstream-token"]
    assert "s3cret" not in repr(settings)


def test_an_explicit_token_wins_and_ssm_is_not_asked():
    env = {"UPSTREAM_URL": "https://p.example", "UPSTREAM_TOKEN": "t", "UPSTREAM_TOKEN_PARAMETER": "/x"}
    assert UpstreamSettings.from_env(env, read_secret=lambda name: pytest.fail("asked SSM")).token == "t"
