"""The README's warm-standby walkthrough, run as written: its shell block,
extracted from README.md, against `./scripts/run` with a seeded primary."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from mastodon import Mastodon

from tests.e2e.oauth_person import sign_in
from tests.e2e.stack import http, start_stack, wait_for

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- walkthrough:warm-standby"


def walkthrough_block() -> str:
    readme = (ROOT / "README.md").read_text()
    after_marker = readme[readme.index(MARKER) :]
    match = re.search(r"```sh\n(.*?)```", after_marker, re.DOTALL)
    assert match, "the walkthrough's shell block is missing from README.md"
    return match.group(1)


@pytest.fixture(scope="module")
def seeded_stack():
    stack = start_stack({"SEED_PRIMARY": "true", "HEALTH_UP_AFTER": "2"})
    yield stack
    stack.stop()


def test_the_warm_standby_walkthrough_runs_as_written(seeded_stack):
    assert seeded_stack.primary_token, "./scripts/run printed no primary token"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough_block()],
        env={
            "PATH": "/usr/bin:/bin",
            "LB": seeded_stack.base_url,
            "PRIMARY": seeded_stack.primary_url,
            "ADA": seeded_stack.primary_token,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # 1: the mirror holds the seeded primary;
    assert "'accounts': 5, 'posts': 20" in lines[0]
    # 3: the primary's own token posts, with no account made here;
    assert "posted: 200" in lines
    # 4: the home timeline is full: her outage post first, then mirrored posts of whom she follows, newest first;
    home = [line for line in lines if re.match(r"^\w+: <p>", line)]
    assert home == [
        "ada: <p>Posting through the outage</p>",
        "margaret: <p>Margaret&#x27;s post 4 on the primary</p>",
        "linus: <p>Linus&#x27;s post 4 on the primary</p>",
        "grace: <p>Grace&#x27;s post 4 on the primary</p>",
        "ada: <p>Ada&#x27;s post 4 on the primary</p>",
    ]
    # 5: only the outage's post reached the primary, once.
    assert [line for line in lines if line.startswith("replayed:")] == ["replayed: ada Posting through the outage"]


def test_a_seeded_user_signs_in_with_the_printed_password_and_sees_a_full_home(seeded_stack):
    # As a person would, after ./scripts/run: an app, the authorize page, ada and the printed password.
    redirect = "urn:ietf:wg:oauth:2.0:oob"
    base = seeded_stack.base_url
    client_id, client_secret = Mastodon.create_app(
        "Walkthrough", scopes=["read"], redirect_uris=redirect, api_base_url=base
    )
    app = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=base, version_check_mode="none")
    url = app.auth_request_url(redirect_uris=redirect, scopes=["read"], allow_http=True)
    assert seeded_stack.primary_password, "./scripts/run printed no password"

    status, _, page = sign_in(url, "ada", seeded_stack.primary_password)
    code = re.search(r'<code id="code">([^<]+)</code>', page) if status == 200 else None
    assert code, (status, page[-300:])
    app.log_in(code=code.group(1), redirect_uri=redirect, scopes=["read"], allow_http=True)
    authors = {status.account.acct for status in app.timeline_home(limit=40)}
    assert authors == {"ada", "grace", "linus", "margaret"}  # whom she follows, and herself; not ken
    wrong = sign_in(url, "ada", seeded_stack.primary_password + "x")
    assert wrong[0] != 302 and 'id="code"' not in wrong[2]


def test_a_post_written_here_while_the_primary_is_up_comes_back_through_the_mirror_once(seeded_stack):
    # A client still pointed at Lifeboat after the outage: its post is replayed at once, then the
    # primary's feed brings it back, and it must not be stored a second time as a mirrored post.
    base, token = seeded_stack.base_url, seeded_stack.primary_token
    wait_for(lambda: http("GET", base + "/status").body["primary"] == "up", timeout=60)
    posted = http("POST", base + "/posts", {"text": "written while the primary is up"}, token=token).body
    wait_for(lambda: http("GET", f"{base}/posts/{posted['id']}").body["state"] == "replayed", timeout=60)
    replayed_at = http("GET", base + "/status").body["last_replay"]["finished"]
    # Two mirror runs that ended after the replay: the feed held the post by then.
    seen = []
    wait_for(lambda: seen.append(http("GET", base + "/status").body["mirror"]["cursor_at"]) or
             len({at for at in seen if at and at > replayed_at}) >= 2, timeout=60)  # fmt: skip
    public = http("GET", base + "/timeline/public?limit=50").body["posts"]
    copies = [post["id"] for post in public if post["text"] == "written while the primary is up"]
    assert copies == [posted["id"]]


def test_the_printed_primary_token_works_as_soon_as_the_stack_says_ready():
    # A new user copies the token from ./scripts/run's output and uses it at once.
    stack = start_stack({"SEED_PRIMARY": "true"})
    try:
        me = http(
            "GET",
            stack.base_url + "/api/v1/accounts/verify_credentials",
            headers={"Authorization": f"Bearer {stack.primary_token}"},
        )
        assert (me.status, me.body.get("acct")) == (200, "ada"), me.body
    finally:
        stack.stop()
