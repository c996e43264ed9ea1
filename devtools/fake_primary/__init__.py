"""A fake primary service on loopback, speaking the generic ingest protocol.

It exists so Recovery can be tested against a real HTTP server that keeps the
protocol's promises (idempotency per author, rate-limit headers) and breaks in
the ways a real primary does (down, slow, 500s, stalls, lost answers).

Use it as a script:

    python devtools/fake_primary.py --port 0 --token t0ken --fail-rate 0.2 --seed 7

which prints `Fake primary: http://127.0.0.1:<port>` once listening and stops
cleanly on SIGTERM or SIGINT; or from tests, as `FakePrimary` (a context
manager). Standard library only.

Endpoints:
- `GET /health`: 200 `{"status": "ok"}`; 503 while down.
- `POST /posts`: the ingest protocol. 201 with the stored post
  (`{"id", "author", "text", "created_at", "in_reply_to"}`, `id` being the
  primary's) for a new post; the same (author, Idempotency-Key) again answers
  `idempotent_status` (200 by default, as Mastodon does; 409 optionally) with
  the post stored under that key, which is never stored twice. 401 bad token,
  400 bad JSON or missing fields, 422 text too long or unknown `in_reply_to`,
  429 over the rate limit.
- `DELETE /posts/{upstream_id}`: 204 when the post was there and is now
  deleted, 404 when there is no such post (any more); 401 bad token.
- `GET /received`: accepted posts in arrival order (deleted ones too).
  `GET /deleted`: deletions in order. `GET /stats`: counters.
- `FakePrimary.add_direct_post(author, text, key)`: a post the author made on
  the primary itself (not through the ingest), under an Idempotency-Key;
  not in `/received`.
- `GET /control`, `POST /control` (partial update of the mode),
  `POST /control/reset` (forget posts and counters). These test hooks have no
  authentication: the server binds to loopback.

Fault order for an ingest request (a post or a delete): down (503), latency,
stall (timeout), rate limit (429), token (401), fail rate (500), forced
status, validation, store (or delete), lost answer. When a rate limit is set, every answer from the rate-limit
step on carries X-RateLimit-Limit/Remaining/Reset.
"""

from devtools.fake_primary.mode import Mode
from devtools.fake_primary.server import DEFAULT_TOKEN, FakePrimary
from devtools.fake_primary.state import DeletedPost, ReceivedPost

__all__ = ["DEFAULT_TOKEN", "DeletedPost", "FakePrimary", "Mode", "ReceivedPost"]
