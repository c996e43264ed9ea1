"""A real Chromium (Debian's, scripts/lib/browser.sh) driven by Playwright
against ./scripts/run on loopback: the web client as a person meets it."""

from __future__ import annotations

import os

import pytest

from tests.e2e.stack import start_stack

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ADMIN = "e2e-browser-admin"
# The web client's timers, quickened so that the tests wait seconds, not minutes.
FAST_TIMERS = "for (const [k, v] of Object.entries({pollMs: 500, retryMs: 500, statusMs: 500})) " \
    "localStorage.setItem('lifeboat.' + k, String(v));"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # Playwright's own browser download is blocked here; without the
    # background-networking flags Chromium's calls home are refused in bulk.
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"],
    }


@pytest.fixture(scope="module")
def stack():
    running = start_stack({"ADMIN_TOKEN": ADMIN, "SCHEDULE_SECONDS": "1"})
    yield running
    running.stop()


@pytest.fixture
def page(page):
    page.add_init_script(FAST_TIMERS)
    return page


def sign_in_code(stack, username: str) -> str:
    reply = stack.call("POST", f"/admin/users/{username}/sign-in-codes", token=stack.admin_token)
    assert reply.status == 201, reply.body
    return reply.body["code"]
