"""The web client's delivery state, as the Status entity's `lifeboat` object
carries it: every post state a timeline can show has one."""

from __future__ import annotations

import pytest

from chalicelib.core.models import FAILED, MIRRORED, PENDING, REPLAYED, SENDING, Post
from chalicelib.mastodon.entities import render_delivery

POST_ID = "01HZY3N3M9D0S5K6QW7E8R9T0A"


def post(state: str, reason: str | None = None) -> Post:
    return Post(POST_ID, "alice", "hi", "2026-12-03T00:00:00.000Z", state=state, failure_reason=reason)


@pytest.mark.parametrize(
    ("state", "delivery"),
    [(PENDING, "waiting"), (SENDING, "waiting"), (REPLAYED, "delivered"), (MIRRORED, "delivered")],
)
def test_each_state_a_timeline_shows_has_a_delivery_state(state, delivery):
    assert render_delivery(post(state)) == {"post_id": POST_ID, "delivery": delivery, "failure_reason": None}


def test_a_dead_letter_is_failed_with_the_primarys_reason():
    assert render_delivery(post(FAILED, "422: text too long")) == {
        "post_id": POST_ID,
        "delivery": "failed",
        "failure_reason": "422: text too long",
    }


def test_a_reason_left_from_an_earlier_failure_is_not_shown_once_delivered():
    assert render_delivery(post(REPLAYED, "503: busy"))["failure_reason"] is None
