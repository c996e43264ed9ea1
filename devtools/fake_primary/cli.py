"""`python -m devtools.fake_primary`: the fake primary as a process. Its flags
are derived from the fields of `ServerSettings` and `Mode`, so a new fault is a
new field and nothing else; prints `Fake primary: <url>` once listening and
stops cleanly on SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from dataclasses import MISSING, asdict, dataclass, fields

from devtools.fake_primary.mode import Mode, setting
from devtools.fake_primary.server import DEFAULT_TOKEN, FakePrimary


@dataclass(frozen=True)
class ServerSettings:
    """Where the fake listens and what it accepts; fixed for the process."""

    host: str = setting("127.0.0.1", None, "the address to listen on", str)
    port: int = setting(0, None, "0 picks a free port", int)
    token: str = setting(DEFAULT_TOKEN, None, "the bearer token the ingest accepts", str)
    seed: int | None = setting(None, None, "seeds the fault dice, for a repeatable run", int)
    max_chars: int = setting(500, None, "the longest text the primary takes", int)
    verbose: bool = setting(False, None, "log every request to stderr")


def _add_flags(parser: argparse.ArgumentParser, settings: type) -> None:
    for item in fields(settings):
        flag = "--" + item.name.replace("_", "-")
        parse, help_text = item.metadata["parse"], item.metadata["help"]
        if parse is None:
            parser.add_argument(flag, dest=item.name, action="store_true", help=help_text)
            continue
        default = None if item.default is MISSING else item.default
        choices = getattr(item.metadata["check"], "choices", None)
        parser.add_argument(flag, dest=item.name, type=parse, default=default, choices=choices, help=help_text)


def parse_args(argv: list[str] | None = None) -> tuple[ServerSettings, Mode]:
    """The settings and mode the command line asks for; ValueError names a bad field."""
    parser = argparse.ArgumentParser(description="A fake primary speaking the generic ingest protocol.")
    _add_flags(parser, ServerSettings)
    _add_flags(parser, Mode)
    args = vars(parser.parse_args(argv))
    settings = ServerSettings(**{item.name: args[item.name] for item in fields(ServerSettings)})
    mode = Mode().updated({item.name: args[item.name] for item in fields(Mode)})
    return settings, mode


def main(argv: list[str] | None = None) -> int:
    try:
        settings, mode = parse_args(argv)
    except ValueError as exc:
        print(f"fake_primary: {exc.args[0]}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    options = asdict(settings)
    with FakePrimary(options.pop("token"), mode=mode, **options) as primary:
        print(f"Fake primary: {primary.url}", flush=True)
        # In slices: a signal delivered to a server thread only flags the main
        # thread, which must wake to run the handler.
        while not stop.wait(0.5):
            pass
    return 0
