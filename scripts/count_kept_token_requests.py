"""Count the AWS requests and the DynamoDB write units per post that keeping
the author's primary token adds (issue 11, "Replay as the author").

Runs the real write path (Chalice's test client, moto in process) for a
mirrored user (with a password hash, as the export gives) of a Mastodon
primary, and counts every DynamoDB, S3 and KMS call with a botocore hook.
Write units follow DynamoDB's rules for transactions: 2 per started KB of
each item, where an Update or a ConditionCheck is charged at the item's
size (read back after the post: these items only grow), a Put at the item
it writes, plus 1 per started KB for each index whose keys a Put carries.
A cancelled transaction (the first post's check that finds no token) is
counted as if charged in full: an upper bound. Then the replay into the
fake Mastodon (a real server on loopback): the token reads and KMS
Decrypts per post sent, for the author whose token was kept and for one
with an admin-registered token only.
Usage: .venv/bin/python -m scripts.count_kept_token_requests [--posts N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections import Counter

from scripts.count_requests import GSI_KEYS, item_size, on_moto

TEXT = "A typical post of about a hundred characters, written while the primary was down. "
PRIMARY_TOKEN = "mastodon-app-token-" + "x" * 24  # the length of a Mastodon access token (43)
REGISTERED_TOKEN = "registered-token-of-bo-" + "y" * 20
BCRYPT = "$2b$12$" + "a" * 53


class Recorder:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.transactions: list[dict] = []
        self.reads: list[tuple[str, dict]] = []

    def __call__(self, model, params, **_):
        self.calls[f"{model.service_model.service_id}:{model.name}"] += 1
        if model.name == "TransactWriteItems":
            self.transactions.append(params)
        if model.name == "GetItem":
            self.reads.append((model.name, params))

    def reset(self) -> None:
        self.calls.clear()
        self.transactions.clear()
        self.reads.clear()


def write_units(transactions: list[dict], reader, table: str) -> float:
    units = 0.0
    for params in transactions:
        for entry in params["TransactItems"]:
            ((kind, op),) = entry.items()
            if kind == "Put":
                item = op["Item"]
            else:
                item = reader.get_item(TableName=table, Key=op["Key"]).get("Item") or op["Key"]
            kb = math.ceil(max(item_size(item), 1) / 1024)
            units += 2 * kb + (kb * len(GSI_KEYS & set(item)) if kind == "Put" else 0)
    return units


def measure(posts: int) -> None:
    from chalice.test import Client
    from moto import mock_aws

    import app
    from chalicelib import wiring
    from chalicelib.accounts.tokens import token_hash
    from chalicelib.aws import clients as aws
    from chalicelib.aws import dynamo, schema
    from chalicelib.mirror.changes import AccountChange, CredentialChange
    from chalicelib.upstream.tokens import ensure_key
    from devtools.fake_mastodon import FakeMastodon
    from devtools.localaws import serialize_moto_dynamodb

    serialize_moto_dynamodb()
    table = "lifeboat-local"
    primary = FakeMastodon({PRIMARY_TOKEN: "ana", REGISTERED_TOKEN: "bo"})
    os.environ["UPSTREAM_URL"] = primary.url
    primary.configure(down=True)
    with primary, mock_aws(), Client(app.app, stage_name="local") as client:
        wiring.reset()
        schema.ensure_resources(aws.new_client("dynamodb"), aws.new_client("s3"), table, table)
        ensure_key(wiring.kms(), wiring.upstream_settings().token_key_id)
        mirror = wiring.mirror_store()
        scopes = frozenset({"read", "write", "follow"})
        for name in ("ana", "bo"):
            mirror.apply_account(AccountChange(name, name.title(), "2026-01-01T00:00:00.000Z", False, BCRYPT))
        mirror.apply_credentials([CredentialChange("ana", token_hash(PRIMARY_TOKEN), scopes, False)])
        admin = {"Content-Type": "application/json", "Authorization": f"Bearer {os.environ['ADMIN_TOKEN']}"}
        rotated = client.http.post("/admin/users/bo/token", headers=admin, body="")
        lifeboat_token = json.loads(rotated.body)["token"]
        reader = aws.new_client("dynamodb")  # unhooked: its reads are not counted
        recorder = Recorder()
        for built in (wiring.dynamodb(), wiring.s3(), wiring.kms()):
            built.meta.events.register("before-parameter-build", recorder)

        def post(token: str) -> None:
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            reply = client.http.post("/posts", headers=headers, body=json.dumps({"text": TEXT}))
            assert reply.status_code == 201, reply.body

        def report(label: str, token: str, count: int) -> None:
            post(token)  # warm the token cache: authentication is not what is measured
            recorder.reset()
            for _ in range(count):
                post(token)
            units = write_units(recorder.transactions, reader, table)
            per_post = {name: round(n / count, 3) for name, n in sorted(recorder.calls.items())}
            print(
                f"{label}: {sum(recorder.calls.values()) / count:.2f} AWS requests/post {per_post}, "
                f"{units / count:.2f} WU/post"
            )

        def first_post() -> None:
            recorder.reset()
            post(PRIMARY_TOKEN)
            units = write_units(recorder.transactions, reader, table)
            print(
                f"first post with the primary token (seals it): {sum(recorder.calls.values())} AWS requests "
                f"{dict(sorted(recorder.calls.items()))}, {units:.2f} WU"
            )

        first_post()
        report("Lifeboat token (nothing kept)", lifeboat_token, posts)
        report("primary token, kept already (only checked)", PRIMARY_TOKEN, posts)
        user = reader.get_item(TableName=table, Key=dynamo.key("USER#ana", "PROFILE"))["Item"]
        print(
            f"user item with the kept token: {item_size(user)} bytes, of which kept_token "
            f"{len(user['kept_token']['S'])} and password_bcrypt {len(user['password_bcrypt']['B'])} "
            "(moto's ciphertexts)"
        )

        registered = client.http.put(
            "/admin/users/bo/upstream-token", headers=admin, body=json.dumps({"token": REGISTERED_TOKEN})
        )
        assert registered.status_code == 204, registered.body
        primary.configure(down=False)
        recorder.reset()
        for _ in range(50):
            wiring.maintenance().run(lambda: 60.0)
            if wiring.recovery_admin().status()["backlog"] == 0:
                break
        sent = Counter(status.author for status in primary.statuses())
        for author, label in (("ana", "kept token"), ("bo", "admin-registered token only")):
            reads = token_reads(recorder.reads, author)
            print(
                f"replay, {label}: {sent[author]} posts sent; per post: "
                + ", ".join(f"{what} {n / sent[author]:.3f}" for what, n in sorted(reads.items()))
            )
        print(f"replay: KMS Decrypt {recorder.calls['KMS:Decrypt']} in all")


def token_reads(reads: list[tuple[str, dict]], author: str) -> Counter[str]:
    """The GetItems of `author`'s tokens during the replay, by kind."""
    found: Counter[str] = Counter()
    for name, params in reads:
        key = params.get("Key", {})
        if name != "GetItem" or key.get("PK", {}).get("S") != f"USER#{author}":
            continue
        if params.get("ProjectionExpression") == "kept_token":
            found["kept-token GetItem"] += 1
        elif key["SK"]["S"] == "UPSTREAM_TOKEN":
            found["registered-token GetItem"] += 1
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200)
    args = parser.parse_args()
    on_moto(
        ADMIN_TOKEN="count-requests-admin",
        POSTS_PER_MINUTE="1000000",
        UPSTREAM_URL="http://127.0.0.1:9",
        UPSTREAM_KIND="mastodon",
        MIRROR_ENABLED="true",
        HEALTH_UP_AFTER="1",
        REPLAY_MAX_RPS="1000",
    )
    measure(args.posts)


if __name__ == "__main__":
    main()
