"""The 8 KB event limit, on both sides, through ingest and then the hot path: what the door accepts,
processing applies (never the dead-letter queue); one byte more is rejected at the door."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ingest.logic import Limits, kinesis_records, validate_batch
from process.logic import HotPath
from streamrec_core.constants import MAX_EVENT_BYTES
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.keys import user_key
from streamrec_core.features.memory_store import MemoryStore
from streamrec_core.features.user_fold import UserRow
from streamrec_core.kinesis import parse_kinesis_event

from tests.feature_kit import ListDeadLetters, kinesis_event, kinesis_record

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits(
    max_body_bytes=1024 * 1024, max_events=500, max_age=timedelta(days=7), max_future=timedelta(minutes=5)
)
CFG = FeatureConfig(user_ttl_seconds=86_400, item_ttl_seconds=3_600, allowed_lateness_ms=600_000)


def _normalized_size(raw: dict) -> int:
    batch = validate_batch([raw], now=NOW, limits=LIMITS)
    assert batch.events, batch.rejected
    return len(json.dumps(batch.events[0], separators=(",", ":"), ensure_ascii=False).encode())


def event_of_size(target: int) -> dict:
    """A view event whose normalized form (what ingest measures) is exactly `target` bytes."""
    raw: dict[str, Any] = {
        "event_id": "boundary-event",
        "event_type": "view",
        "user_id": "u-boundary",
        "item_id": "i-boundary",
        "timestamp": "2025-03-01T11:59:00.000Z",
        "page_url": "p" * 2048,
        "referrer": "r" * 2048,
        "properties": {"pad": ""},
    }
    # Whole properties of the longest allowed value until less than one is missing, then the padding.
    while (missing := target - _normalized_size(raw)) > 256:
        raw["properties"][f"k{len(raw['properties']):02d}"] = "v" * min(256, missing - 8)
    assert missing >= 0, missing
    raw["properties"]["pad"] = "x" * missing
    return raw


@pytest.mark.parametrize("size", [MAX_EVENT_BYTES - 41, MAX_EVENT_BYTES - 1, MAX_EVENT_BYTES])
def test_an_event_ingest_accepts_is_applied_by_the_process_function(size: int) -> None:
    # Given an event at (or just under) the limit, accepted at the door
    raw = event_of_size(size)
    batch = validate_batch([raw], now=NOW, limits=LIMITS)
    assert batch.rejected == [] and len(batch.events) == 1
    # When its Kinesis record (event + received_at, a few dozen bytes more) is processed
    data, partition_key = kinesis_records(batch, NOW)[0]
    assert len(data) > size  # the record is larger than the limit the event was held to
    records = parse_kinesis_event(kinesis_event([kinesis_record(data, 1, partition_key=partition_key)]))
    store, letters = MemoryStore(), ListDeadLetters()
    result = HotPath(store, letters, CFG, sleep=lambda s: None).process(records)
    # Then it is applied, not dead-lettered
    assert letters.sent == [] and result.dead_lettered == 0
    assert result.applied == 1 and result.failed_sequence_number is None
    row = store.row(user_key("u-boundary"))
    assert isinstance(row, UserRow) and row.counts == {"view": 1}


def test_one_byte_over_the_limit_is_rejected_at_the_door_naming_the_rule() -> None:
    raw = event_of_size(MAX_EVENT_BYTES + 1)
    batch = validate_batch([raw], now=NOW, limits=LIMITS)
    assert batch.events == []
    ((index, violations),) = batch.rejected
    assert index == 0
    assert [(v.field, v.rule) for v in violations] == [
        ("event", f"serialized event must be at most {MAX_EVENT_BYTES} bytes")
    ]
