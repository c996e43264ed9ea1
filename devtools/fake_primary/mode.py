"""How the fake primary misbehaves: `Mode`. Each field carries its check and its
help, so `POST /control` and the command line (`cli.py`) accept the same fields
with the same rules."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

RETRY_AFTER_FORMATS = ("seconds", "http-date")
RESET_FORMATS = ("delta", "epoch", "iso")


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _fraction(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError("must be a number in [0, 1]")
    return float(value)


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be an integer >= 0")
    return value


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
        raise ValueError("must be a number of seconds in [0, 3600]")
    return float(value)


def _optional(check):
    return lambda value: None if value is None else check(value)


def _status(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        raise ValueError("must be an HTTP status in [200, 599]")
    return value


def _one_of(*choices):
    def check(value: object):
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(map(str, choices))}")
        return value

    check.choices = choices
    return check


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def setting(default, check, help: str, parse: type | None = None):
    """A dataclass field with its validation, its command-line parser (the type
    of a command-line word; a flag when None and the check is `_flag`) and help."""
    return field(default=default, metadata={"check": check, "parse": parse, "help": help})


@dataclass(frozen=True)
class Mode:
    """How the fake misbehaves. `rate_limit` is requests per second (0: no
    limit). `retry_after` is sent with 503s (down, forced) and forced 429s;
    rate-limit 429s always say when the window ends. `force_status` answers
    every authorised ingest request that survived the other faults."""

    down: bool = setting(False, _flag, "answer 503 to everything")
    fail_rate: float = setting(0.0, _fraction, "the fraction of ingest requests answered 500", float)
    latency_ms: int = setting(0, _count, "added to every request", int)
    rate_limit: int = setting(0, _count, "requests per second; 0 for none", int)
    timeout_rate: float = setting(0.0, _fraction, "the fraction of requests that stall, then hang up", float)
    lose_answer_rate: float = setting(0.0, _fraction, "the fraction done whose answer is never sent", float)
    stall_seconds: float = setting(10.0, _seconds, "how long a stalled request waits", float)
    force_status: int | None = setting(None, _optional(_status), "answer every ingest request with this", int)
    force_body: str | None = setting(None, _optional(_text), "the body of the forced answers", str)
    retry_after: int | None = setting(None, _optional(_count), "Retry-After seconds on 503s and forced 429s", int)
    retry_after_format: str = setting("seconds", _one_of(*RETRY_AFTER_FORMATS), "how Retry-After is written", str)
    rate_limit_reset_format: str = setting("delta", _one_of(*RESET_FORMATS), "how X-RateLimit-Reset is written", str)
    idempotent_status: int = setting(200, _one_of(200, 409), "the answer to a repeated Idempotency-Key", int)

    def updated(self, changes: dict) -> Mode:
        """A copy with `changes` applied; ValueError names a bad field."""
        checks = {item.name: item.metadata["check"] for item in fields(self)}
        unknown = sorted(set(changes) - set(checks))
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(unknown)}")
        checked = {}
        for name, value in changes.items():
            try:
                checked[name] = checks[name](value)
            except ValueError as exc:
                raise ValueError(f"{name} {exc}") from exc
        return replace(self, **checked)
