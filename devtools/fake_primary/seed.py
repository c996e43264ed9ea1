"""A few users, tokens, follows and posts on the fake primary, so that a
fresh `./scripts/run` has something to mirror and the README's walkthrough
(mirror, fall over, post with the primary's token, replay) works as written."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import bcrypt

USERS = ("ada", "grace", "linus", "margaret", "ken")
# ada follows three of them, so her home timeline is full at minute one.
FOLLOWS = (("ada", "grace"), ("ada", "linus"), ("ada", "margaret"), ("grace", "ada"), ("ken", "linus"))
POSTS_PER_USER = 4
WALKTHROUGH_USER = "ada"


@dataclass(frozen=True)
class SeededUser:
    username: str
    token: str
    scopes: str
    # What the person types on Lifeboat's sign-in page: the password the
    # primary knows them by (only its bcrypt hash is mirrored).
    password: str
    everyone: tuple[str, ...] = USERS


def seed(primary) -> SeededUser:
    """Seed `primary` (a FakePrimary); the walkthrough user and their token,
    which only the fake primary and this answer ever hold in the clear."""
    tokens = {}
    password = secrets.token_urlsafe(9)
    # Cost 4: the lowest bcrypt allows, so a local start stays fast; a real
    # primary's hashes (cost 10 and more) verify the same way.
    password_bcrypt = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    for username in USERS:
        primary.add_user(username, username.capitalize(), password_bcrypt=password_bcrypt)
        tokens[username] = secrets.token_urlsafe(24)
        primary.add_token(username, tokens[username], "read write follow")
    for follower, followee in FOLLOWS:
        primary.add_follow(follower, followee)
    # Written over the last hour, a minute apart, so timelines read in order.
    posts = [(number, username) for number in range(1, POSTS_PER_USER + 1) for username in USERS]
    start = time.time() - 60 * len(posts)
    for minute, (number, username) in enumerate(posts):
        text = f"{username.capitalize()}'s post {number} on the primary"
        primary.add_direct_post(username, text, created_at=start + 60 * minute)
    return SeededUser(WALKTHROUGH_USER, tokens[WALKTHROUGH_USER], "read write follow", password)
