"""Fixtures for tests that run real servers on loopback."""

from __future__ import annotations

import socket

import pytest

from devtools.fake_primary import FakePrimary
from tests.e2e.postgres import Postgres

PRIMARY_TOKEN = "primary-token-for-tests"


@pytest.fixture
def primary():
    """A fake primary on a free loopback port, stopped after the test."""
    with FakePrimary(PRIMARY_TOKEN, seed=1234) as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session, on a socket in a temporary
    directory; stopped, and the directory removed, at the end."""
    server = Postgres()
    try:
        yield server.start()
    finally:
        server.stop()
