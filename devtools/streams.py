"""The table's DynamoDB Stream read locally, as Lambda reads it on AWS.

`StreamPoller` reads every shard of the stream through the DynamoDB Streams
API (DescribeStream, GetShardIterator, GetRecords) and hands each batch to
the app's stream handler in the event shape Lambda gives it
(`{"Records": [...]}`, each with `eventSourceARN`), so the same handler code
runs locally and on AWS. A batch whose handler fails is read again from the
same position next time, as Lambda retries a batch.

- `./scripts/run` polls on a thread (`PollingThread`), every
  STREAM_POLL_SECONDS.
- The functional tests deliver synchronously (`deliver_synchronously`):
  before each DynamoDB request moto serves, the stream is read to its end,
  so every read (the app's, or a test's) sees what the consumer derived
  from the writes before it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime

BATCH_SIZE = 100  # the app's mapping (app.py) asks Lambda for the same
DEFAULT_POLL_SECONDS = 0.2
# How often the shards are listed again: a stream's shards split and close
# over hours on AWS; moto's one shard never does.
SHARDS_LISTED_EVERY_SECONDS = 10.0

Deliver = Callable[[dict], object]


def streams_client():
    """A DynamoDB Streams client. botocore now sends a request naming a
    stream ARN to an account endpoint (`<account>.streams-ddb...`), which
    moto does not route: the regional endpoint, as before."""
    import boto3
    from botocore.config import Config

    return boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))


def stream_arn(dynamodb, table_name: str) -> str:
    return dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]


def lambda_record(record: dict, arn: str) -> dict:
    """A GetRecords record as Lambda delivers it: the same fields, the
    creation time in epoch seconds, and the stream's ARN."""
    body = dict(record["dynamodb"])
    created = body.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        body["ApproximateCreationDateTime"] = created.timestamp()
    return {**record, "dynamodb": body, "eventSourceARN": arn}


def lambda_event(records: list[dict], arn: str) -> dict:
    return {"Records": [lambda_record(record, arn) for record in records]}


class StreamPoller:
    """Reads each shard of one stream from its start, in order."""

    def __init__(self, streams, arn: str, deliver: Deliver, batch_size: int = BATCH_SIZE) -> None:
        self._streams = streams
        self._arn = arn
        self._deliver = deliver
        self._batch_size = batch_size
        self._iterators: dict[str, str | None] = {}  # shard id -> next iterator (None: shard done)
        self._listed_at = float("-inf")
        self._lock = threading.Lock()

    def poll(self) -> int:
        """Deliver every record there is now; the number delivered. Raises
        what the handler raised (the batch is then read again next time)."""
        with self._lock:
            return sum(self._drain(shard) for shard in self._shards())

    def _shards(self) -> list[str]:
        if time.monotonic() - self._listed_at >= SHARDS_LISTED_EVERY_SECONDS:
            description = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]
            for shard in description["Shards"]:
                if shard["ShardId"] not in self._iterators:
                    self._iterators[shard["ShardId"]] = self._streams.get_shard_iterator(
                        StreamArn=self._arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                    )["ShardIterator"]
            self._listed_at = time.monotonic()
        return list(self._iterators)

    def skip(self) -> int:
        """Read past every record there is now without delivering it (a test
        that changes an item behind the app's back, as an index's lag)."""
        deliver, self._deliver = self._deliver, lambda event: None
        try:
            return self.poll()
        finally:
            self._deliver = deliver

    def _drain(self, shard_id: str) -> int:
        delivered = 0
        while self._iterators.get(shard_id):
            answer = self._streams.get_records(ShardIterator=self._iterators[shard_id], Limit=self._batch_size)
            records = answer.get("Records", [])
            if records:
                self._deliver(lambda_event(records, self._arn))
                delivered += len(records)
            self._iterators[shard_id] = answer.get("NextShardIterator")
            if not records:
                break
        return delivered


class PollingThread(threading.Thread):
    """`./scripts/run`'s stream reader: polls until `stop` is set."""

    def __init__(self, poller: StreamPoller, interval: float, stop: threading.Event) -> None:
        super().__init__(name="stream", daemon=True)
        self._poller = poller
        self._interval = interval
        self._stop = stop

    def run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._poller.poll()
            except Exception as exc:  # Lambda would retry the batch; so does the next poll
                print(f"stream handler failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


class SynchronousDelivery:
    """Reads the stream before every DynamoDB request moto serves (in
    process). The consumer's own requests do not read it again (the read in
    progress goes on to the end anyway). A handler that fails (an outage a
    test made) leaves its batch to the next read, as Lambda retries it.
    With `end` (`localaws.stream_end`), the stream is only read when a
    record was added since the last read that delivered everything."""

    def __init__(self, poller: StreamPoller, end: Callable[[], int] | None = None) -> None:
        self._poller = poller
        self._end = end
        self._busy = threading.local()
        self._read_to = -1

    def read(self) -> None:
        if getattr(self._busy, "reading", False):
            return
        now_at = self._end() if self._end is not None else None
        if now_at is not None and now_at == self._read_to:
            return
        self._busy.reading = True
        try:
            self._poller.poll()
            self._read_to = now_at if now_at is not None else -1
        except Exception as exc:  # delivered again by the next request's read
            print(f"stream handler failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            self._busy.reading = False

    @contextlib.contextmanager
    def unseen(self) -> Iterator[None]:
        """Writes in this block never reach the consumer: what came before
        is delivered first, what they add to the stream is skipped."""
        self.read()
        self._busy.reading = True
        try:
            yield
        finally:
            self._poller.skip()
            self._busy.reading = False

    @contextlib.contextmanager
    def lagging(self) -> Iterator[None]:
        """The stream lags through this block: what came before is
        delivered first, what the block's writes add is delivered by the
        first DynamoDB request after it."""
        self.read()
        self._busy.reading = True
        try:
            yield
        finally:
            self._busy.reading = False


@contextlib.contextmanager
def deliver_synchronously(poller: StreamPoller, end: Callable[[], int] | None = None) -> Iterator[SynchronousDelivery]:
    from devtools.localaws import before_dynamodb_request

    delivery = SynchronousDelivery(poller, end)
    stop = before_dynamodb_request(delivery.read)
    try:
        yield delivery
    finally:
        stop()
