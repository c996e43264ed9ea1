"""Count the DynamoDB requests per home-timeline page (Mastodon API) for a
user following many accounts, and what the stream's fan-out cost to get there.

Runs the real read path (Chalice's test client, moto in-process) and counts
every AWS call with a botocore event hook, as scripts/count_requests.py does.
The reader follows `--following` accounts (imported from Mastodon's CSV
export format); each posts `--posts-each` statuses. The table's stream is
read as Lambda reads it (devtools/streams.py) and handed to the app's stream
handler, which fans the posts out and backfills the follows. A page's
requests are split into the home timeline's own (the Query of HOME#<reader>
and the BatchGetItem of its posts) and the Account entities' (pattern 24,
as for every timeline).
Usage: .venv/bin/python -m scripts.count_home_requests [--following 200] [--posts-each 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections import Counter

from scripts.count_requests import Recorder as WriteRecorder
from scripts.count_requests import on_moto


class Recorder(WriteRecorder):
    """Every call, and apart the home timeline's own reads: Queries of a
    HOME# partition and BatchGetItems of posts."""

    def __init__(self) -> None:
        super().__init__()
        self.home: Counter[str] = Counter()

    def __call__(self, model, params, **kwargs):
        super().__call__(model=model, params=params, **kwargs)
        if _is_home_read(model.name, params):
            self.home[f"{model.service_model.service_id}:{model.name}"] += 1

    def reset(self) -> None:
        super().reset()
        self.home.clear()


def _is_home_read(operation: str, params: dict) -> bool:
    if operation == "Query":
        return params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "").startswith("HOME#")
    if operation == "BatchGetItem":
        keys = [key for table in params["RequestItems"].values() for key in table["Keys"]]
        return any(key["PK"]["S"].startswith(("POST#", "MIRROR#")) for key in keys)
    return False


def _summary(calls: Counter[str]) -> str:
    return f"{sum(calls.values())} {dict(sorted(calls.items()))}"


def measure(following: int, posts_each: int, pages: int) -> None:
    from chalice.test import Client
    from moto import mock_aws

    import app
    from chalicelib import wiring
    from chalicelib.aws import clients as aws
    from chalicelib.aws import schema
    from devtools.localaws import patch_moto_dynamodb
    from devtools.streams import StreamPoller, stream_arn, streams_client

    patch_moto_dynamodb()
    with mock_aws(), Client(app.app, stage_name="local") as client:
        wiring.reset()
        schema.ensure_resources(aws.new_client("dynamodb"), aws.new_client("s3"), "lifeboat-local", "lifeboat-local")
        arn = stream_arn(wiring.dynamodb(), "lifeboat-local")
        stream = StreamPoller(streams_client(), arn, lambda event: app.stream_changes(event, None), batch_size=1000)
        admin = {"Authorization": f"Bearer {os.environ['ADMIN_TOKEN']}"}

        def new_user(name: str) -> str:
            reply = client.http.post(
                "/admin/users",
                headers={**admin, "Content-Type": "application/json"},
                body=json.dumps({"username": name}),
            )
            assert reply.status_code == 201, reply.body
            return json.loads(reply.body)["token"]

        reader = new_user("reader")
        names = [f"followed{i:03d}" for i in range(following)]
        for name in names:
            token = new_user(name)
            for n in range(posts_each):
                headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
                reply = client.http.post("/posts", headers=headers, body=json.dumps({"text": f"{name} says {n}"}))
                assert reply.status_code == 201, reply.body
        recorder = Recorder()
        wiring.dynamodb().meta.events.register("before-parameter-build", recorder)
        stream.poll()
        fanned = f"{_summary(recorder.calls)}, {recorder.wcu:.0f} WU"
        print(f"stream, fanning out {following * posts_each} posts (to their authors): {fanned}")
        export = "Account address,Show boosts,Notify on new posts,Languages\n" + "".join(
            f"{name}@lifeboat.example,true,false,\n" for name in names
        )
        imported = client.http.post(
            "/admin/users/reader/following", headers={**admin, "Content-Type": "text/csv"}, body=export
        )
        assert json.loads(imported.body)["followed"] == following, imported.body
        recorder.reset()
        stream.poll()
        print(f"stream, backfilling {following} follows: {_summary(recorder.calls)}, {recorder.wcu:.0f} WU")
        reply = client.http.post(
            "/posts",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {reader}"},
            body=json.dumps({"text": "the reader says hi"}),
        )
        assert reply.status_code == 201, reply.body
        recorder.reset()
        stream.poll()
        print(f"stream, fanning out 1 post of the reader (no followers): {_summary(recorder.calls)}")

        headers = {"Authorization": f"Bearer {reader}"}
        client.http.get("/api/v1/accounts/verify_credentials", headers=headers)  # warm the token cache
        path = "/api/v1/timelines/home"
        for page in range(1, pages + 1):
            recorder.reset()
            reply = client.http.get(path, headers=headers)
            assert reply.status_code == 200, reply.body
            shown = json.loads(reply.body)
            calls: Counter[str] = recorder.calls
            own, entities = recorder.home, Counter(calls) - recorder.home
            print(
                f"home page {page} ({len(shown)} statuses, {len({s['account']['id'] for s in shown})} authors), "
                f"following {following}: {sum(calls.values())} DynamoDB requests: "
                f"home timeline {_summary(own)}; Account entities {_summary(entities)}"
            )
            found = re.search(r'<[^>]*(/api/v1/timelines/home\?[^>]*)>; rel="next"', _header(reply.headers, "link"))
            if not found:
                break
            path = found.group(1)


def _header(headers, name: str) -> str:
    return next((value for key, value in headers.items() if key.lower() == name), "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--following", type=int, default=200)
    parser.add_argument("--posts-each", type=int, default=2)
    parser.add_argument("--pages", type=int, default=2)
    args = parser.parse_args()
    on_moto(ADMIN_TOKEN="count-home-admin")
    measure(args.following, args.posts_each, args.pages)


if __name__ == "__main__":
    main()
