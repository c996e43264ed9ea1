from __future__ import annotations

from chalicelib.core import ids
from tests.concurrency import run_at_once


def test_ids_sort_in_creation_order_even_within_one_millisecond():
    frozen = ids.UlidFactory(clock=lambda: 1_700_000_000.123)
    made = [frozen.new() for _ in range(1000)]
    assert made == sorted(made)
    assert len(set(made)) == 1000


def test_a_clock_that_steps_back_never_makes_an_older_id():
    times = iter([1000.0, 999.0, 998.0])
    factory = ids.UlidFactory(clock=lambda: next(times))
    first, second, third = factory.new(), factory.new(), factory.new()
    assert first < second < third


def test_ids_made_concurrently_are_unique():
    factory = ids.UlidFactory()
    batches = run_at_once(lambda: [factory.new() for _ in range(500)], threads=8)
    made = [made_id for batch in batches for made_id in batch]
    assert len(set(made)) == 4000


def test_timestamp_round_trips_through_the_id_and_iso_form():
    factory = ids.UlidFactory(clock=lambda: 1_763_900_000.5)
    post_id = factory.new()
    assert ids.is_ulid(post_id)
    assert ids.ulid_millis(post_id) == 1_763_900_000_500
    assert ids.iso_from_millis(1_763_900_000_500) == "2025-11-23T12:13:20.500Z"
    assert ids.millis_from_iso("2025-11-23T12:13:20.500Z") == 1_763_900_000_500


def test_smallest_id_of_a_millisecond_bounds_every_id_made_in_it():
    factory = ids.UlidFactory(clock=lambda: 2_000_000_000.0)
    made = factory.new()
    assert ids.smallest_ulid_at(2_000_000_000_000) <= made < ids.smallest_ulid_at(2_000_000_000_001)


def test_is_ulid_rejects_lookalikes():
    assert not ids.is_ulid("01ARZ3NDEKTSV4RRFFQ69G5FA")  # 25 chars
    assert not ids.is_ulid("01ARZ3NDEKTSV4RRFFQ69G5FAI")  # I is not Crockford
    assert not ids.is_ulid("81ARZ3NDEKTSV4RRFFQ69G5FAV")  # beyond 48 bits of time
    assert not ids.is_ulid(None)
    assert not ids.is_ulid("01ARZ3NDEKTSV4RRFFQ69G5FAV\n")  # `$` alone would let a final newline through
