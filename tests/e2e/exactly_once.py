"""The pipeline's exactly-once check, in one place: producers' acknowledgements against the stream and the
feature tables.

    sent = Sent()                        # filled by the producers: accepted ids, and how often each was sent
    problems = exactly_once_problems(local_pipeline, sent)
    assert problems == []                # each line names a user or event and what is wrong

What is checked, for the users the accepted events belong to (the e2e pipeline is shared, so nothing else
is looked at):
- the stream: every accepted event is in it, once if it was sent once (a resend after a lost answer may
  store it again, at most once per send), and no event of these users that was not accepted;
- the users table: each user's per-type counts equal the accepted events' types, and the event-id
  digests the row remembers are exactly those of the accepted events, each once.

`_applied` is the only code that knows the user row's layout: change it there when the layout changes.
A user may have at most `REMEMBERED_IDS` accepted events (the ids a user row keeps).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from streamrec_core.constants import (
    OUTPUT_ITEMS_TABLE,
    OUTPUT_STREAM_NAME,
    OUTPUT_USERS_TABLE,
    USER_COUNTS,
    USER_RECENT_IDS,
)
from streamrec_core.feature_store import FeatureStore
from streamrec_core.features import FeatureConfig, event_digest, user_key
from streamrec_core.schema import decode_record

# How many event ids a user row remembers: a user with more events cannot be checked id by id.
REMEMBERED_IDS = next(f.default for f in fields(FeatureConfig) if f.name == "recent_ids_cap")


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
    """What the feature tables applied for one user."""

    counts: dict[str, int]
    recent_digests: list[str]


def exactly_once_problems(target, sent: Sent) -> list[str]:
    """Every way the stream and the users table differ from "each accepted event exactly once"."""
    users = sent.users()
    problems = _stream_problems(_stream_copies(target, users), sent)
    applied = _applied(target, users)
    for user in sorted(users):
        mine = [(event_id, kind) for event_id, (owner, kind) in sent.accepted.items() if owner == user]
        if len(mine) > REMEMBERED_IDS:
            problems.append(
                f"user {user}: {len(mine)} events, more than the {REMEMBERED_IDS} ids a row keeps"
            )
        expected_counts = dict(Counter(kind for _, kind in mine))
        row = applied[user]
        if row is None:
            problems.append(f"user {user}: no row, expected {len(mine)} events applied")
            continue
        if row.counts != expected_counts:
            problems.append(f"user {user}: counts {row.counts}, expected {expected_counts}")
        digests = Counter(row.recent_digests)
        expected_digests = Counter(event_digest(event_id) for event_id, _ in mine)
        if digests != expected_digests:
            missing = sum((expected_digests - digests).values())
            extra = sum((digests - expected_digests).values())
            problems.append(
                f"user {user}: {missing} accepted event ids not applied, {extra} applied twice or unknown"
            )
    return problems


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


def _stream_copies(target, users: set[str]) -> Counter[str]:
    """event_id -> copies in the stream, over every shard from TRIM_HORIZON, for events of `users`."""
    kinesis = target.client("kinesis")
    stream = target.outputs[OUTPUT_STREAM_NAME]
    copies: Counter[str] = Counter()
    for page in kinesis.get_paginator("list_shards").paginate(StreamName=stream):
        for shard in page["Shards"]:
            iterator = kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while iterator:
                answer = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
                for record in answer["Records"]:
                    if record["PartitionKey"] in users:
                        copies[decode_record(record["Data"])["event_id"]] += 1
                if not answer["Records"] and answer.get("MillisBehindLatest", 0) == 0:
                    break  # caught up with the shard's end
                iterator = answer.get("NextShardIterator")
    return copies


def _applied(target, users: set[str]) -> dict[str, Applied | None]:
    """Each user's applied counts and remembered event-id digests (None: no row). Knows the row layout."""
    store = FeatureStore(
        target.client("dynamodb"), target.outputs[OUTPUT_USERS_TABLE], target.outputs[OUTPUT_ITEMS_TABLE]
    )
    rows = store.read([user_key(user) for user in users])
    applied: dict[str, Applied | None] = {}
    for user in users:
        row = rows[user_key(user)]
        applied[user] = None if row is None else Applied(dict(row[USER_COUNTS]), list(row[USER_RECENT_IDS]))
    return applied
