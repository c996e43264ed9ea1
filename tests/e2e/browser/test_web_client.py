"""The web client in a real Chromium against ./scripts/run: a person signs
in on the authorize page, posts during the outage, and sees the post reach
the primary; a post the network drops waits in the browser and is sent once;
with the API's compute failing, the public timeline still reads from S3.

The tests run in order in one stack: the primary is down until the first
test brings it back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.e2e.browser.conftest import sign_in_code
from tests.e2e.stack import http, wait_for

pytestmark = pytest.mark.e2e
SCREENSHOTS = Path(__file__).resolve().parents[3] / "build" / "screenshots"
FALLBACK = "The main service is down. Your posts are safe here and will be delivered when it is back."
# The API's routes, as the web client calls them; its own files and /feeds/ are not among them.
API_PATHS = re.compile(r"^https?://[^/]+/(api|oauth|status|posts|users|timeline)(/|$|\?)")


def sign_in(page, stack, username: str) -> None:
    page.goto(stack.base_url + "/")
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password, or the sign-in code an administrator gave you").fill(sign_in_code(stack, username))
    page.get_by_role("button", name="Sign in and authorize").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def write(page, text: str) -> None:
    page.get_by_label("New post").fill(text)
    page.get_by_role("button", name="Post").click()


def serious_violations(page) -> list[str]:
    results = Axe().run(page)
    found = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    print(f"axe on {page.url}: {results.violations_count} violations, {len(found)} serious or critical")
    return [f"{v['id']}: {v['help']}" for v in found]


def received_texts(stack) -> list[str]:
    return [post["text"] for post in http("GET", f"{stack.primary_url}/received").body]


def test_a_person_signs_in_posts_and_sees_the_post_delivered_once_the_main_service_is_back(stack, page):
    assert http("POST", f"{stack.primary_url}/control", {"down": True}).status == 200
    wait_for(lambda: stack.call("GET", "/status").body["primary"] == "down")
    stack.new_user("ada")

    sign_in(page, stack, "ada")
    page.get_by_role("link", name="Home").click()
    banner = page.get_by_role("status").first
    expect(banner).to_have_text(FALLBACK)

    page.get_by_label("New post").fill("hello")
    expect(page.locator("#compose [aria-live=polite]")).to_contain_text("495")
    write(page, "hello from a browser")
    mine = page.get_by_role("feed").locator("article", has_text="hello from a browser")
    expect(mine).to_have_attribute("data-state", "waiting")
    print(f"time to first render of the home timeline: {page.evaluate('window.lifeboatFirstRenderMs'):.0f} ms")
    assert serious_violations(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "home-desktop.png", full_page=True)
    page.set_viewport_size({"width": 360, "height": 740})
    page.screenshot(path=SCREENSHOTS / "home-360.png", full_page=True)

    # Back, but slow: the banner counts the backlog down while it drains.
    assert http("POST", f"{stack.primary_url}/control", {"down": False, "latency_ms": 1500}).status == 200
    expect(banner).to_have_text("Delivering: 1 post left.", timeout=30_000)
    expect(mine).to_have_attribute("data-state", "delivered", timeout=30_000)
    assert http("POST", f"{stack.primary_url}/control", {"latency_ms": 0}).status == 200
    expect(banner).to_contain_text("The main service is back")
    assert received_texts(stack).count("hello from a browser") == 1


def test_a_post_the_network_drops_waits_in_the_browser_and_is_sent_exactly_once(stack, page):
    stack.new_user("grace")
    sign_in(page, stack, "grace")

    page.route(API_PATHS, lambda route: route.abort("internetdisconnected"))
    write(page, "written on a train")
    queued = page.locator('article[data-state="queued"]', has_text="written on a train")
    expect(queued).to_be_visible()
    page.reload()
    expect(queued).to_be_visible()

    page.unroute(API_PATHS)
    sent = page.get_by_role("feed").locator("article[data-state]", has_text="written on a train")
    expect(sent).to_have_attribute("data-state", re.compile("waiting|delivered"))
    wait_for(lambda: "written on a train" in received_texts(stack), timeout=30)
    assert received_texts(stack).count("written on a train") == 1
    mine = stack.call("GET", "/api/v1/accounts/grace/statuses").body
    assert [status["content"] for status in mine].count("<p>written on a train</p>") == 1


def test_reply_delete_follow_scroll_three_pages_and_sign_out(stack, page):
    authors = {name: stack.new_user(name) for name in ("ken", "linus", "margaret")}
    for name, token in authors.items():
        for n in range(15):  # 45 posts in all: three pages of 20 (Mastodon's default)
            assert stack.call("POST", "/posts", {"text": f"{name} number {n}"}, token=token).status == 201
    stack.new_user("barbara")
    sign_in(page, stack, "barbara")
    for name in ("linus", "margaret"):  # followed from their profiles, as a person does
        page.goto(f"{stack.base_url}/#/@{name}")
        page.get_by_role("button", name="Follow", exact=True).click()
        expect(page.get_by_role("button", name="Unfollow")).to_be_visible()
    assert stack.call("GET", "/api/v1/accounts/linus").body["followers_count"] == 1
    assert serious_violations(page) == []
    page.goto(f"{stack.base_url}/#/@ken")
    page.get_by_role("button", name="Follow", exact=True).click()
    expect(page.get_by_role("button", name="Unfollow")).to_be_visible()
    expect(page.locator('head link[rel="alternate"][type="application/atom+xml"]')).to_have_attribute(
        "href", re.compile(r"/users/ken/feed\.atom$"))

    page.get_by_role("link", name="Home").click()
    articles = page.get_by_role("feed").locator("article")
    expect(articles).to_have_count(20)
    articles.last.scroll_into_view_if_needed()
    expect(articles).to_have_count(40)
    articles.last.scroll_into_view_if_needed()
    expect(articles).to_have_count(45)
    # New posts show without reloading.
    stack.call("POST", "/posts", {"text": "fresh from ken"}, token=authors["ken"])
    expect(articles.first).to_contain_text("fresh from ken")

    newest = articles.first
    expect(newest).to_contain_text("fresh from ken")
    parent_id = newest.get_attribute("data-id")
    newest.get_by_role("button", name="Reply").click()
    expect(page.get_by_text("Replying to @ken")).to_be_visible()
    write(page, "a reply from barbara")
    wait_for(lambda: stack.call("GET", "/api/v1/accounts/barbara/statuses").body, timeout=10)
    mine = stack.call("GET", "/api/v1/accounts/barbara/statuses").body
    assert [status["in_reply_to_id"] for status in mine] == [parent_id]

    reply = page.get_by_role("feed").locator("article", has_text="a reply from barbara")
    page.once("dialog", lambda dialog: dialog.accept())
    reply.get_by_role("button", name="Delete").click()
    expect(reply).to_have_count(0)
    assert stack.call("GET", "/api/v1/accounts/barbara/statuses").body == []

    token = page.evaluate("Object.values(localStorage).find(value => value.startsWith('lbo_'))")
    assert stack.call("GET", "/api/v1/accounts/verify_credentials", token=token).status == 200
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    assert stack.call("GET", "/api/v1/accounts/verify_credentials", token=token).status == 401


def test_a_home_shorter_than_the_window_loads_its_next_page_without_a_scroll(stack, page):
    # The scroll observer reports changes only; in a window tall enough for
    # a whole page the sentinel never leaves the view, so the client has to
    # look again after each page rather than wait for a change.
    token = stack.new_user("dennis")
    for n in range(25):
        assert stack.call("POST", "/posts", {"text": f"dennis number {n}"}, token=token).status == 201
    reader = stack.new_user("frances")
    assert stack.call("POST", "/api/v1/accounts/dennis/follow", token=reader).status == 200
    page.set_viewport_size({"width": 1280, "height": 12000})
    sign_in(page, stack, "frances")

    page.get_by_role("link", name="Home").click()

    articles = page.get_by_role("feed").locator("article")
    expect(articles).to_have_count(25)
    expect(articles.last).to_contain_text("dennis number 0")


def test_the_authorize_page_passes_the_audit_and_loads_without_errors(stack, page):
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append((page.url, message.text)))
    page.goto(stack.base_url + "/")
    page.get_by_role("link", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign in and authorize")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert serious_violations(page) == []
    assert errors == []


def test_with_the_api_failing_the_public_timeline_is_read_only_from_the_static_feed(stack, page):
    token = stack.new_user("edsger")
    stack.call("POST", "/posts", {"text": "kept on S3 too"}, token=token)
    wait_for(lambda: b"kept on S3 too" in _static_public_feed(stack), timeout=30)

    page.route(API_PATHS, lambda route: route.fulfill(status=503, body='{"error":"unavailable"}'))
    page.goto(stack.base_url + "/#/public")
    expect(page.get_by_role("status").first).to_contain_text("read-only")
    expect(page.get_by_role("feed").locator("article", has_text="kept on S3 too")).to_be_visible()
    assert serious_violations(page) == []


def _static_public_feed(stack) -> bytes:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{stack.base_url}/feeds/public.atom", timeout=10) as answer:
            return answer.read()
    except urllib.error.HTTPError:
        return b""
