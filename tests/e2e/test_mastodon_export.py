"""scripts/mastodon_export.sql against a real PostgreSQL holding Mastodon's
tables as db/schema.rb defines them (mastodon_schema.sql), run by the
README's own crontab line as cron would run it.

In tests/e2e/ rather than tests/infra/: like the rest of this directory it
starts a real server process (PostgreSQL, from the pgserver wheel) and drives
it from outside; tests/infra/ checks the template and the scripts offline."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.postgres import clean_env, pgserver_bin

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ROOT / "scripts" / "mastodon_export.sql"
SCHEMA = (Path(__file__).parent / "mastodon_schema.sql").read_text()
README = (ROOT / "README.md").read_text()
PSQL = str(pgserver_bin() / "psql")

# As Rails stores datetimes: UTC, with no zone.
NOW = datetime.now(UTC).replace(tzinfo=None)
# Far from UTC, so a datetime read in the session's zone shows.
FAR_ZONE = "Pacific/Kiritimati"
_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def bcrypt_like(seed: str) -> str:
    """A well-formed Devise bcrypt hash, different for each seed."""
    digest = hashlib.sha512(seed.encode()).digest()
    return "$2a$10$" + "".join(_BCRYPT_ALPHABET[byte % 64] for byte in digest[:53])


@dataclass(frozen=True)
class Person:
    """An accounts row and, if has_user, its users row."""

    account_id: int
    username: str
    domain: str | None = None
    display_name: str = ""
    created_at: datetime = NOW - timedelta(days=30)
    suspended_at: datetime | None = None
    memorial: bool = False
    has_user: bool = True
    confirmed: bool = True
    approved: bool = True
    disabled: bool = False
    password: str | None = None  # None: a bcrypt hash of its own

    @property
    def encrypted_password(self) -> str:
        return bcrypt_like(self.username) if self.password is None else self.password


@dataclass(frozen=True)
class Token:
    """An oauth_access_tokens row, and whether the export must call it revoked."""

    owner: str | None  # the owner's username as stored; None: a client-credentials token
    scopes: str | None
    expect_revoked: bool
    created_at: datetime = NOW - timedelta(days=1)
    expires_in: int | None = None
    revoked_at: datetime | None = None
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    refresh: str = field(default_factory=lambda: secrets.token_urlsafe(32))


ALICE = Person(1, "alice", display_name="Alice Liddell", created_at=datetime(2026, 1, 2, 3, 4, 5, 678900))
PEOPLE = [
    ALICE,
    # Mixed case, and a display name that JSON must escape to stay on one line.
    Person(2, "Bob", display_name='Bob "the builder"\nsecond line'),
    # Mastodon gives remote accounts no user row; this one has one, so that
    # the domain test itself is what keeps it out.
    Person(3, "carol", domain="remote.example"),
    Person(-99, "mastodon.example", has_user=False),  # the instance actor
    Person(5, "dave", suspended_at=NOW - timedelta(days=3)),
    Person(6, "erin", disabled=True),
    Person(7, "frank", confirmed=False),
    Person(8, "gina", approved=False),
    Person(9, "hank", memorial=True),
    Person(10, "ivy", password=""),  # signs in through SSO: no password
]
TOKENS = [
    Token("alice", "read write follow", expect_revoked=False),
    Token("alice", "read", expect_revoked=True, revoked_at=NOW - timedelta(hours=1)),
    Token("alice", "read write", expect_revoked=False, revoked_at=NOW + timedelta(hours=2)),
    Token("alice", "read", expect_revoked=True, created_at=NOW - timedelta(hours=3), expires_in=3600),
    Token("alice", "write", expect_revoked=False, created_at=NOW - timedelta(minutes=30), expires_in=7200),
    Token("Bob", None, expect_revoked=False),
    Token("Bob", "read:statuses write:statuses", expect_revoked=False),
    *(Token(name, "read write follow", expect_revoked=True) for name in ("dave", "erin", "frank", "gina", "hank")),
    Token("ivy", "read", expect_revoked=False),
    Token("carol", "read", expect_revoked=False),
    Token(None, "read", expect_revoked=False),
]
EXPORTED_PEOPLE = [person for person in PEOPLE if person.has_user and person.domain is None]
EXPORTED_NAMES = {person.username for person in EXPORTED_PEOPLE}
EXPORTED_TOKENS = [token for token in TOKENS if token.owner in EXPORTED_NAMES]
APP_SECRET = secrets.token_urlsafe(32)


def literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat(sep=' ')}'"
    return "'" + str(value).replace("'", "''") + "'"


def insert(table: str, **columns: object) -> str:
    # The test's own constants, quoted by literal(): nothing from outside.
    values = ", ".join(map(literal, columns.values()))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values});\n"  # noqa: S608


def seed(people: list[Person], tokens: list[Token], stored: Callable[[Token], str] = lambda token: token.secret) -> str:
    """INSERTs for these rows; stored gives what the token column holds."""
    sql = insert(
        "oauth_applications",
        id=1,
        name="Tusky",
        uid="tusky",
        secret=APP_SECRET,
        redirect_uri="urn:ietf:wg:oauth:2.0:oob",
    )
    user_ids = {}
    for number, person in enumerate(people):
        sql += insert(
            "accounts",
            id=person.account_id,
            username=person.username,
            domain=person.domain,
            display_name=person.display_name,
            created_at=person.created_at,
            updated_at=person.created_at,
            suspended_at=person.suspended_at,
            memorial=person.memorial,
        )
        if person.has_user:
            # Not the account's id, so a join on the wrong column finds nothing.
            user_ids[person.username] = 1000 + number
            sql += insert(
                "users",
                id=user_ids[person.username],
                account_id=person.account_id,
                email=f"{person.username.lower()}@example.com",
                created_at=person.created_at,
                updated_at=person.created_at,
                encrypted_password=person.encrypted_password,
                confirmed_at=person.created_at if person.confirmed else None,
                approved=person.approved,
                disabled=person.disabled,
            )
    for token in tokens:
        sql += insert(
            "oauth_access_tokens",
            token=stored(token),
            refresh_token=token.refresh,
            scopes=token.scopes,
            created_at=token.created_at,
            expires_in=token.expires_in,
            revoked_at=token.revoked_at,
            application_id=1,
            resource_owner_id=user_ids.get(token.owner),
        )
    return sql


def readme_block(language: str, containing: str) -> str:
    blocks = [block for block in re.findall(rf"```{language}\n(.*?)```", README, re.S) if containing in block]
    assert len(blocks) == 1, f"one ```{language} block in README.md with {containing!r}"
    return blocks[0]


def cron_command(command_field: str) -> tuple[str, str]:
    """What cron makes of a crontab entry's command: an unescaped % ends the
    shell command (the rest, % as line breaks, is its standard input), and
    \\% is a literal %."""
    parts = [""]
    for piece in re.split(r"(\\%|%)", command_field):
        if piece == "\\%":
            parts[-1] += "%"
        elif piece == "%":
            parts.append("")
        else:
            parts[-1] += piece
    return parts[0], "\n".join(parts[1:])


def export(url: str, *variables: str, **env: str) -> subprocess.CompletedProcess:
    """The export run directly, as the README's crontab runs it."""
    command = [PSQL, "-X", "-At", "-d", url, "-f", str(EXPORT)]
    for variable in variables:
        command += ["-v", variable]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=clean_env(**env), check=False)


def documents(output: str) -> list[dict]:
    lines = output.split("\n")
    assert lines[-1] == "", "the output ends with a line break"
    parsed = [json.loads(line) for line in lines[:-1]]
    assert all(isinstance(document, dict) for document in parsed)
    return parsed


def account(changes: list[dict], username: str) -> dict:
    (found,) = [document for document in changes if document["type"] == "account" and document["username"] == username]
    return found


def credential_digests(output: str) -> set[str]:
    return {document["token_sha256"] for document in documents(output) if document["type"] == "credential"}


@dataclass
class CronRun:
    aws_args: list[str]
    body: str
    stdin: str
    stderr: str
    returncode: int


@pytest.fixture(scope="module")
def mastodon(postgres) -> str:
    """Mastodon's database with PEOPLE and TOKENS, the README's export role,
    and a default zone far from UTC; the export role's URL."""
    postgres.create_database(
        "mastodon",
        SCHEMA,
        seed(PEOPLE, TOKENS),
        readme_block("sql", "lifeboat_export"),
        f"ALTER DATABASE mastodon SET timezone TO '{FAR_ZONE}'",
    )
    return postgres.url("mastodon", user="lifeboat_export")


@pytest.fixture(scope="module")
def cron_run(mastodon, tmp_path_factory) -> CronRun:
    """The README's crontab entry, run as cron runs it: its command field
    through cron's % rule, by /bin/sh, in the home directory the README says
    to copy the script to, with cron's bare environment and the crontab's
    variables. `aws` is a stand-in that keeps its arguments and its input."""
    crontab = readme_block("crontab", "mastodon_export.sql").splitlines()
    variables = dict(line.split("=", 1) for line in crontab if re.match(r"[A-Z_]+=", line))
    assert set(variables) == {"MASTODON_DATABASE_URL", "BUCKET"}
    (entry,) = [line for line in crontab if line.startswith("*/5 ")]
    command, stdin = cron_command(entry.split(None, 5)[5])

    home = tmp_path_factory.mktemp("cron-home")
    shutil.copy(EXPORT, home / EXPORT.name)
    stand_ins = home / "bin"
    stand_ins.mkdir()
    (stand_ins / "aws").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$HOME/aws-args"\ncat > "$HOME/aws-body"\n')
    (stand_ins / "aws").chmod(0o755)
    env = {
        "HOME": str(home),
        "LOGNAME": "root",
        "SHELL": "/bin/sh",
        "PATH": f"{stand_ins}:{pgserver_bin()}:/usr/bin:/bin",
        "TZ": FAR_ZONE,  # a host clock that is not on UTC
        "MASTODON_DATABASE_URL": mastodon,
        "BUCKET": "test-bucket",
    }
    result = subprocess.run(
        ["/bin/sh", "-c", command], input=stdin, cwd=home, env=env, capture_output=True, text=True, timeout=120
    )
    sent = [home / "aws-args", home / "aws-body"]
    aws_args, body = (path.read_text() if path.exists() else "" for path in sent)
    return CronRun(
        aws_args=aws_args.splitlines(),
        body=body,
        stdin=stdin,
        stderr=result.stderr,
        returncode=result.returncode,
    )


@pytest.fixture(scope="module")
def changes(cron_run) -> list[dict]:
    return documents(cron_run.body)


def test_the_crontab_line_sends_one_object_to_the_inbox(cron_run):
    assert (cron_run.returncode, cron_run.stderr, cron_run.stdin) == (0, "", "")
    assert cron_run.aws_args[:3] == ["s3", "cp", "-"]
    assert len(cron_run.aws_args) == 4
    key = re.fullmatch(r"s3://test-bucket/mirror/inbox/(\d{8}T\d{6}Z)\.jsonl", cron_run.aws_args[3])
    assert key, cron_run.aws_args[3]
    sent_at = datetime.strptime(key.group(1), "%Y%m%dT%H%M%SZ")
    assert abs(sent_at - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=10), "named in UTC"


def test_every_line_is_one_change_document(changes):
    assert len(changes) == len(EXPORTED_PEOPLE) + len(EXPORTED_TOKENS)
    assert {document["type"] for document in changes} == {"account", "credential"}
    assert account(changes, "bob")["display_name"] == 'Bob "the builder"\nsecond line'


def test_accounts_are_the_local_ones_with_a_user(changes):
    usernames = [document["username"] for document in changes if document["type"] == "account"]
    assert sorted(usernames) == ["alice", "bob", "dave", "erin", "frank", "gina", "hank", "ivy"]


def test_an_account_document_has_every_field(changes):
    assert account(changes, "alice") == {
        "type": "account",
        "username": "alice",
        "display_name": "Alice Liddell",
        "created_at": "2026-01-02T03:04:05.678Z",
        "suspended": False,
        "password_bcrypt": ALICE.encrypted_password,
    }


@pytest.mark.parametrize(
    ("username", "suspended", "has_password"),
    [
        ("alice", False, True),
        ("dave", True, False),  # suspended
        ("erin", False, False),  # frozen (users.disabled)
        ("frank", False, False),  # unconfirmed
        ("gina", False, False),  # pending approval
        ("hank", False, False),  # memorial
        ("ivy", False, False),  # no password (SSO)
    ],
)
def test_suspension_and_who_can_sign_in(changes, username, suspended, has_password):
    (person,) = [person for person in PEOPLE if person.username == username]
    exported = account(changes, username)
    assert exported["suspended"] is suspended
    assert exported["password_bcrypt"] == (person.encrypted_password if has_password else None)


def test_credentials_are_digests_with_their_scopes_and_revocation(changes):
    expected = {
        sha256_hex(token.secret): {
            "type": "credential",
            "username": token.owner.lower(),
            "token_sha256": sha256_hex(token.secret),
            "scopes": token.scopes or "",
            "revoked": token.expect_revoked,
        }
        for token in EXPORTED_TOKENS
    }
    credentials = [document for document in changes if document["type"] == "credential"]
    assert {document["token_sha256"]: document for document in credentials} == expected
    assert len(credentials) == len(expected)


def test_each_account_comes_before_its_credentials(changes):
    seen = set()
    for document in changes:
        if document["type"] == "account":
            seen.add(document["username"])
        else:
            assert document["username"] in seen


def test_no_secret_reaches_the_output(cron_run):
    held_back = [APP_SECRET, *(token.secret for token in TOKENS), *(token.refresh for token in TOKENS)]
    # Only alice and Bob can sign in; everyone else's hash stays behind.
    held_back += [person.encrypted_password for person in PEOPLE if person.username not in {"alice", "Bob"}]
    held_back += [f"{person.username.lower()}@example.com" for person in PEOPLE]
    assert [secret for secret in held_back if secret and secret in cron_run.body] == []


HASHED = Token("alice", "read write follow", expect_revoked=False)
KEPT_FROM_BEFORE_HASHING = Token("alice", "read", expect_revoked=False)


@pytest.fixture(scope="module")
def hashed_mastodon(postgres) -> str:
    """A primary running Doorkeeper's hash_token_secrets: one token stored as
    its SHA-256 digest, one older token still stored in the clear."""

    def stored(token: Token) -> str:
        return token.secret if token is KEPT_FROM_BEFORE_HASHING else sha256_hex(token.secret)

    rows = seed([ALICE], [HASHED, KEPT_FROM_BEFORE_HASHING], stored)
    return postgres.create_database("mastodon_hashed", SCHEMA, rows)


def test_stored_digests_pass_through_with_tokens_stored_sha256(hashed_mastodon):
    result = export(hashed_mastodon, "tokens_stored=sha256")
    assert result.returncode == 0, result.stderr
    assert credential_digests(result.stdout) == {sha256_hex(HASHED.secret), sha256_hex(KEPT_FROM_BEFORE_HASHING.secret)}


def test_by_default_every_stored_token_is_hashed_as_mastodon_ships(hashed_mastodon):
    result = export(hashed_mastodon)
    assert result.returncode == 0, result.stderr
    assert credential_digests(result.stdout) == {
        sha256_hex(sha256_hex(HASHED.secret)),
        sha256_hex(KEPT_FROM_BEFORE_HASHING.secret),
    }


def test_an_unknown_token_storage_is_refused_with_nothing_written(hashed_mastodon):
    result = export(hashed_mastodon, "tokens_stored=bcrypt")
    assert result.returncode == 3
    assert result.stdout == ""
    assert "tokens_stored must be plain or sha256" in result.stderr


# Reading `users` through this view writes a row: a write the export's
# transaction must refuse.
WRITING_VIEW = """
CREATE SCHEMA probe;
CREATE TABLE probe.reads (at timestamptz);
CREATE FUNCTION probe.note_read() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO probe.reads VALUES (now());
    RETURN true;
END $$;
CREATE VIEW probe.users AS SELECT * FROM public.users WHERE probe.note_read();
"""


def test_a_write_inside_the_export_is_refused(postgres):
    url = postgres.create_database(
        "mastodon_probe", SCHEMA, seed([ALICE], [Token("alice", "read", expect_revoked=False)]), WRITING_VIEW
    )
    through_the_view = "-c search_path=probe,public"
    outside = subprocess.run(
        [PSQL, "-X", "-At", "-d", url, "-c", "SELECT count(*) FROM users"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(PGOPTIONS=through_the_view),
        check=False,
    )
    assert (outside.returncode, outside.stdout) == (0, "1\n"), outside.stderr
    assert postgres.psql("mastodon_probe", "SELECT count(*) FROM probe.reads") == "1\n"

    result = export(url, PGOPTIONS=through_the_view)
    assert result.returncode == 3
    assert "cannot execute INSERT in a read-only transaction" in result.stderr
    assert result.stdout == ""
    assert postgres.psql("mastodon_probe", "SELECT count(*) FROM probe.reads") == "1\n"
