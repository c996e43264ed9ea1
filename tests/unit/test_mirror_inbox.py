"""The mirror's S3 inbox over in-memory fakes: objects ingested in key
order and moved, malformed lines skipped and counted, unreadable objects
rejected with their reason, big objects resumed where a run stopped, and
posts created since an outage checked against the replay marks."""

from __future__ import annotations

import hashlib
import json

import pytest

from chalicelib.errors import StoreUnavailable
from chalicelib.mirror import inbox as inbox_module
from chalicelib.mirror import layout
from chalicelib.mirror.changes import MalformedChange
from chalicelib.mirror.inbox import MAX_LINE_BYTES, Inbox, decode_line, split_lines
from chalicelib.mirror.service import status_of
from devtools.fakes.mastodon import InMemoryFollowStore
from devtools.fakes.mirror import InMemoryInboxBucket, InMemoryMirrorState, InMemoryMirrorStore

CREATED = "2026-11-01T00:00:00.000Z"
NOW = 1_796_000_000.0  # 2026-11-30


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def account(name, suspended=False):
    return {"type": "account", "username": name, "display_name": name, "created_at": CREATED, "suspended": suspended}


def post(n, author="bob", created_at=CREATED):
    return {"type": "post", "id": f"p{n}", "author": author, "text": f"post {n}", "created_at": created_at,
            "in_reply_to": None, "deleted": False}  # fmt: skip


def jsonl(*documents) -> bytes:
    return "".join(json.dumps(document) + "\n" for document in documents).encode()


EXPORT = [
    account("alice"),
    account("bob"),
    {"type": "credential", "username": "alice", "token_sha256": digest("t"), "scopes": "read write", "revoked": False},
    {"type": "follow", "follower": "alice", "followee": "bob", "active": True},
    post(1),
    post(2),
]


class World:
    def __init__(self, batch_lines=500):
        self.bucket = InMemoryInboxBucket()
        self.follows = InMemoryFollowStore(max_following=100)
        self.store = InMemoryMirrorStore(self.follows)
        self.state = InMemoryMirrorState()
        self.inbox = Inbox(self.bucket, self.store, self.state, 7, clock=lambda: NOW, batch_lines=batch_lines)

    def put(self, name, body: bytes):
        self.bucket.put(f"mirror/inbox/{name}", body)

    def run(self, budget=60.0):
        return self.inbox.run(lambda: budget)

    def stored_post(self, n, created_at=CREATED):
        return self.store.post(layout.mirrored_post_id(created_at, f"p{n}"))

    def keys(self):
        return sorted(self.bucket.objects)


# -- lines --------------------------------------------------------------------------


def test_lines_are_split_across_chunks_with_the_offset_after_each():
    chunks = [b'{"a"', b":1}\n\n{", b'"b":2}\r\n', b'{"c":3}']
    assert list(split_lines(chunks, 100)) == [
        (b'{"a":1}', 108),
        (b"", 109),
        (b'{"b":2}\r', 118),
        (b'{"c":3}', 125),  # the last line needs no line break
    ]


def test_an_overlong_line_is_none_and_the_lines_after_it_are_whole():
    long_line = b"x" * (MAX_LINE_BYTES + 1)
    chunks = [long_line[:1000], long_line[1000:], b"\n", b"{}\n"]
    assert list(split_lines(chunks, 0)) == [(None, len(long_line) + 1), (b"{}", len(long_line) + 4)]
    # Within one chunk too, and at the end of the stream.
    assert [raw for raw, _ in split_lines([b"{}\n" + long_line], 0)] == [b"{}", None]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, f"line is longer than {MAX_LINE_BYTES} bytes"),
        (b'{"text": "caf\xe9"}', "line is not UTF-8"),
        (b"{not json", "line is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "line is not JSON"),  # too deep for json.loads
    ],
)
def test_an_undecodable_line_is_a_malformed_change_with_its_reason(raw, reason):
    decoded = decode_line(raw)
    assert isinstance(decoded, MalformedChange) and decoded.reason == reason


def test_blank_lines_are_nothing_and_a_bom_or_a_carriage_return_is_allowed():
    assert decode_line(b"  \r") is None
    assert decode_line('\ufeff{"a": 1}\r'.encode()) == {"a": 1}


# -- ingesting ------------------------------------------------------------------------


def test_an_object_is_applied_then_moved_to_done_under_the_same_name():
    world = World()
    world.put("2026-11-30.jsonl", jsonl(*EXPORT))
    report = world.run()
    assert (report.objects, report.lines, report.accounts, report.credentials, report.posts) == (1, 6, 2, 1, 2)
    assert report.stop == "empty"
    assert world.keys() == ["mirror/done/2026-11-30.jsonl"]
    assert world.store.grant(digest("t")).scopes == frozenset({"read", "write"})
    assert world.follows.following("alice") == ["bob"]
    assert world.stored_post(1).text == "post 1"
    # /status counts the inbox as it counts the feed; the feed's cursor is untouched.
    state = world.state.load()
    assert (status_of(state, NOW)["accounts"], status_of(state, NOW)["posts"], state.cursor) == (2, 2, None)
    assert state.inbox is None
    assert world.run().objects == 0


def test_objects_are_ingested_in_key_order():
    world = World()
    world.put("20261130T0100Z.jsonl", jsonl(account("alice", suspended=True)))
    world.put("20261130T0000Z.jsonl", jsonl(account("alice", suspended=False)))
    assert world.run().objects == 2
    assert world.store.account("alice").suspended is True


def test_a_malformed_line_is_skipped_and_counted_and_the_rest_applied():
    world = World()
    body = jsonl(post(1)) + b"{not json\n" + jsonl({"type": "post", "id": "p2"}) + b"caf\xe9\n" + jsonl(post(3))
    world.put("a.jsonl", body)
    report = world.run()
    assert (report.malformed, report.posts, report.objects, report.rejected) == (3, 2, 1, 0)
    assert world.state.load().malformed == 3
    assert world.stored_post(3) is not None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\n" + jsonl(post(1)), "not JSON Lines: its first line is not UTF-8"),
        (b"username,display_name\n" + jsonl(post(1)), "not JSON Lines: its first line is not JSON"),
        (json.dumps([post(1), post(2)]).encode(), "not JSON Lines: its first line is not a JSON object"),
        (
            b"\n\n" + b"x" * (MAX_LINE_BYTES + 1),
            f"not JSON Lines: its first line is longer than {MAX_LINE_BYTES} bytes",
        ),
    ],
)
def test_an_object_that_is_not_json_lines_is_rejected_with_its_reason_and_nothing_applied(body, reason):
    world = World()
    world.put("wrong.jsonl", body)
    report = world.run()
    assert (report.rejected, report.objects, report.posts) == (1, 0, 0)
    assert world.keys() == ["mirror/rejected/wrong.jsonl", "mirror/rejected/wrong.jsonl.reason.json"]
    assert world.bucket.objects["mirror/rejected/wrong.jsonl"] == body
    why = json.loads(world.bucket.objects["mirror/rejected/wrong.jsonl.reason.json"])
    assert why["reason"] == reason and why["size"] == len(body)
    assert world.stored_post(1) is None


def test_an_object_over_the_size_limit_is_rejected_unread(monkeypatch):
    monkeypatch.setattr(inbox_module, "MAX_OBJECT_BYTES", 300)
    world = World()
    world.put("big.jsonl", jsonl(*[post(n) for n in range(10)]))
    world.put("small.jsonl", jsonl(post(99)))
    report = world.run()
    assert (report.rejected, report.objects, report.posts) == (1, 1, 1)
    assert world.bucket.reads == [("mirror/inbox/small.jsonl", 0)]
    why = json.loads(world.bucket.objects["mirror/rejected/big.jsonl.reason.json"])
    assert why["reason"] == "larger than 300 bytes"


def room_for_checks(checks: int):
    """A time_left that has room the first `checks` times it is asked (the
    inbox asks before each object and after each batch), then none."""
    calls = []

    def time_left():
        calls.append(1)
        return 60.0 if len(calls) <= checks else 0.0

    return time_left


def test_an_object_not_finished_in_one_run_resumes_where_it_stopped():
    world = World(batch_lines=10)
    world.put("big.jsonl", jsonl(*[post(n) for n in range(25)]))
    first = world.inbox.run(room_for_checks(1))  # time for the first batch only
    assert (first.stop, first.posts, first.objects) == ("budget", 10, 0)
    position = world.state.load().inbox
    assert (position.key, position.line) == ("mirror/inbox/big.jsonl", 10)
    second = world.run()
    assert (second.posts, second.objects, second.lines) == (15, 1, 15)
    assert world.bucket.reads == [("mirror/inbox/big.jsonl", 0), ("mirror/inbox/big.jsonl", position.offset)]
    assert world.state.load().posts == 25 and world.state.load().inbox is None
    assert world.keys() == ["mirror/done/big.jsonl"]


def test_an_object_replaced_between_runs_starts_over():
    world = World(batch_lines=10)
    world.put("big.jsonl", jsonl(*[post(n) for n in range(25)]))
    world.inbox.run(room_for_checks(1))
    world.put("big.jsonl", jsonl(*[post(n) for n in range(100, 112)]))
    report = world.run()
    assert (report.posts, report.objects) == (12, 1)
    assert world.bucket.reads[-1] == ("mirror/inbox/big.jsonl", 0)


def test_an_object_whose_move_failed_is_applied_again_which_changes_nothing(monkeypatch):
    world = World()
    world.put("a.jsonl", jsonl(*EXPORT))
    move = world.bucket.move_to_done

    def unavailable(obj):
        raise StoreUnavailable("move mirror inbox object: SlowDown")

    monkeypatch.setattr(world.bucket, "move_to_done", unavailable)
    assert world.run().stop == "unavailable"
    assert world.keys() == ["mirror/inbox/a.jsonl"]
    monkeypatch.setattr(world.bucket, "move_to_done", move)
    again = world.run()
    assert (again.objects, again.posts) == (1, 2)
    assert world.store.account("bob") is not None and world.follows.following("alice") == ["bob"]
    assert world.keys() == ["mirror/done/a.jsonl"]


def test_posts_created_since_an_outage_began_are_checked_against_the_replay_marks():
    world = World()
    world.state.note_outage("2026-11-20T00:00:00.000Z")
    ours_at = "2026-11-21T00:00:00.000Z"
    world.store.replayed.update({"p1", "p2"})  # p1 is old: it cannot be ours, whatever the marks say
    world.put("a.jsonl", jsonl(post(1), post(2, created_at=ours_at), post(3, created_at=ours_at)))
    report = world.run()
    assert (report.posts, report.posts_ours) == (2, 1)
    assert world.stored_post(2, ours_at) is None
    assert world.stored_post(3, ours_at) is not None and world.stored_post(1) is not None


def test_an_empty_inbox_costs_one_listing_and_no_state_write():
    world = World()
    report = world.run()
    assert (report.objects, report.stop) == (0, "empty")
    assert world.state.load() == InMemoryMirrorState().load()


def test_a_run_takes_a_listing_of_objects_and_leaves_the_rest_to_the_next(monkeypatch):
    monkeypatch.setattr(inbox_module, "LIST_LIMIT", 2)
    world = World()
    for name in "abc":
        world.put(f"{name}.jsonl", jsonl(account(name * 3)))
    first = world.run()
    assert (first.objects, first.stop) == (2, "listed")
    second = world.run()
    assert (second.objects, second.stop) == (1, "empty")
    assert world.keys() == [f"mirror/done/{name}.jsonl" for name in "abc"]
