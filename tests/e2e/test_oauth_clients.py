"""Real clients sign in to the real local stack on loopback, as a person
would: Mastodon.py (Python), and masto.js and megalodon (Node). The person's
account and bcrypt password hash come from the primary's change feed, which
the stack mirrors, as in a warm standby."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import uuid
from pathlib import Path

import bcrypt
import pytest
from mastodon import Mastodon, MastodonUnauthorizedError

from tests.e2e.oauth_person import code_from_redirect, sign_in
from tests.e2e.stack import http, start_stack, wait_for

pytestmark = pytest.mark.e2e

REDIRECT = "http://127.0.0.1:9/callback"  # never opened: the person's "browser" reads the code from Location
SCOPES = ["read", "write", "follow", "push"]
ROOT = Path(__file__).resolve().parents[2]
NODE_CLIENTS = ROOT / "tests" / "e2e" / "node_clients"
INSTALLED_CLIENTS = ROOT / "build" / "node_clients"


@pytest.fixture(scope="module")
def stack():
    running = start_stack({"MIRROR_ENABLED": "true"})
    yield running
    running.stop()


def mirrored_person(stack, password: str) -> str:
    """An account on the primary with this password, once the stack has mirrored it."""
    username = f"p{uuid.uuid4().hex[:10]}"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode().replace("$2b$", "$2a$")  # Devise's prefix
    account = {
        "type": "account",
        "username": username,
        "display_name": username.title(),
        "created_at": "2026-01-01T00:00:00.000Z",
        "suspended": False,
        "password_bcrypt": hashed,
    }
    assert http("POST", f"{stack.primary_url}/control/changes", {"changes": [account]}).status == 200
    wait_for(lambda: stack.call("GET", f"/api/v1/accounts/lookup?acct={username}").status == 200, timeout=60)
    return username


def test_mastodon_py_signs_in_posts_reads_and_revokes(stack):
    password = secrets.token_urlsafe(12)
    username = mirrored_person(stack, password)
    client_id, client_secret = Mastodon.create_app(
        "Mastodon.py on Lifeboat", scopes=SCOPES, redirect_uris=REDIRECT, api_base_url=stack.base_url
    )
    masto = Mastodon(
        client_id=client_id, client_secret=client_secret, api_base_url=stack.base_url, version_check_mode="none"
    )

    url = masto.auth_request_url(redirect_uris=REDIRECT, scopes=SCOPES, state="st-1", allow_http=True)
    code, state = code_from_redirect(sign_in(url, username, password), REDIRECT)
    token = masto.log_in(code=code, redirect_uri=REDIRECT, scopes=SCOPES, allow_http=True)
    posted = masto.status_post("signed in with OAuth")
    # The home timeline gets the post on the stream, a moment later.
    home = wait_for(lambda: [status for status in masto.timeline_home() if status.id == posted.id], timeout=10)
    me = masto.account_verify_credentials()
    masto.revoke_access_token(allow_http=True)

    assert url.startswith(stack.base_url + "/oauth/authorize?") and state == "st-1"
    assert token.startswith("lbo_") and me.username == username
    assert posted.content == "<p>signed in with OAuth</p>" and posted.id in [status.id for status in home]
    with pytest.raises(MastodonUnauthorizedError):
        Mastodon(access_token=token, api_base_url=stack.base_url, version_check_mode="none").timeline_home()
    logged = "".join(stack.output)
    assert "/oauth/token" in logged  # the access log is read: what it lacks below is absent, not unread
    assert token not in logged and code not in logged and client_secret not in logged and password not in logged


def test_a_wrong_password_gets_the_form_again_and_no_code(stack):
    username = mirrored_person(stack, "right-password")
    client_id, client_secret = Mastodon.create_app(
        "wrong", scopes=["read"], redirect_uris=REDIRECT, api_base_url=stack.base_url
    )
    masto = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=stack.base_url)
    url = masto.auth_request_url(redirect_uris=REDIRECT, scopes=["read"], allow_http=True)
    status, headers, body = sign_in(url, username, "wrong-password")
    assert status == 401 and "Location" not in headers and "Invalid username or password" in body


@pytest.fixture(scope="module")
def node_clients():
    """masto 8 and megalodon, pinned, installed from the npm registry. The
    flows and lock file are copied to build/node_clients and installed
    there, so no third-party package (with its own tests) lands in tests/."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the second client (they are on CI's machine)")
    INSTALLED_CLIENTS.mkdir(parents=True, exist_ok=True)
    for source in [*NODE_CLIENTS.glob("*.mjs"), *NODE_CLIENTS.glob("package*.json")]:
        shutil.copy2(source, INSTALLED_CLIENTS / source.name)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=INSTALLED_CLIENTS,
        check=True,
        timeout=300,
        env={**os.environ, "npm_config_update_notifier": "false"},
    )
    return INSTALLED_CLIENTS


def run_node(node_clients, script: str, stack, person: tuple[str, str], other: str) -> dict:
    """Run a client's flow: it prints the authorize URL, the person signs in
    (here, over HTTP), the code goes back on its stdin, and its last line is
    what it saw, as JSON."""
    env = {**os.environ, "LIFEBOAT_URL": stack.base_url, "LB_OTHER": other, "LB_REDIRECT": REDIRECT}
    node = subprocess.Popen(
        ["node", script],
        cwd=node_clients,
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        first = node.stdout.readline()
        assert first.startswith("AUTHORIZE "), first + node.stderr.read()[-3000:]
        url = first.removeprefix("AUTHORIZE ").strip()
        code, _ = code_from_redirect(sign_in(url, *person), REDIRECT)
        out, err = node.communicate(code + "\n", timeout=120)
    finally:
        if node.poll() is None:
            node.kill()
    assert node.returncode == 0, err[-3000:]
    return {"authorize_url": url, **json.loads(out.strip().splitlines()[-1])}


@pytest.mark.parametrize("script", ["masto_flow.mjs", "megalodon_flow.mjs"])
def test_a_node_client_signs_in_with_pkce_posts_follows_and_pages(node_clients, stack, script):
    password = secrets.token_urlsafe(12)
    username, other = mirrored_person(stack, password), mirrored_person(stack, "unused-password")

    seen = run_node(node_clients, script, stack, (username, password), other)

    assert "code_challenge_method=S256" in seen["authorize_url"] and seen["verified"] == username
    assert seen["posted_content"] == "<p>posted from Node</p>" and seen["home_has_post"] is True
    assert seen["pages"] == 3 and seen["paged_distinct"] is True
    assert seen["following"] is True and seen["revoked_refused"] is True
