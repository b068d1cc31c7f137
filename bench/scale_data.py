"""The scale benchmark's streams: the generated real-scale stream (with its warm-up: the same users'
earlier week, folded into the tables before the measured window) and the Taobao replay, as one shard's
records in arrival order, and the mappings' batches of them. See bench/scale.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, TypedDict

from streamrec_core.ddb_size import item_size
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.memory_store import MemoryStore
from streamrec_core.kinesis import KinesisRecord

from bench.common import Record, encode_events, fmt, percentile, real_events, stream_records


class Shop(TypedDict):
    """The generated shop's parameters (tools.generate_clickstream)."""

    users: int
    items: int
    zipf: float
    seed: int
    attributed_share: float


RATE = 800  # events/s per shard: 80% of a shard's 1,000 records/s (the cost model's shard target)
# The generated stream (the reference).
GENERATED: Final[Shop] = {"users": 25_000, "items": 78_000, "zipf": 0.9, "seed": 7, "attributed_share": 0.1}
LEAD_IN_S = 1800
# The table is warm, as in production: before the measured window, the same shop's users had a week of
# other sessions (their own seed), about 50 events per user on average (the user row keeps 50), folded
# straight into the rows (no metering). Without it every user row would be young and small.
WARM_DAYS = 7
WARM_EVENTS = 1_250_000
WARM_SESSION_SEED = 1007
SHARD = "shardId-000000000000"
OLD_TRENDING_SLOTS = 4  # the previous design's prod setting (cdk.json at 6aa4c9a)


# --- Streams --------------------------------------------------------------------------------------------
@dataclass
class Stream:
    """One shard's records in arrival order, and what the data is."""

    name: str
    records: list[KinesisRecord]
    attributed: set[int]  # sequence numbers of records carrying attribution (the filter passes them)
    facts: dict[str, Any]
    # Earlier events of the same users (source lines), folded into the tables before the measured records.
    warm: list[dict[str, Any]] = field(default_factory=list)


def _facts(sources: list[dict[str, Any]], records: list[KinesisRecord]) -> dict[str, Any]:
    per_second: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for source, record in zip(sources, records, strict=True):
        per_second[record.arrival_ms // 1000].append(source)
    full = [batch for batch in per_second.values() if len(batch) >= RATE // 2]
    return {
        "events": len(records),
        "seconds": len(per_second),
        "users": len({s["user_id"] for s in sources}),
        "items": len({s["item_id"] for s in sources}),
        "categories": len({s["category"] for s in sources}),
        "attributed_events": sum(1 for s in sources if "attribution" in s),
        "distinct_users_per_event_in_a_batch": round(
            sum(len({s["user_id"] for s in b}) for b in full) / max(1, sum(len(b) for b in full)), 3
        ),
        "distinct_items_per_event_in_a_batch": round(
            sum(len({s["item_id"] for s in b}) for b in full) / max(1, sum(len(b) for b in full)), 3
        ),
    }


def generated_stream(
    seconds: int,
    rate: int = RATE,
    warm_events: int = WARM_EVENTS,
    attributed_share: float = GENERATED["attributed_share"],
) -> Stream:
    from tools.generate_clickstream import DEFAULT_START, ShopShape, generate_events

    shape = ShopShape(zipf_exponent=GENERATED["zipf"])
    sources = generate_events(
        seconds * rate,
        users=GENERATED["users"],
        items=GENERATED["items"],
        seed=GENERATED["seed"],
        days=seconds / 86_400,
        shape=shape,
        lead_in_seconds=LEAD_IN_S,
        attributed_share=attributed_share,
    )
    warm_sources = (
        generate_events(
            warm_events,
            users=GENERATED["users"],
            items=GENERATED["items"],
            seed=GENERATED["seed"],
            start=DEFAULT_START - timedelta(days=WARM_DAYS),
            days=WARM_DAYS,
            shape=shape,
            session_seed=WARM_SESSION_SEED,
        )
        if warm_events
        else []
    )
    window_start = DEFAULT_START.timestamp()
    # Ingest receives each event a second after it happened: arrivals are event time + 1 s.
    records = stream_records(encode_events(sources, receipt_delay_s=1.0))
    facts = _facts(sources, records)
    facts["generator"] = {
        **GENERATED,
        "attributed_share": attributed_share,
        "seconds": seconds,
        "rate": rate,
        "lead_in_seconds": LEAD_IN_S,
    }
    # Sessions of the last warm-up day may run into the window: only what happened before it counts.
    warm = [w for w in warm_sources if w["unix_ts"] < window_start]
    facts["warm_up"] = {
        "events": len(warm),
        "days": WARM_DAYS,
        "users": len({w["user_id"] for w in warm_sources}),
        "session_seed": WARM_SESSION_SEED,
    }
    return Stream(
        f"generated, real scale ({fmt(seconds)} s)", records, _attributed(sources, records), facts, warm
    )


def warm_events(sources: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], int, int]]:
    """Warm-up events as the folds take them (schema fields and received_at, sequence number, arrival
    ms), numbered below the measured records of the same shard; made one at a time (memory)."""
    from tools.replay import format_timestamp, to_schema_event

    base = _WARM_SEQUENCE_BASE
    for index, source in enumerate(sources):
        event = to_schema_event(source, format_timestamp(source["unix_ts"]))
        event["received_at"] = format_timestamp(source["unix_ts"] + 1)
        yield event, base + index, (source["unix_ts"] + 1) * 1000


def taobao_stream(limit: int | None, rate: int = RATE) -> Stream:
    sources = real_events(limit)
    encoded = encode_events(sources, receipt_delay_s=1.0)
    # Event times stay the source's (sessions, decay); arrivals are re-timed to `rate` per second.
    start = encoded[0].arrival
    retimed = [Record(r.data, r.partition_key, start + i / rate) for i, r in enumerate(encoded)]
    records = stream_records(retimed)
    facts = _facts(sources, records)
    facts["replay"] = {
        "rate": rate,
        "source_days": round((sources[-1]["unix_ts"] - sources[0]["unix_ts"]) / 86400, 1),
    }
    return Stream(
        f"Taobao replay ({fmt(len(records))} events)", records, _attributed(sources, records), facts
    )


def _attributed(sources: list[dict[str, Any]], records: list[KinesisRecord]) -> set[int]:
    return {r.seq for s, r in zip(sources, records, strict=True) if s.get("attribution")}


def windows(
    records: Sequence[KinesisRecord], window_s: int, max_size: int
) -> list[tuple[int, list[KinesisRecord]]]:
    """(second the window closes, records) batches: records grouped by arrival window, cut at max_size."""
    grouped: dict[int, list[KinesisRecord]] = defaultdict(list)
    for record in records:
        grouped[record.arrival_ms // 1000 // window_s].append(record)
    out = []
    for index in sorted(grouped):
        batch = grouped[index]
        for start in range(0, len(batch), max_size):
            out.append(((index + 1) * window_s, batch[start : start + max_size]))
    return out


_WARM_SEQUENCE_BASE = int(stream_records([Record(b"{}", "k", 0.0)])[0].sequence_number) - 10**9


def warm_new(store: MemoryStore, warm: list[dict[str, Any]], cfg: FeatureConfig) -> dict[str, Any]:
    """Fold the warm-up events with the reference fold and store its rows (version 1, no bill)."""
    from streamrec_core.features.codec import to_item
    from streamrec_core.features.events import event_from_dict
    from streamrec_core.features.keys import item_key, partial_key, user_key
    from streamrec_core.features.reference import ReferenceFold

    reference = ReferenceFold(cfg, shard_id=SHARD)
    for event, seq, arrival in warm_events(warm):
        reference.apply(event_from_dict(event, shard_id=SHARD, sequence_number=str(seq), arrival_ms=arrival))
    for uid, row in reference.users.items():
        # The branches consumed the warm-up records long before the measured window: the hot path released
        # their outbox entries (a stored row keeps only entries still on their way). Keeping them would
        # bill each user's first write on a row bloated by up to outbox_cap stale entries.
        row.outbox = []
        store.items[user_key(uid)] = to_item(row, 1)
    for iid, item_row in reference.items.items():
        store.items[item_key(iid)] = to_item(item_row, 1)
    if reference.partial.entries:
        store.items[partial_key(SHARD)] = to_item(reference.partial, 1)
    histories = [len(row.history) for row in reference.users.values()]
    return {
        "users": len(reference.users),
        "item_rows": len(reference.items),
        "history_entries_p50": percentile(histories, 50),
        "history_entries_p90": percentile(histories, 90),
        "user_row_bytes_p50": percentile([item_size(store.items[user_key(u)]) for u in reference.users], 50),
    }


def warm_old(store: Any, warm: list[dict[str, Any]], cfg: Any) -> None:
    """The previous design's fold of the same warm-up events, stored the same way."""
    from bench.old_design.constants import ATTR_VERSION
    from bench.old_design.features import MemoryFeatures
    from bench.old_design.store import to_item

    memory = MemoryFeatures(cfg)
    for event, seq, arrival in warm_events(warm):
        memory.apply(event, shard_id=SHARD, sequence_number=seq, arrival_ms=arrival)
    for key, row in memory.rows.items():
        store.items[key] = to_item({**row, ATTR_VERSION: 1})
