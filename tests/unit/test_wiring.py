"""The composition root's container: overrides win over building, a reset
forgets both, and a misspelt override fails loudly instead of doing nothing."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from chalicelib.core import ids


@pytest.fixture(autouse=True)
def fresh_container():
    wiring.reset()
    yield
    wiring.reset()


def test_a_singleton_is_built_once_per_container():
    first = wiring.id_factory()
    assert wiring.id_factory() is first

    wiring.reset()

    assert wiring.id_factory() is not first


def test_an_override_is_used_instead_of_building_until_reset():
    fake_factory = ids.UlidFactory(clock=lambda: 0.0)
    wiring.override(id_factory=fake_factory)
    assert wiring.id_factory() is fake_factory

    wiring.reset()

    assert wiring.id_factory() is not fake_factory


def test_a_per_call_builder_can_be_overridden_too():
    fake_store = object()
    wiring.override(post_store=fake_store)
    assert wiring.post_store() is fake_store


def test_overriding_a_name_no_builder_has_is_an_error():
    with pytest.raises(TypeError, match="feed"):
        wiring.override(feed=object())
