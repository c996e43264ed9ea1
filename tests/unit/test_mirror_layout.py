from chalicelib.core import ids
from chalicelib.mirror import layout


def test_mirrored_ids_sort_by_created_at_and_depend_on_the_primary_id():
    early = layout.mirrored_post_id("2026-12-01T00:00:00.001Z", "zzz")
    late = layout.mirrored_post_id("2026-12-01T00:00:00.002Z", "aaa")
    assert ids.is_ulid(early) and early < late
    assert ids.ulid_millis(early) == ids.millis_from_iso("2026-12-01T00:00:00.001Z")
    assert layout.mirrored_post_id("2026-12-01T00:00:00.001Z", "zzz") == early
    assert layout.mirrored_post_id("2026-12-01T00:00:00.001Z", "zzy") != early


def test_a_mirrored_post_expires_after_the_retention():
    assert layout.expires_at("1970-01-02T00:00:00.000Z", 7) == 8 * 86_400
