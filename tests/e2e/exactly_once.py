"""The pipeline's exactly-once check, in one place: producers' acknowledgements against the stream and the
users table.

    sent = Sent()                        # filled by the producers: accepted ids, and how often each was sent
    problems = exactly_once_problems(local_pipeline, sent)
    assert problems == []                # each line names a user or event and what is wrong

What is checked, for the users the accepted events belong to (the e2e pipeline is shared, so nothing else
is looked at):
- the stream: every accepted event is in it, once if it was sent once (a resend after a lost answer may
  store it again, at most once per send), and no event of these users that was not accepted;
- the users table, as far as a user row can prove it:
  - its per-type counts equal the accepted events' types (counts cover every event ever applied);
  - its event-id digests are those of the user's *latest* accepted events in stream order, each once,
    as many as the row must keep: the row keeps the digests of events received within
    `FeatureConfig.dedup_window_ms` of the newest, at least `dedup_min` and at most `dedup_cap` of them
    (features.user_fold). A user with at most `dedup_min` events is checked id by id; for one with more,
    the older events are vouched for by the counts only (an event applied twice and another of the same
    type never applied would balance there, unless one of them is among the latest kept digests).

`_applied` is the only code that knows the user row's layout: change it there when the layout changes.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from streamrec_core.constants import OUTPUT_ITEMS_TABLE, OUTPUT_STREAM_NAME, OUTPUT_USERS_TABLE
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.dynamodb import DynamoStore
from streamrec_core.features.events import event_digest
from streamrec_core.features.keys import user_key
from streamrec_core.features.user_fold import UserRow
from streamrec_core.schema import decode_record


def _default(name: str) -> int:
    """A FeatureConfig default (the deployed functions' environment sets TTLs and lateness only)."""
    return next(spec.default for spec in fields(FeatureConfig) if spec.name == name)  # type: ignore[return-value]


# How many event-id digests a user row keeps: at least DEDUP_MIN, at most DEDUP_CAP (see the docstring).
DEDUP_MIN, DEDUP_CAP = _default("dedup_min"), _default("dedup_cap")


@dataclass
class Sent:
    """What producers were told: accepted event ids (with user and type) and sends per event id."""

    accepted: dict[str, tuple[str, str]] = field(default_factory=dict)
    sends: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sent(self, event_ids: Iterable[str]) -> None:
        """Count one send (one HTTP request) of each of `event_ids`."""
        with self._lock:
            self.sends.update(event_ids)

    def accept(self, event: dict) -> None:
        """Record that the API acknowledged `event` as stored."""
        with self._lock:
            self.accepted[event["event_id"]] = (event["user_id"], event["event_type"])

    def users(self) -> set[str]:
        return {user for user, _ in self.accepted.values()}


@dataclass(frozen=True)
class Applied:
    """What the users table applied for one user."""

    counts: dict[str, int]
    recent_digests: list[bytes]  # oldest first


def exactly_once_problems(target, sent: Sent) -> list[str]:
    """Every way the stream and the users table differ from "each accepted event exactly once"."""
    users = sent.users()
    copies, order = _stream_copies(target, users)
    problems = _stream_problems(copies, sent)
    applied = _applied(target, users)
    for user in sorted(users):
        mine = [(event_id, kind) for event_id, (owner, kind) in sent.accepted.items() if owner == user]
        expected_counts = dict(Counter(kind for _, kind in mine))
        row = applied[user]
        if row is None:
            problems.append(f"user {user}: no row, expected {len(mine)} events applied")
            continue
        if row.counts != expected_counts:
            problems.append(f"user {user}: counts {row.counts}, expected {expected_counts}")
        problems += _digest_problems(user, row.recent_digests, order.get(user, []))
    return problems


def _digest_problems(user: str, kept: list[bytes], in_stream: list[str]) -> list[str]:
    """The row's digests against the user's distinct events in stream order (the order they were folded)."""
    fewest, most = min(len(in_stream), DEDUP_MIN), min(len(in_stream), DEDUP_CAP)
    if not fewest <= len(kept) <= most:
        return [f"user {user}: {len(kept)} event ids kept, expected {fewest} to {most}"]
    latest = [event_digest(event_id) for event_id in in_stream[len(in_stream) - len(kept) :]]
    if kept != latest:
        missing = sum((Counter(latest) - Counter(kept)).values())
        extra = sum((Counter(kept) - Counter(latest)).values())
        return [
            f"user {user}: of the latest {len(kept)} events, {missing} not applied, {extra} ids applied "
            "twice or unknown" + ("" if missing or extra else " (out of order)")
        ]
    return []


def _stream_problems(copies: Counter[str], sent: Sent) -> list[str]:
    problems = []
    for event_id in sent.accepted:
        found, sends = copies.get(event_id, 0), sent.sends.get(event_id, 1)
        if not 1 <= found <= sends:
            problems.append(f"event {event_id}: {found} copies in the stream, sent {sends} time(s)")
    unknown = sorted(set(copies) - set(sent.accepted))
    if unknown:
        problems.append(f"{len(unknown)} events in the stream were never accepted, e.g. {unknown[:3]}")
    return problems


def _stream_copies(target, users: set[str]) -> tuple[Counter[str], dict[str, list[str]]]:
    """For events of `users`, over every shard from TRIM_HORIZON: event_id -> copies in the stream, and
    each user's distinct event ids in stream order (a user's events share a partition key: one shard)."""
    kinesis = target.client("kinesis")
    stream = target.outputs[OUTPUT_STREAM_NAME]
    copies: Counter[str] = Counter()
    order: dict[str, list[str]] = {}
    for page in kinesis.get_paginator("list_shards").paginate(StreamName=stream):
        for shard in page["Shards"]:
            iterator = kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while iterator:
                answer = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
                for record in answer["Records"]:
                    if record["PartitionKey"] in users:
                        event_id = decode_record(record["Data"])["event_id"]
                        if not copies[event_id]:
                            order.setdefault(record["PartitionKey"], []).append(event_id)
                        copies[event_id] += 1
                if not answer["Records"] and answer.get("MillisBehindLatest", 0) == 0:
                    break  # caught up with the shard's end
                iterator = answer.get("NextShardIterator")
    return copies, order


def _applied(target, users: set[str]) -> dict[str, Applied | None]:
    """Each user's applied counts and kept event-id digests (None: no row). Knows the row layout."""
    store = DynamoStore(
        target.client("dynamodb"),
        target.outputs[OUTPUT_USERS_TABLE],
        target.outputs[OUTPUT_ITEMS_TABLE],
        writers=1,
    )
    rows = store.get_many([user_key(user) for user in users], consistent=True)
    applied: dict[str, Applied | None] = {}
    for user in users:
        row = rows[user_key(user)]
        if row is None:
            applied[user] = None
        else:
            assert isinstance(row, UserRow)
            applied[user] = Applied(dict(row.counts), [recent.digest for recent in row.recent])
    return applied
