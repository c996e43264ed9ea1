"""The generic ingest adapter against the fake primary, a real HTTP server
on loopback: every outcome comes from a real answer (or a real silence)."""

from __future__ import annotations

import time

import pytest

from chalicelib.config import UpstreamSettings
from chalicelib.upstream.generic import GenericIngestUpstream
from chalicelib.upstream.port import Outcome, UpstreamDelete, UpstreamPost
from chalicelib.upstream.transport import BODY_EXCERPT_CHARS, DEFAULT_RETRY_AFTER_SECONDS
from tests.e2e.conftest import PRIMARY_TOKEN

pytestmark = pytest.mark.e2e

LIFEBOAT_ID = "01HZY0000000000000000000AA"


def make_post(**changes) -> UpstreamPost:
    fields = {
        "id": LIFEBOAT_ID,
        "author": "alice",
        "text": "hello from the lifeboat",
        "created_at": "2024-05-01T10:00:00.000Z",
    }
    fields.update(changes)
    return UpstreamPost(**fields)


def adapter_for(url: str, token: str = PRIMARY_TOKEN, timeout: float = 5.0) -> GenericIngestUpstream:
    return GenericIngestUpstream(url, token, timeout_seconds=timeout)


@pytest.fixture
def upstream(primary) -> GenericIngestUpstream:
    return adapter_for(primary.url)


def test_new_post_is_done_with_the_primarys_id_and_sends_the_contract_fields(primary, upstream):
    result = upstream.send(make_post())

    assert (result.outcome, result.upstream_id, result.status) == (Outcome.DONE, "1", 201)
    [received] = primary.received()
    assert (received.id, received.author, received.text) == (LIFEBOAT_ID, "alice", "hello from the lifeboat")
    assert received.created_at == "2024-05-01T10:00:00.000Z"
    assert received.in_reply_to is None
    assert received.idempotency_key == LIFEBOAT_ID


def test_clients_own_idempotency_key_is_sent_when_the_post_had_one(primary, upstream):
    upstream.send(make_post(idempotency_key="client-key-7"))

    assert [post.idempotency_key for post in primary.received()] == ["client-key-7"]


def test_a_reply_carries_its_parents_upstream_id(primary, upstream):
    parent = upstream.send(make_post())
    reply = upstream.send(make_post(id="01HZY0000000000000000000BB", in_reply_to=parent.upstream_id))

    assert reply.outcome is Outcome.DONE
    assert primary.received()[1].in_reply_to == parent.upstream_id


def test_resending_a_post_gets_the_same_id_and_stores_it_once(primary, upstream):
    first = upstream.send(make_post())
    second = upstream.send(make_post())

    assert (second.outcome, second.upstream_id, second.status) == (Outcome.DONE, first.upstream_id, 200)
    assert len(primary.received()) == 1
    assert primary.stats()["idempotent_hits"] == 1


def test_409_is_done_and_takes_the_id_from_the_body(primary, upstream):
    primary.configure(idempotent_status=409)
    first = upstream.send(make_post())

    second = upstream.send(make_post())

    assert (second.outcome, second.upstream_id, second.status) == (Outcome.DONE, first.upstream_id, 409)


def test_409_without_an_id_is_done_without_an_id(primary, upstream):
    primary.configure(force_status=409, force_body="")

    result = upstream.send(make_post())

    assert (result.outcome, result.upstream_id, result.status) == (Outcome.DONE, None, 409)


def test_answer_lost_after_storing_is_transient_and_the_resend_does_not_duplicate(primary, upstream):
    # Given the primary stores the post but the answer never comes back
    primary.configure(lose_answer_rate=1.0)
    lost = upstream.send(make_post())
    # When the replay job sends it again once the primary answers
    primary.configure(lose_answer_rate=0.0)
    resent = upstream.send(make_post())
    # Then it learns the id of the one stored copy
    assert lost.outcome is Outcome.TRANSIENT
    assert (resent.outcome, resent.upstream_id) == (Outcome.DONE, "1")
    assert len(primary.received()) == 1


def test_429_retry_after_in_seconds(primary, upstream):
    primary.configure(force_status=429, retry_after=7)

    result = upstream.send(make_post())

    assert (result.outcome, result.status, result.retry_after_seconds) == (Outcome.RETRY_AFTER, 429, 7.0)


def test_429_retry_after_as_an_http_date(primary, upstream):
    primary.configure(force_status=429, retry_after=120, retry_after_format="http-date")

    result = upstream.send(make_post())

    # An HTTP date has whole seconds, so the wait can come out a second short.
    assert result.outcome is Outcome.RETRY_AFTER
    assert 118.0 <= result.retry_after_seconds <= 120.0


def test_going_over_the_rate_limit_asks_to_retry_within_the_window(primary, upstream):
    primary.configure(rate_limit=2)

    results = [upstream.send(make_post(id=f"01HZY00000000000000000000{n}")) for n in range(5)]

    limited = [result for result in results if result.outcome is Outcome.RETRY_AFTER]
    assert limited, [result.outcome for result in results]
    assert all(result.status == 429 and 0 < result.retry_after_seconds <= 1 for result in limited)
    assert primary.stats()["rejected_429"] == len(limited)


def test_503_while_down_with_retry_after(primary, upstream):
    primary.configure(down=True, retry_after=30)

    result = upstream.send(make_post())

    assert (result.outcome, result.status, result.retry_after_seconds) == (Outcome.RETRY_AFTER, 503, 30.0)
    assert primary.received() == []


def test_503_without_retry_after_waits_the_default(primary, upstream):
    primary.configure(down=True)

    result = upstream.send(make_post())

    assert (result.outcome, result.retry_after_seconds) == (Outcome.RETRY_AFTER, DEFAULT_RETRY_AFTER_SECONDS)


def test_500_is_transient(primary, upstream):
    primary.configure(fail_rate=1.0)

    result = upstream.send(make_post())

    assert (result.outcome, result.status) == (Outcome.TRANSIENT, 500)
    assert primary.received() == []


def test_connection_refused_is_transient(closed_port):
    upstream = adapter_for(f"http://127.0.0.1:{closed_port}")

    result = upstream.send(make_post())

    assert (result.outcome, result.status) == (Outcome.TRANSIENT, None)


def test_a_primary_that_stalls_past_the_timeout_is_transient(primary):
    primary.configure(timeout_rate=1.0, stall_seconds=30)
    upstream = adapter_for(primary.url, timeout=0.3)
    started = time.monotonic()

    result = upstream.send(make_post())

    assert result.outcome is Outcome.TRANSIENT
    assert time.monotonic() - started < 5
    assert primary.received() == []


@pytest.mark.parametrize("status", [400, 403])
def test_other_client_errors_are_permanent_with_the_body(primary, upstream, status):
    primary.configure(force_status=status, force_body='{"error": "no such thing"}')

    result = upstream.send(make_post())

    assert (result.outcome, result.status, result.detail) == (Outcome.PERMANENT, status, '{"error": "no such thing"}')


def test_text_the_primary_refuses_is_permanent_422(upstream):
    result = upstream.send(make_post(text="x" * 501))

    assert (result.outcome, result.status) == (Outcome.PERMANENT, 422)
    assert "longer than 500" in result.detail


def test_a_reply_to_an_unknown_parent_is_permanent_422(upstream):
    result = upstream.send(make_post(in_reply_to="999"))

    assert (result.outcome, result.status) == (Outcome.PERMANENT, 422)


def test_a_wrong_token_is_unauthorized_not_a_dead_letter(primary):
    result = adapter_for(primary.url, token="not-the-token").send(make_post())

    assert (result.outcome, result.status) == (Outcome.UNAUTHORIZED, 401)


def test_the_body_excerpt_is_cut_short(primary, upstream):
    primary.configure(force_status=400, force_body="e" * 5000)

    result = upstream.send(make_post())

    assert result.detail == "e" * BODY_EXCERPT_CHARS


@pytest.mark.parametrize("reset_format", ["delta", "epoch", "iso"])
def test_rate_limit_headers_are_parsed_in_every_reset_format(primary, upstream, reset_format):
    primary.configure(rate_limit=5, rate_limit_reset_format=reset_format)

    result = upstream.send(make_post())

    assert result.outcome is Outcome.DONE
    assert (result.rate_limit.limit, result.rate_limit.remaining) == (5, 4)
    # The epoch format rounds up to a whole second, so allow one more.
    assert 0 <= result.rate_limit.reset_after_seconds <= 2


def test_no_rate_limit_headers_means_no_rate_limit_info(upstream):
    assert upstream.send(make_post()).rate_limit is None


def test_the_token_never_shows_in_reprs_or_results(primary, upstream):
    # Given a primary that echoes the token back in its error body
    primary.configure(force_status=400, force_body=f"bad request, you sent Bearer {PRIMARY_TOKEN}")
    settings = UpstreamSettings(url=primary.url, token=PRIMARY_TOKEN)

    result = upstream.send(make_post())

    for text in (repr(upstream), str(upstream), repr(result), str(result), result.detail, repr(settings)):
        assert PRIMARY_TOKEN not in text
    assert result.detail == "bad request, you sent Bearer [redacted]"


def test_health_is_true_while_the_primary_answers_2xx(upstream):
    assert upstream.check_health() is True


def test_health_is_false_while_the_primary_is_down(primary, upstream):
    primary.configure(down=True)

    assert upstream.check_health() is False


def test_health_is_false_when_nothing_listens(closed_port):
    assert adapter_for(f"http://127.0.0.1:{closed_port}").check_health() is False


def test_health_is_false_when_the_primary_stalls(primary):
    primary.configure(timeout_rate=1.0, stall_seconds=30)

    assert adapter_for(primary.url, timeout=0.3).check_health() is False


def test_from_settings_talks_to_the_configured_paths(primary):
    env = {"UPSTREAM_URL": primary.url + "/", "UPSTREAM_TOKEN": PRIMARY_TOKEN}
    upstream = GenericIngestUpstream.from_settings(UpstreamSettings.from_env(env))

    assert upstream.check_health() is True
    assert upstream.send(make_post()).outcome is Outcome.DONE


def test_a_key_the_author_used_on_the_primary_for_another_post_is_not_taken_for_this_one(primary, upstream):
    # Given the author posted something else on the primary itself under the
    # key their client later gave this post,
    direct = primary.add_direct_post("alice", "something else entirely", key="client-key-7")

    # when the post is sent, and sent again (a retry),
    first = upstream.send(make_post(idempotency_key="client-key-7"))
    again = upstream.send(make_post(idempotency_key="client-key-7"))

    # then it is stored once, under the Lifeboat id as the key, beside the other post.
    assert first.outcome is Outcome.DONE and first.upstream_id != direct
    assert again.upstream_id == first.upstream_id
    [received] = primary.received()
    assert (received.upstream_id, received.text, received.idempotency_key) == (
        first.upstream_id,
        "hello from the lifeboat",
        LIFEBOAT_ID,
    )


def test_the_authors_own_retry_of_this_post_on_the_primary_is_this_post(primary, upstream):
    # The client sent the same post to the primary itself, with its key: that is delivered.
    direct = primary.add_direct_post("alice", "hello from the\nlifeboat ", key="client-key-7")

    result = upstream.send(make_post(idempotency_key="client-key-7"))

    assert (result.outcome, result.upstream_id) == (Outcome.DONE, direct)
    assert primary.received() == []


def test_another_post_under_the_lifeboat_id_itself_is_a_dead_letter_with_the_reason(primary, upstream):
    direct = primary.add_direct_post("alice", "something else entirely", key=LIFEBOAT_ID)

    result = upstream.send(make_post())

    assert (result.outcome, result.status) == (Outcome.PERMANENT, 200)
    assert result.detail == f"the primary answered with another post ({direct}) for this post's Idempotency-Key"
    assert primary.received() == []


# -- deleting the primary's copy --------------------------------------------------


def copy_of(upstream_id: str | None) -> UpstreamDelete:
    return UpstreamDelete(id=LIFEBOAT_ID, author="alice", upstream_id=upstream_id)


def test_a_delete_removes_the_copy_and_a_repeat_finds_it_gone_which_is_done(primary, upstream):
    sent = upstream.send(make_post())

    first = upstream.delete(copy_of(sent.upstream_id))
    again = upstream.delete(copy_of(sent.upstream_id))

    assert (first.outcome, first.status) == (Outcome.DONE, 204)
    assert (again.outcome, again.status) == (Outcome.DONE, 404)
    assert [(gone.upstream_id, gone.id) for gone in primary.deleted()] == [(sent.upstream_id, LIFEBOAT_ID)]
    assert primary.stats()["delete_requests"] == 2


def test_a_delete_whose_answer_is_lost_is_transient_and_done_when_repeated(primary, upstream):
    sent = upstream.send(make_post())
    primary.configure(lose_answer_rate=1.0)
    lost = upstream.delete(copy_of(sent.upstream_id))
    primary.configure(lose_answer_rate=0.0)

    repeated = upstream.delete(copy_of(sent.upstream_id))

    assert lost.outcome is Outcome.TRANSIENT
    assert (repeated.outcome, repeated.status) == (Outcome.DONE, 404)
    assert len(primary.deleted()) == 1


@pytest.mark.parametrize(
    ("changes", "outcome", "status"),
    [
        ({"force_status": 200, "force_body": "{}"}, Outcome.DONE, 200),
        ({"force_status": 409}, Outcome.PERMANENT, 409),
        ({"force_status": 403}, Outcome.PERMANENT, 403),
        ({"force_status": 429, "retry_after": 7}, Outcome.RETRY_AFTER, 429),
        ({"down": True}, Outcome.RETRY_AFTER, 503),
        ({"fail_rate": 1.0}, Outcome.TRANSIENT, 500),
    ],
)
def test_delete_answers_are_classified_as_for_ingest_but_200_204_404(primary, upstream, changes, outcome, status):
    sent = upstream.send(make_post())
    primary.configure(**changes)

    result = upstream.delete(copy_of(sent.upstream_id))

    assert (result.outcome, result.status) == (outcome, status)


def test_a_delete_with_a_refused_token_is_unauthorized(primary, upstream):
    sent = upstream.send(make_post())

    result = adapter_for(primary.url, token="not-the-token").delete(copy_of(sent.upstream_id))

    assert (result.outcome, result.status) == (Outcome.UNAUTHORIZED, 401)
    assert primary.deleted() == []


def test_a_copy_whose_upstream_id_was_never_given_cannot_be_deleted_and_nothing_is_sent(primary, upstream):
    result = upstream.delete(copy_of(None))

    assert result.outcome is Outcome.PERMANENT and "never gave an id" in result.detail
    assert primary.stats()["delete_requests"] == 0


def test_an_upstream_id_is_one_path_segment(primary, upstream):
    upstream.send(make_post())

    result = upstream.delete(copy_of("../1"))

    assert (result.outcome, result.status) == (Outcome.DONE, 404)
    assert primary.deleted() == []
