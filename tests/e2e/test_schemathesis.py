"""Schema-driven fuzzing: the local stack against its contract, docs/openapi.yaml.

schemathesis sends every native operation valid and invalid requests: the
coverage cases (boundaries, missing and wrong parameters, undocumented
methods, wrong content types) and random fuzzing, then stateful sequences
along the contract's links. Every check is on: no 5xx; only documented
status codes, content types and headers; bodies that match their schemas;
valid requests accepted and invalid ones refused; 405 for undocumented
methods; authentication never ignored.

Bounded and repeatable: a fixed seed and MAX_EXAMPLES per operation. The
summary (cases per operation and mode, answers seen) is printed at the end.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from tests.e2e.stack import http, start_stack, wait_for

pytestmark = pytest.mark.e2e

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
SEED = 20261201
MAX_EXAMPLES = 25
STATEFUL_SCENARIOS = 20
STATEFUL_STEPS = 8
AUTHOR = "fuzz_author"
# The fuzzer posts far more than POSTS_PER_MINUTE (30) allows: keep its posts
# on the write path instead of the 429 (tests/functional/test_rate_limit.py).
STACK_ENV = {"POSTS_PER_MINUTE": "100000"}
FUZZ_SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

# Undocumented methods sent to every path (schemathesis's default set). The
# ones Chalice's local server does not route are probed by
# test_methods_the_local_server_does_not_route_are_refused_too instead:
# their failure would stop schemathesis's other cases for every operation.
PROBED_METHODS = {"get", "put", "post", "delete", "options", "patch", "trace", "query"}
NOT_ROUTED_LOCALLY = {"trace", "query"}

schemathesis.serializer.alias("text/csv", "text/plain")
schema = schemathesis.openapi.from_path(
    CONTRACT,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "request-timeout": 30,
            "generation": {"max-examples": MAX_EXAMPLES, "mode": "all"},
            "phases": {
                "coverage": {"unexpected-methods": sorted(PROBED_METHODS - NOT_ROUTED_LOCALLY)},
                # Only the contract's links, which lead to what the sequence itself
                # made: an inferred link (a timeline's ids, say) names whatever the
                # stack holds by then, so a replayed sequence would not repeat.
                "stateful": {"inference": {"algorithms": []}},
            },
        }
    ),
)


@schema.auth(refresh_interval=None)
class SchemeTokens:
    """The token of the scheme an operation declares. Cases are built when
    tests are collected, before the stack (and the user's token) exists, so
    they carry the scheme's name and `World.prepare` puts the token in.
    schemathesis still sends no token, or a wrong one, to check they fail."""

    def get(self, case, context):
        schemes = [name for requirement in case.operation.definition.raw.get("security", []) for name in requirement]
        return schemes[0] if schemes else None

    def set(self, case, scheme, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {{{scheme}}}"}


class World:
    """What the stack holds before fuzzing starts, and what a schema cannot
    say: which cursors this API issued, which posts exist, which keys are new."""

    def __init__(self, stack) -> None:
        self.stack = stack
        self.author_token = stack.new_user(AUTHOR)
        # Another user's post: the fuzzer, posting as AUTHOR, cannot delete
        # it (it gets 403), so it stays a parent to reply to.
        self.parent_id = self._post("a post to reply to", stack.new_user("fuzz_other"))
        self.cursor = stack.call("GET", "/timeline/public?limit=1").body["next_cursor"]
        self._make_dead_letter()
        self.tokens = {"userToken": self.author_token, "adminToken": stack.admin_token}
        self._made = 0

    def _post(self, text: str, token: str) -> str:
        reply = self.stack.call("POST", "/posts", {"text": text}, token=token)
        assert reply.status == 201, reply.body
        return reply.body["id"]

    def _make_dead_letter(self) -> None:
        # The fake primary refuses everything for a moment: one post becomes a
        # dead letter, so the dead-letter list has an item to check.
        control = f"{self.stack.primary_url}/control"
        assert http("POST", control, {"force_status": 422}).status == 200
        post_id = self._post("the primary will refuse this one", self.author_token)
        wait_for(lambda: self.stack.call("GET", f"/posts/{post_id}").body["state"] == "failed", timeout=60)
        assert http("POST", control, {"force_status": None}).status == 200

    def prepare(self, case) -> None:
        """The scheme's real token in place of its name; then `make_realistic`."""
        authorization = (case.headers or {}).get("Authorization", "")
        for scheme, token in self.tokens.items():
            if authorization == f"Bearer {{{scheme}}}":
                case.headers["Authorization"] = f"Bearer {token}"
        self.make_realistic(case)

    def make_realistic(self, case) -> None:
        """A valid request in schemathesis's sense may still name a cursor
        this API never issued or a parent post that does not exist, reuse an
        Idempotency-Key for another text, or take a username that is taken:
        the API rightly refuses those, and a schema cannot say so. Positive
        cases get real and fresh ones instead (fresh also keeps the stateful
        sequences repeatable: the same steps get the same answers)."""
        if case.meta is None or not case.meta.generation.mode.is_positive:
            return
        if case.query and "cursor" in case.query:
            case.query["cursor"] = self.cursor
        if case.operation.label == "POST /posts" and isinstance(case.body, dict):
            if case.body.get("in_reply_to") is not None:
                case.body["in_reply_to"] = self.parent_id
            key = (case.headers or {}).get("Idempotency-Key")
            if key is not None:
                case.headers["Idempotency-Key"] = self._fresh(key, 255, "~")
        if case.operation.label == "POST /admin/users" and isinstance(case.body, dict):
            case.body["username"] = self._fresh(case.body["username"], 30, "_")

    def _fresh(self, value: str, max_length: int, separator: str) -> str:
        self._made += 1
        suffix = f"{separator}{self._made}"
        return value[: max_length - len(suffix)] + suffix


class Tally:
    """Cases sent, per operation and generation mode, and the answers."""

    def __init__(self) -> None:
        self.cases: collections.Counter = collections.Counter()
        self.statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.started = time.monotonic()

    def record(self, case, response, phase: str) -> None:
        mode = case.meta.generation.mode.value if case.meta else "positive"
        self.cases[case.operation.label, f"{phase} {mode}"] += 1
        self.statuses[case.operation.label][response.status_code] += 1

    def total(self, phase: str = "") -> int:
        return sum(n for (_, kind), n in self.cases.items() if kind.startswith(phase))

    def summary(self) -> list[str]:
        seconds = time.monotonic() - self.started
        lines = [f"schemathesis: {self.total()} cases in {seconds:.0f} s (seed {SEED}, max_examples {MAX_EXAMPLES})"]
        for label in sorted(self.statuses):
            kinds = ", ".join(f"{kind} {n}" for (name, kind), n in sorted(self.cases.items()) if name == label)
            answers = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses[label].items()))
            lines.append(f"  {label}: {kinds}; answers {answers}")
        return lines


@contextlib.contextmanager
def explained_by_the_stack_log(stack):
    """On a failure, add the stack's last logged errors: a 500's cause is
    in the server's log, not in its answer."""
    seen = len(stack.output)
    try:
        yield
    except Exception as failure:
        for line in [line for line in stack.output[seen:] if '"level":"ERROR"' in line][-3:]:
            record = json.loads(line)
            cause = (record.get("exception") or "").strip().splitlines()[-1:]
            failure.add_note(f"stack log: {record.get('message')} {cause}")
        raise


@pytest.fixture(scope="module")
def stack():
    running = start_stack(STACK_ENV)
    yield running
    try:
        running.stop()
    finally:
        if running.process.poll() is None:  # it did not stop in time: that failure stands, the process goes
            os.killpg(running.process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def world(stack) -> World:
    return World(stack)


@pytest.fixture(scope="module")
def tally():
    return Tally()


def test_the_stack_serves_this_contract(stack):
    assert stack.call("GET", "/openapi.json").body == schema.raw_schema


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_keeps_its_contract(case, stack, world, tally):
    world.prepare(case)
    with explained_by_the_stack_log(stack):
        response = case.call_and_validate(base_url=stack.base_url)
    tally.record(case, response, "single")


def test_sequences_along_the_links_keep_the_contract(stack, world, tally):
    class Sequences(schema.as_state_machine()):
        def before_call(self, case):
            world.prepare(case)

        def get_call_kwargs(self, case):
            return {"base_url": stack.base_url}

        def after_call(self, response, case):
            super().after_call(response, case)
            tally.record(case, response, "stateful")

    # No shrinking: each shrink step replays against a stack the earlier steps
    # changed. A failure is reported as found (Hypothesis replays it once).
    bounded = settings(
        FUZZ_SETTINGS,
        max_examples=STATEFUL_SCENARIOS,
        stateful_step_count=STATEFUL_STEPS,
        phases=[Phase.explicit, Phase.generate],
    )
    with explained_by_the_stack_log(stack):
        Sequences.run(settings=bounded)
    assert tally.total("stateful") > 0


def test_methods_the_local_server_does_not_route_are_refused_too(stack):
    answers = {}
    for path, method in itertools.product(schema.raw_schema["paths"], sorted(NOT_ROUTED_LOCALLY)):
        concrete = path.replace("{post_id}", "01ARZ3NDEKTSV4RRFFQ69G5FAV").replace("{username}", AUTHOR)
        request = urllib.request.Request(stack.base_url + concrete, method=method.upper())
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                answers[method, path] = (reply.status, None)
        except urllib.error.HTTPError as refused:
            answers[method, path] = (refused.code, refused.headers.get("Allow"))
    wrong = {probe: answer for probe, answer in answers.items() if answer[0] != 405 or not answer[1]}
    assert not wrong, f"expected 405 with Allow, got {wrong}"


def test_every_operation_was_exercised(tally, capsys):
    # Runs last in this module: a contract nobody sent requests to proves nothing.
    with capsys.disabled():
        print("\n" + "\n".join(tally.summary()))
    operations = {result.ok().label for result in schema.get_all_operations()}
    assert operations == set(tally.statuses), sorted(operations ^ set(tally.statuses))
