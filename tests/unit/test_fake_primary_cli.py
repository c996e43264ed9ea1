"""The fake primary's command line is derived from its settings: every field of
`Mode` and `ServerSettings` is a flag, with the field's own check."""

from dataclasses import fields

import pytest

from devtools.fake_primary.cli import ServerSettings, parse_args
from devtools.fake_primary.mode import Mode

NON_DEFAULT_MODE = {
    "down": ["--down"],
    "fail_rate": ["--fail-rate", "0.25"],
    "latency_ms": ["--latency-ms", "7"],
    "rate_limit": ["--rate-limit", "3"],
    "timeout_rate": ["--timeout-rate", "0.5"],
    "lose_answer_rate": ["--lose-answer-rate", "0.75"],
    "stall_seconds": ["--stall-seconds", "2"],
    "force_status": ["--force-status", "503"],
    "force_body": ["--force-body", "{}"],
    "retry_after": ["--retry-after", "9"],
    "retry_after_format": ["--retry-after-format", "http-date"],
    "rate_limit_reset_format": ["--rate-limit-reset-format", "epoch"],
    "idempotent_status": ["--idempotent-status", "409"],
}
NON_DEFAULT_SETTINGS = {
    "host": ["--host", "127.0.0.2"],
    "port": ["--port", "8123"],
    "token": ["--token", "t0ken"],
    "seed": ["--seed", "3"],
    "max_chars": ["--max-chars", "280"],
    "verbose": ["--verbose"],
}


def test_every_field_of_the_mode_and_the_settings_has_a_flag_listed_here():
    assert set(NON_DEFAULT_MODE) == {item.name for item in fields(Mode)}
    assert set(NON_DEFAULT_SETTINGS) == {item.name for item in fields(ServerSettings)}


def test_no_flags_give_the_defaults():
    assert parse_args([]) == (ServerSettings(), Mode())


@pytest.mark.parametrize("name", sorted(NON_DEFAULT_MODE))
def test_each_mode_flag_sets_its_field_and_only_it(name):
    settings, mode = parse_args(NON_DEFAULT_MODE[name])

    assert getattr(mode, name) != getattr(Mode(), name)
    assert {item.name for item in fields(Mode) if getattr(mode, item.name) != getattr(Mode(), item.name)} == {name}
    assert settings == ServerSettings()


@pytest.mark.parametrize("name", sorted(NON_DEFAULT_SETTINGS))
def test_each_settings_flag_sets_its_field(name):
    settings, mode = parse_args(NON_DEFAULT_SETTINGS[name])

    assert getattr(settings, name) != getattr(ServerSettings(), name)
    assert mode == Mode()


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--fail-rate", "1.5"], "fail_rate"),
        (["--force-status", "99"], "force_status"),
        (["--stall-seconds", "-1"], "stall_seconds"),
    ],
)
def test_a_value_the_mode_refuses_is_refused_on_the_command_line_too(argv, field):
    with pytest.raises(ValueError, match=field):
        parse_args(argv)
