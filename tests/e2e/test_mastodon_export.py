"""scripts/mastodon_export.sql against a real PostgreSQL holding Mastodon's
tables as db/schema.rb defines them (mastodon_schema.sql): in full, with
`since` for each kind of change, and through scripts/mastodon_export_since
run by the README's own crontab lines as cron would run them.

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
WRAPPER = ROOT / "scripts" / "mastodon_export_since"
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
    updated_at: datetime | None = None  # accounts.updated_at; None: created_at
    user_updated_at: datetime | None = None  # users.updated_at; None: created_at

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
            updated_at=person.updated_at or person.created_at,
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
                updated_at=person.user_updated_at or person.created_at,
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


FAKE_AWS = """#!/bin/sh
# Keeps each call's arguments and standard input, numbered from 1; fails
# with FAKE_AWS_STATUS if that is set.
calls="$HOME/aws-calls"
mkdir -p "$calls"
n=$(( $(ls "$calls" | wc -l) / 2 + 1 ))
printf '%s\\n' "$@" > "$calls/$n.args"
cat > "$calls/$n.body"
exit "${FAKE_AWS_STATUS:-0}"
"""


@dataclass
class Upload:
    args: list[str]
    body: str


@dataclass
class CronRun:
    uploads: list[Upload]  # every upload the home's aws has seen so far
    stdin: str
    stderr: str
    returncode: int


@dataclass
class CronHome:
    """A cron user's home as the README sets it up: both scripts copied in,
    `aws` a stand-in, the crontab's variables, and cron's bare environment."""

    path: Path
    env: dict[str, str]

    @property
    def watermark(self) -> str | None:
        path = self.path / ".lifeboat-export" / "watermark"
        return path.read_text() if path.exists() else None

    def uploads(self) -> list[Upload]:
        calls = self.path / "aws-calls"
        count = len(list(calls.glob("*.args"))) if calls.exists() else 0
        return [
            Upload((calls / f"{n}.args").read_text().splitlines(), (calls / f"{n}.body").read_text())
            for n in range(1, count + 1)
        ]

    def run(self, schedule: str, **env: str) -> CronRun:
        """The crontab entry starting with `schedule`, run as cron runs it:
        its command field through cron's % rule, by /bin/sh, in the home."""
        (entry,) = [line for line in crontab_lines() if line.startswith(schedule + " ")]
        command, stdin = cron_command(entry.split(None, 5)[5])
        result = subprocess.run(
            ["/bin/sh", "-c", command],
            input=stdin,
            cwd=self.path,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        return CronRun(self.uploads(), stdin, result.stderr, result.returncode)


def crontab_lines() -> list[str]:
    return readme_block("crontab", "mastodon_export_since").splitlines()


def cron_home(path: Path, database_url: str) -> CronHome:
    variables = dict(line.split("=", 1) for line in crontab_lines() if re.match(r"[A-Z_]+=", line))
    assert set(variables) == {"MASTODON_DATABASE_URL", "BUCKET"}
    for script in (EXPORT, WRAPPER):
        shutil.copy(script, path / script.name)
    stand_ins = path / "bin"
    stand_ins.mkdir()
    (stand_ins / "aws").write_text(FAKE_AWS)
    (stand_ins / "aws").chmod(0o755)
    env = {
        "HOME": str(path),
        "LOGNAME": "root",
        "SHELL": "/bin/sh",
        "PATH": f"{stand_ins}:{pgserver_bin()}:/usr/bin:/bin",
        "TZ": FAR_ZONE,  # a host clock that is not on UTC
        "MASTODON_DATABASE_URL": database_url,
        "BUCKET": "test-bucket",
    }
    return CronHome(path, env)


@pytest.fixture(scope="module")
def cron_run(mastodon, tmp_path_factory) -> CronRun:
    """The README's 5-minute crontab entry, first run: no watermark yet, so
    a full export, as the README's export role reads it."""
    return cron_home(tmp_path_factory.mktemp("cron-home"), mastodon).run("*/5 * * * *")


@pytest.fixture(scope="module")
def changes(cron_run) -> list[dict]:
    (upload,) = cron_run.uploads
    return documents(upload.body)


def inbox_key_time(upload: Upload) -> datetime:
    assert upload.args[:4] == ["s3", "cp", "--only-show-errors", "-"]
    assert len(upload.args) == 5
    key = re.fullmatch(r"s3://test-bucket/mirror/inbox/(\d{8}T\d{6}Z)\.jsonl", upload.args[4])
    assert key, upload.args[4]
    return datetime.strptime(key.group(1), "%Y%m%dT%H%M%SZ")


def test_the_crontab_line_sends_one_object_to_the_inbox(cron_run):
    assert (cron_run.returncode, cron_run.stderr, cron_run.stdin) == (0, "", "")
    (upload,) = cron_run.uploads
    sent_at = inbox_key_time(upload)
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
    assert [secret for secret in held_back if secret and secret in cron_run.uploads[0].body] == []


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


# -- since: each kind of change, as Mastodon writes it --------------------------

# An hour ago: a revocation or an expiry then has already taken effect.
CHANGED_AT = NOW - timedelta(hours=1)
BEFORE_THE_CHANGE = CHANGED_AT - timedelta(minutes=1)
AFTER_THE_CHANGE = CHANGED_AT + timedelta(minutes=1)
LONG_AGO = NOW - timedelta(days=30)


@dataclass(frozen=True)
class Change:
    """One kind of change on the primary: the rows as Mastodon leaves them,
    the account fields the change shows (None: no account document is due),
    and the tokens whose documents are due."""

    person: Person
    account_shows: dict | None
    due: tuple[Token, ...]
    not_due: tuple[Token, ...] = ()


def live(owner: str, **columns) -> Token:
    return Token(owner, "read write follow", expect_revoked=False, **{"created_at": LONG_AGO, **columns})


def gone(owner: str, **columns) -> Token:
    return Token(owner, "read write follow", expect_revoked=True, **{"created_at": LONG_AGO, **columns})


CHANGES = {
    # UpdateAccountService: account.update(display_name: ...).
    "display name": Change(
        Person(101, "renamed", display_name="New Name", created_at=LONG_AGO, updated_at=CHANGED_AT),
        {"display_name": "New Name"},
        (live("renamed"),),
    ),
    # Account#suspend!: update!(suspended_at: ...); every token is refused.
    "suspension": Change(
        Person(102, "suspended", created_at=LONG_AGO, suspended_at=CHANGED_AT, updated_at=CHANGED_AT),
        {"suspended": True, "password_bcrypt": None},
        (gone("suspended"),),
    ),
    # User#change_password!: update(password: ...), then revoke_access!
    # touches every token's revoked_at.
    "password change": Change(
        Person(103, "repassworded", created_at=LONG_AGO, user_updated_at=CHANGED_AT, password=bcrypt_like("new")),
        {"password_bcrypt": bcrypt_like("new")},
        (gone("repassworded", revoked_at=CHANGED_AT),),
    ),
    # User#disable!: update!(disabled: true), the admin's freeze.
    "freeze": Change(
        Person(104, "frozen", created_at=LONG_AGO, disabled=True, user_updated_at=CHANGED_AT),
        {"suspended": False, "password_bcrypt": None},
        (gone("frozen"),),
    ),
    # Devise's confirm: confirmed_at set, saved.
    "confirmation": Change(
        Person(105, "confirmed", created_at=LONG_AGO, user_updated_at=CHANGED_AT),
        {"password_bcrypt": bcrypt_like("confirmed")},
        (live("confirmed"),),
    ),
    # User#approve!: update!(approved: true).
    "approval": Change(
        Person(106, "approved", created_at=LONG_AGO, user_updated_at=CHANGED_AT),
        {"password_bcrypt": bcrypt_like("approved")},
        (live("approved"),),
    ),
    # Account#memorialize!: update!(memorial: true).
    "memorial": Change(
        Person(107, "memorialised", created_at=LONG_AGO, memorial=True, updated_at=CHANGED_AT),
        {"suspended": False, "password_bcrypt": None},
        (gone("memorialised"),),
    ),
    # A new token: only it is due, not the account nor its older tokens.
    "token creation": Change(
        Person(108, "newtoken", created_at=LONG_AGO),
        None,
        (live("newtoken", created_at=CHANGED_AT),),
        (live("newtoken"),),
    ),
    # Doorkeeper's revoke: revoked_at = now.
    "revocation": Change(
        Person(109, "revoker", created_at=LONG_AGO),
        None,
        (gone("revoker", revoked_at=CHANGED_AT),),
        (live("revoker"),),
    ),
    # created_at + expires_in passed within the window.
    "expiry": Change(
        Person(110, "expiring", created_at=LONG_AGO),
        None,
        (Token("expiring", "read", expect_revoked=True, created_at=CHANGED_AT - timedelta(hours=2), expires_in=7200),),
        (live("expiring"),),
    ),
}
UNTOUCHED = Change(
    Person(111, "untouched", created_at=LONG_AGO),
    None,
    (),
    (
        live("untouched"),
        # Revoked, or expiring, at a time still to come: still live, unchanged.
        live("untouched", revoked_at=NOW + timedelta(hours=2)),
        live("untouched", expires_in=int(timedelta(days=60).total_seconds())),
        # Revoked and expired long before any since here: sent long ago.
        gone("untouched", revoked_at=LONG_AGO + timedelta(days=1)),
        Token("untouched", "read", expect_revoked=True, created_at=LONG_AGO, expires_in=3600),
    ),
)


@pytest.fixture(scope="module")
def changed_mastodon(postgres) -> str:
    kinds = [*CHANGES.values(), UNTOUCHED]
    people = [kind.person for kind in kinds]
    tokens = [token for kind in kinds for token in (*kind.due, *kind.not_due)]
    # Every row's created_at is that of its person unless set: confirmed_at
    # too, so only the updated_at columns say what changed.
    return postgres.create_database(
        "mastodon_changes",
        SCHEMA,
        seed(people, tokens),
        f"ALTER DATABASE mastodon_changes SET timezone TO '{FAR_ZONE}'",
    )


def exported(url: str, *variables: str) -> list[dict]:
    result = export(url, *variables)
    assert result.returncode == 0, result.stderr
    return documents(result.stdout)


def of(changes: list[dict], username: str) -> list[dict]:
    return [document for document in changes if document["username"] == username]


def since(moment: datetime) -> str:
    return f"since={moment.isoformat(sep=' ')}"


@pytest.mark.parametrize("kind", list(CHANGES))
def test_a_change_at_or_after_since_is_exported(changed_mastodon, kind):
    change = CHANGES[kind]
    username = change.person.username
    full = of(exported(changed_mastodon), username)
    incremental = of(exported(changed_mastodon, since(BEFORE_THE_CHANGE)), username)

    due_digests = {sha256_hex(token.secret) for token in change.due}
    expected = [
        document
        for document in full
        if (document["type"] == "account" and change.account_shows is not None)
        or document.get("token_sha256") in due_digests
    ]
    assert incremental == expected, "the same documents as the full export's, and only the due ones"
    if change.account_shows is not None:
        shown = account(incremental, username)
        assert {field: shown[field] for field in change.account_shows} == change.account_shows
    credentials = {
        document["token_sha256"]: document["revoked"] for document in incremental[1 if change.account_shows else 0 :]
    }
    assert credentials == {sha256_hex(token.secret): token.expect_revoked for token in change.due}


@pytest.mark.parametrize("kind", list(CHANGES))
def test_a_change_before_since_is_not_exported(changed_mastodon, kind):
    assert of(exported(changed_mastodon, since(AFTER_THE_CHANGE)), CHANGES[kind].person.username) == []


def test_what_did_not_change_is_not_exported(changed_mastodon):
    everything_since = exported(changed_mastodon, since(BEFORE_THE_CHANGE))
    assert of(everything_since, UNTOUCHED.person.username) == []
    assert len(everything_since) == sum(len(c.due) + (c.account_shows is not None) for c in CHANGES.values())


def test_a_since_before_everything_is_the_full_export(changed_mastodon):
    full = export(changed_mastodon)
    assert full.returncode == 0, full.stderr
    assert export(changed_mastodon, since(LONG_AGO - timedelta(days=1))).stdout == full.stdout


def test_a_since_naming_a_zone_is_read_in_it(changed_mastodon):
    # BEFORE_THE_CHANGE in UTC, written as the same instant at UTC+14.
    in_kiritimati = (BEFORE_THE_CHANGE + timedelta(hours=14)).isoformat(sep=" ") + "+14:00"
    changes = exported(changed_mastodon, f"since={in_kiritimati}")
    assert changes == exported(changed_mastodon, since(BEFORE_THE_CHANGE))
    assert changes != []


@pytest.mark.parametrize("value", ["yesterday-ish", ""])
def test_a_since_that_is_no_datetime_is_refused_with_nothing_written(changed_mastodon, value):
    result = export(changed_mastodon, f"since={value}")
    assert result.returncode == 3
    assert result.stdout == ""
    assert "invalid input syntax for type timestamp with time zone" in result.stderr
