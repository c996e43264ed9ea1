"""Home timelines on the in-memory store: what the fan-out writes for posts,
deletes, follows and unfollows, the hybrid for very followed accounts, the
trim, that stream records delivered twice and out of order end in the same
homes, and how a page merges its sources."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from chalicelib.core import ids
from chalicelib.core.models import DELETED, PENDING, Post
from chalicelib.home.fanout import HomeFanout
from chalicelib.home.layout import TRIM_EVERY, Entry, trim_due
from chalicelib.home.timeline import BACKFILLING_READ_MAX, READ_AHEAD, HomeTimeline
from chalicelib.posts.store import Page
from chalicelib.stream.consumer import StreamConsumer
from devtools.fakes.home import InMemoryHomeStore
from devtools.fakes.stream import InMemoryStreamStore
from tests.unit.test_stream_consumer import history, interleave, post

MAX_FOLLOWERS = 3
_ids = ids.UlidFactory()


def new_post(author: str, **changes) -> Post:
    post_id = _ids.new()
    return Post(id=post_id, author=author, text=f"{author} {post_id}", created_at="x", **changes)


@pytest.fixture
def store():
    return InMemoryHomeStore()


def fanout(store, max_items: int = 800, trim_every: int = TRIM_EVERY) -> HomeFanout:
    return HomeFanout(store, MAX_FOLLOWERS, max_items, trim_every)


def home(store, owner: str) -> list[str]:
    return [entry.post_id for entry in store.all_entries(owner)]


def posted(store, fan: HomeFanout, author: str) -> Post:
    made = new_post(author)
    store.add_post(made)
    fan.on_post_created(made)
    return made


def test_a_post_goes_to_its_author_and_every_follower_only(store):
    store.follow("bob", "alice")
    store.follow("carol", "alice")
    store.follow("alice", "dora")
    made = posted(store, fanout(store), "alice")

    assert {owner for owner, entries in store.homes.items() if made.id in entries} == {"alice", "bob", "carol"}


def test_a_delete_takes_the_post_out_of_every_home_and_again_changes_nothing(store):
    fan = fanout(store)
    store.follow("bob", "alice")
    store.follow("carol", "alice")
    kept, gone = posted(store, fan, "alice"), posted(store, fan, "alice")
    fan.on_post_deleted(gone)
    fan.on_post_deleted(gone)

    for owner in ("alice", "bob", "carol"):
        assert home(store, owner) == [kept.id]


def test_a_follow_backfills_the_newest_posts_and_an_unfollow_takes_them_out(store):
    fan = fanout(store, max_items=3)
    dora = posted(store, fan, "dora")
    alices = [posted(store, fan, "alice") for _ in range(5)]
    store.follow("bob", "dora")
    fan.on_followed("bob", "dora")
    store.follow("bob", "alice")
    fan.on_followed("bob", "alice")
    fan.on_followed("bob", "alice")

    assert home(store, "bob") == [post.id for post in reversed(alices[2:])]  # the newest 3, dora's trimmed
    store.unfollow("bob", "alice")
    fan.on_unfollowed("bob", "alice")
    fan.on_unfollowed("bob", "alice")
    assert home(store, "bob") == []
    assert home(store, "dora") == [dora.id]


@dataclasses.dataclass
class CallOrder(InMemoryHomeStore):
    """The in-memory store, noting the order of the fan-out's writes."""

    writes: list[str] = dataclasses.field(default_factory=list)
    put: list[Entry] = dataclasses.field(default_factory=list)

    def put_entries(self, entries):
        self.writes.append("put")
        self.put += entries
        super().put_entries(entries)

    def delete_entries(self, entries):
        self.writes.append("delete")
        super().delete_entries(entries)

    def settle_follow(self, owner, followee):
        self.writes.append("settle follow")
        super().settle_follow(owner, followee)

    def settle_unfollow(self, owner, followee):
        self.writes.append("settle unfollow")
        super().settle_unfollow(owner, followee)


def test_a_follow_made_for_the_home_at_once_is_settled_only_after_its_backfill():
    store = CallOrder()
    fan = fanout(store, max_items=800)
    posted(store, fan, "alice")
    posted(store, fan, "carol")
    store.writes.clear()
    store.follow("bob", "alice", home_at_once=True)
    store.follow("bob", "carol", home_at_once=True)

    fan.on_followed("bob", "alice", settles=True)
    fan.on_followed("bob", "carol")  # an edge written without the flag

    assert store.writes == ["put", "settle follow", "put"]
    assert store.backfilling["bob"] == {"carol"}


def test_a_backfill_into_a_full_home_writes_only_the_entries_that_stay():
    store = CallOrder()
    fan = fanout(store, max_items=3)
    olds = [posted(store, fan, "old") for _ in range(4)]  # older than all of bob's home
    store.follow("bob", "alice")
    alices = [posted(store, fan, "alice") for _ in range(3)]
    fan.on_followed("bob", "alice")
    store.writes.clear()

    store.follow("bob", "old")
    fan.on_followed("bob", "old")  # nothing of old's is among bob's newest 3
    assert store.writes == []
    assert home(store, "bob") == [post.id for post in reversed(alices)]

    newer = posted(store, fan, "carol")  # carol's own home: one put
    store.follow("bob", "carol")
    store.put.clear()
    fan.on_followed("bob", "carol")
    assert store.put == [Entry("bob", newer.id, "carol")]
    assert home(store, "bob") == [newer.id, alices[2].id, alices[1].id]
    assert len(olds) == 4 and all(post.id < alices[0].id for post in olds)


def test_an_unfollow_is_settled_after_its_entries_are_gone_flagged_or_not():
    store = CallOrder()
    fan = fanout(store)
    posted(store, fan, "alice")
    store.follow("bob", "alice")
    fan.on_followed("bob", "alice")
    store.unfollow("bob", "alice", home_at_once=True)
    store.writes.clear()

    fan.on_unfollowed("bob", "alice")

    assert store.writes == ["delete", "settle unfollow"]
    assert (home(store, "bob"), store.unfollowing["bob"]) == ([], set())


def test_an_account_past_the_follower_cap_is_merged_at_read_by_every_follower(store):
    fan = fanout(store)
    before = posted(store, fan, "star")
    for n in range(MAX_FOLLOWERS + 1):
        store.follow(f"fan{n}", "star")
    fan.on_followed("fan0", "star")  # the follow past the cap

    assert store.flagged == {"star"}
    assert all(store.merged[f"fan{n}"] == {"star"} for n in range(MAX_FOLLOWERS + 1))
    assert store.merged["star"] == {"star"}
    after = posted(store, fan, "star")
    assert not any(after.id in entries for entries in store.homes.values())
    store.follow("late", "star")
    fan.on_followed("late", "star")
    assert store.merged["late"] == {"star"} and home(store, "late") == []
    assert home(store, "star") == [before.id]  # fanned out before the cap: left to the trim


def test_a_follower_gone_before_the_merge_is_not_merged(store):
    fan = fanout(store)
    for n in range(MAX_FOLLOWERS + 1):
        store.follow(f"fan{n}", "star")
    followers = store.followers_of("star")
    store.unfollow("fan1", "star")  # between the merge's read of the followers and its write
    fan._merge_at_read("star", followers)

    assert "fan1" not in store.merged
    assert store.merged["fan2"] == {"star"}


def test_a_post_past_the_cap_merges_its_author_too(store):
    fan = fanout(store)
    for n in range(MAX_FOLLOWERS + 1):
        store.follow(f"fan{n}", "star")
    posted(store, fan, "star")

    assert store.flagged == {"star"} and not any(store.homes.values())


def test_the_trim_keeps_the_newest_items_every_time_it_is_due(store):
    fan = fanout(store, max_items=3, trim_every=1)
    made = [posted(store, fan, "alice") for _ in range(6)]
    assert home(store, "alice") == [post.id for post in reversed(made[3:])]


def test_a_sampled_trim_bounds_each_home():
    store = InMemoryHomeStore()
    fan = fanout(store, max_items=100)
    made = [posted(store, fan, "alice") for _ in range(1000)]
    due = [trim_due("alice", post.id) for post in made]

    assert 5 <= sum(due) <= 60  # about one in TRIM_EVERY
    last_trim = max(n for n, is_due in enumerate(due) if is_due)
    assert len(home(store, "alice")) == 100 + (len(made) - 1 - last_trim)
    assert home(store, "alice") == [post.id for post in reversed(made)][: len(home(store, "alice"))]


# -- redelivery: the stream's records twice, and out of order across items -------------------


def edge(follower: str, followee: str, followed: bool) -> dict:
    keys = {"PK": {"S": f"FOLLOWING#{follower}"}, "SK": {"S": followee}}
    image = {**keys, "follower": {"S": follower}, "followee": {"S": followee}}
    body = {"Keys": keys, ("NewImage" if followed else "OldImage"): image}
    return {"eventID": f"edge-{follower}-{followee}-{followed}", "dynamodb": body}


def a_world() -> tuple[InMemoryHomeStore, list[list[dict]]]:
    """The graph and posts as they end, and each item's records in its order."""
    store = InMemoryHomeStore()
    store.follow("bob", "alice")
    store.follow("carol", "alice")
    for n, author, state in ((1, "alice", PENDING), (2, "alice", DELETED), (3, "bob", PENDING)):
        store.add_post(post(n, author, state))
    items = [
        history(PENDING, n=1),
        history(PENDING, DELETED, n=2),
        history(PENDING, n=3, author="bob"),
        [edge("bob", "alice", True)],
        [edge("carol", "alice", True)],
        [edge("dora", "alice", True), edge("dora", "alice", False)],
    ]
    return store, items


def homes_after(batches: list[list[dict]]) -> dict[str, set[str]]:
    store, _ = a_world()
    consumer = StreamConsumer(InMemoryStreamStore(), fanout(store))
    for batch in batches:
        consumer.handle(batch)
    return {owner: set(entries) for owner, entries in store.homes.items() if entries}


def test_records_twice_and_out_of_order_end_in_the_same_homes():
    _, items = a_world()
    in_order = list(itertools.chain.from_iterable(items))
    expected = homes_after([in_order])

    assert expected == {"alice": {post(1).id}, "bob": {post(1).id, post(3).id}, "carol": {post(1).id}}
    assert homes_after([in_order, in_order]) == expected
    for seed in range(20):
        shuffled = interleave(items, random.Random(seed))
        assert homes_after([shuffled[:4], shuffled, shuffled[4:]]) == expected, seed


# -- a page -----------------------------------------------------------------------------------


def authors_window_of(store):
    def authors_window(authors, lowest, highest, limit, oldest_first):
        found = [p for p in store.posts.values() if p.author in authors and lowest <= p.id <= highest]
        found.sort(key=lambda p: p.id, reverse=not oldest_first)
        return Page(sorted(found[:limit], key=lambda p: p.id, reverse=True), len(found) > limit)

    return authors_window


def timeline(store) -> HomeTimeline:
    return HomeTimeline(store, authors_window_of(store))


def below(shown: Post) -> str:
    return ids.ulid_from_value(ids.ulid_value(shown.id) - 1)


def page_ids(page) -> list[str]:
    return [post.id for post in page.posts]


def test_a_page_merges_the_home_with_the_accounts_merged_at_read(store):
    fan = fanout(store)
    store.follow("bob", "alice")
    store.follow("bob", "star")
    store.merged["bob"] = {"star"}
    store.flagged.add("star")
    made = [posted(store, fan, author) for author in ("alice", "star", "alice", "star", "alice")]

    page = timeline(store).page("bob", ids.MIN_ULID, ids.MAX_ULID, 3)
    assert page_ids(page) == [post.id for post in reversed(made)][:3] and page.has_more
    rest = timeline(store).page("bob", ids.MIN_ULID, below(made[2]), 10)
    assert page_ids(rest) == [made[1].id, made[0].id] and not rest.has_more
    oldest = timeline(store).page("bob", ids.MIN_ULID, ids.MAX_ULID, 2, oldest_first=True)
    assert page_ids(oldest) == [made[1].id, made[0].id] and oldest.has_more


def test_a_page_stops_where_a_source_stopped_so_the_next_one_skips_nothing(store):
    fan = fanout(store)
    store.follow("bob", "alice")
    store.merged["bob"] = {"star"}
    stars = [new_post("star") for _ in range(3)]  # all older than alice's
    for star in stars:
        store.add_post(star)
    alices = [posted(store, fan, "alice") for _ in range(10)]
    for gone in alices[3:]:
        store.add_post(dataclasses.replace(gone, state=DELETED))  # their entries not yet taken out
    read = timeline(store).page("bob", ids.MIN_ULID, ids.MAX_ULID, 2)
    assert page_ids(read) == [alices[2].id] and read.has_more  # not stars[2]: alices[1] may come first
    seen, highest = [], ids.MAX_ULID
    while True:
        read = timeline(store).page("bob", ids.MIN_ULID, highest, 2)
        seen += page_ids(read)
        if not read.has_more:
            break
        highest = below(read.posts[-1])
    assert seen == [post.id for post in reversed(stars + alices[:3])]


def test_a_few_deleted_posts_do_not_make_a_page_short_nor_show(store):
    fan = fanout(store)
    made = [posted(store, fan, "alice") for _ in range(8)]
    for gone in made[-READ_AHEAD:]:
        store.add_post(dataclasses.replace(gone, state=DELETED))  # deleted, entries not yet taken out

    page = timeline(store).page("alice", ids.MIN_ULID, ids.MAX_ULID, 2)
    assert page_ids(page) == [made[2].id, made[1].id] and page.has_more
    assert store.requests > 0


def test_a_page_costs_two_requests_without_accounts_merged_at_read(store):
    fan = fanout(store)
    for n in range(200):
        store.follow("reader", f"author{n}")
        posted(store, fan, f"author{n}")
    store.requests = 0
    timeline(store).page("reader", ids.MIN_ULID, ids.MAX_ULID, 20)
    assert store.requests == 2


def test_a_burst_of_follows_not_yet_backfilled_reads_only_so_many_of_them(store):
    fan = fanout(store)
    followed = [f"author{n:02}" for n in range(BACKFILLING_READ_MAX + 5)]
    for author in followed:
        posted(store, fan, author)  # no followers yet: in its own home only
        store.follow("reader", author, home_at_once=True)
    windows = []
    inner = authors_window_of(store)
    reads = HomeTimeline(store, lambda authors, *rest: windows.append(authors) or inner(authors, *rest))

    page = reads.page("reader", ids.MIN_ULID, ids.MAX_ULID, 40)

    assert windows == [followed[:BACKFILLING_READ_MAX]]
    assert {post.author for post in page.posts} == set(followed[:BACKFILLING_READ_MAX])


def test_a_switch_cut_short_goes_on_where_it_stopped(store):
    fan = fanout(store)
    for n in range(MAX_FOLLOWERS + 3):
        store.follow(f"fan{n}", "star")
    followers = store.followers_of("star")
    for follower in followers[:4]:
        store.add_merged(follower, "star", while_following=True)  # an earlier delivery's share
    writes = []
    add_merged = store.add_merged
    store.add_merged = lambda owner, author, **kw: writes.append(owner) or add_merged(owner, author, **kw)

    fan.on_followed("fan0", "star")
    assert writes == ["star", *followers[4:]]
    assert all(store.merged[follower] == {"star"} for follower in followers)
