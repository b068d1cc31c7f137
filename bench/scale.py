"""The scale benchmark (issue 12): DynamoDB units per event at real-scale cardinality, per consumer, the
hottest key at 100,000 events/s, serve's read units, and the targets, with the previous design's figures
from the same run beside every one of them.

Datasets (both run through the same code, one stream shard at `--rate` events/s):

- **generated, real scale**: `tools.generate_clickstream` with 25,000 users, 78,000 items, Zipf 0.9,
  sessions, 5 minutes at 800 events/s of a stream that has been running (a 30-minute lead-in: users are
  mid-session from the first second), 10% of sessions opened from a recommendation (an attributed
  impression + click). Each 1-second batch is ~95% distinct users and ~90% distinct items.
- **Taobao replay**: the real sample (67,402 events, 814 users, 8 days) in time order, its arrivals
  re-timed to `--rate` events/s. With 814 users a batch of 800 holds the same user several times, so rows
  coalesce: this is the small-sample figure, shown beside the real-scale one, never alone.

Records are made by ingest's own code (validated at the door, encoded), numbered as one Kinesis shard
and delivered as the event source mappings deliver them, interleaved as in production:

- the hot path (`process.logic.HotPath`): every second's records (window 0: Lambda polls a shard about
  once a second; at most the prod batch size of 1,000);
- then serve (`serve.logic.Recommender`): one recommendation per `1 / --requests-per-event` events, for
  users of that second's events, spread over containers that each serve `--requests-per-container`
  requests/s (each container keeps its own trending cache, as Lambda containers do);
- the items branch (`aggregate.logic.ItemAggregator`) and the experiments branch
  (`aggregate.logic.ExperimentCounter`, only records carrying `attribution`, as the mapping's filter
  passes them) each a window behind: every `--items-window` / `--experiments-window` seconds, on the
  records of the window that just closed (at most 10,000 records a batch).

All of them share one `streamrec_core.features.memory_store.MemoryStore`, which stores the codec's items
and bills as DynamoDB does (1 KB write units per item on the larger of old and new, failed conditional
writes billed, 4 KB read units, eventually consistent reads half, BatchGetItem per key, Query summed).
Each consumer reads and writes through a `Meter` that attributes the store's bill to it.

The baseline is the previous design (`bench.old_design`: main at 6aa4c9a) run in the same process on the
same batches: one process function folding every event into user, item-profile (both sides of up to 5
co-visitation partners), trending-slot and counter rows, committed with TransactWriteItems (2 write
units per KB), and its serve reading user, 4 global slot rows, 5 item profiles and 4 slot rows for each
of 3 categories, uncached.

Usage:
    python -m bench.scale                          # both datasets, 5 minutes of the generated stream
    python -m bench.scale --quick                  # 60 s generated, first 20,000 Taobao events; no save
    python -m bench.scale --dataset generated --seconds 120 --no-baseline
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aggregate.logic import ExperimentCounter, ItemAggregator
from process.logic import HotPath
from serve.logic import Recommender, ServeSettings
from streamrec_core.ddb_size import item_size
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.keys import Key, kind_of
from streamrec_core.features.memory_store import MemoryStore, read_units
from streamrec_core.kinesis import DeadLetter, KinesisRecord

from bench.common import (
    FEATURES,
    Record,
    encode_events,
    fmt,
    percentile,
    print_header,
    real_events,
    stream_records,
    write_result,
)
from bench.stores import Clock, KeyRates, Meter, Usage, _size

# --- The production shape ------------------------------------------------------------------------------
RATE = 800  # events/s per shard: 80% of a shard's 1,000 records/s (the cost model's shard target)
HOT_BATCH_SIZE = 1000  # prod event source mapping: batch size 1,000, window 0
AGGREGATE_BATCH_SIZE = 10_000
ITEMS_WINDOW_S = 10
EXPERIMENTS_WINDOW_S = 10
REQUESTS_PER_EVENT = 0.1  # 10,000 recommendation requests/s at 100,000 events/s (the cost model's)
REQUESTS_PER_CONTAINER_S = 40  # a serve container kept busy by ~25 ms requests
SCALE_EVENTS_PER_SECOND = 100_000
# Targets (issue 12).
TARGET_WRU_PER_EVENT = 2.0
TARGET_KEY_WRITES_PER_SECOND = 1000
TARGET_USD_PER_MILLION_PROVISIONED = 1.00
TARGET_USD_PER_MILLION_ON_DEMAND = 2.20
# Assumed DynamoDB latencies from a function in the same region (p50; moto's are not AWS's). Client CPU per
# request is measured (bench.ddb_client); the store sends BatchGetItem chunks one after another and
# PutItem calls from DEFAULT_WRITERS threads.
BATCH_GET_MS = 8.0
PUT_MS = 5.0
QUERY_MS = 10.0
TRANSACT_WRITE_MS = 25.0  # the previous design's TransactWriteItems of up to 100 rows
# The generated stream (the reference).
GENERATED = {"users": 25_000, "items": 78_000, "zipf": 0.9, "seed": 7, "attributed_share": 0.1}
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


def generated_stream(seconds: int, rate: int = RATE, warm_events: int = WARM_EVENTS) -> Stream:
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
        attributed_share=GENERATED["attributed_share"],
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
    facts["generator"] = {**GENERATED, "seconds": seconds, "rate": rate, "lead_in_seconds": LEAD_IN_S}
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


def warm_new(
    store: MemoryStore, warm: list[tuple[dict[str, Any], int, int]], cfg: FeatureConfig
) -> dict[str, Any]:
    """Fold the warm-up events with the reference fold and store its rows (version 1, no bill)."""
    from streamrec_core.features.codec import to_item
    from streamrec_core.features.events import event_from_dict
    from streamrec_core.features.keys import item_key, partial_key, user_key
    from streamrec_core.features.reference import ReferenceFold

    reference = ReferenceFold(cfg, shard_id=SHARD)
    for event, seq, arrival in warm_events(warm):
        reference.apply(event_from_dict(event, shard_id=SHARD, sequence_number=str(seq), arrival_ms=arrival))
    for uid, row in reference.users.items():
        store.items[user_key(uid)] = to_item(row, 1)
    for iid, row in reference.items.items():
        store.items[item_key(iid)] = to_item(row, 1)
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


# --- Metering -------------------------------------------------------------------------------------------
class NoDeadLetters:
    """The dead-letter port; the benchmark's records are valid, so a letter is a bug in the benchmark."""

    def send(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        raise AssertionError(f"benchmark record dead-lettered: {letters[0].reason}")


def _timed(usage: Usage, work: Callable[[], Any]) -> Any:
    started = time.process_time()
    result = work()
    usage.cpu_s += time.process_time() - started
    usage.batches += 1
    return result


def _no_sleep(_seconds: float) -> None:
    return None


# --- The new design -------------------------------------------------------------------------------------
def run_new(stream: Stream, cfg: FeatureConfig, options: argparse.Namespace) -> dict[str, Any]:
    store = MemoryStore()
    warmed = warm_new(store, stream.warm, cfg) if stream.warm else {}
    clock = Clock()
    rates = KeyRates(clock)
    usage = {name: Usage() for name in ("hot path", "items branch", "experiments branch", "serve")}
    meters = {name: Meter(store, u, rates) for name, u in usage.items()}
    hot = HotPath(meters["hot path"], NoDeadLetters(), cfg, sleep=_no_sleep)
    items = ItemAggregator(meters["items branch"], cfg, clock=clock, sleep=_no_sleep)
    experiments = ExperimentCounter(meters["experiments branch"], cfg, sleep=_no_sleep)
    containers = _containers(options)
    recommenders = [
        Recommender(meters["serve"], ServeSettings(experiments=()), clock=clock) for _ in range(containers)
    ]

    hot_batches = windows(stream.records, 1, HOT_BATCH_SIZE)
    item_batches = windows(stream.records, options.items_window, AGGREGATE_BATCH_SIZE)
    attributed = [r for r in stream.records if r.seq in stream.attributed]
    experiment_batches = windows(attributed, options.experiments_window, AGGREGATE_BATCH_SIZE)
    counts: Counter[str] = Counter()
    serve_stats = {"requests": 0, "round_trips": [], "read_units": [], "fallback": 0}
    step = max(1, round(1 / options.requests_per_event))
    position = 0
    next_items = next_experiments = 0
    for closes, batch in hot_batches:
        clock.now = float(closes)
        result = _timed(usage["hot path"], lambda batch=batch: hot.process(batch))
        assert result.failed_sequence_number is None, "hot path batch did not complete"
        counts["hot_applied"] += result.applied
        counts["hot_users_written"] += result.users_written
        for record in batch:
            position += 1
            if position % step:
                continue
            user_id = json.loads(record.data)["user_id"]  # type: ignore[arg-type]
            recommender = recommenders[serve_stats["requests"] % containers]
            u = usage["serve"]
            before_units, before_gets = u.read_units, u.batch_gets
            answer = _timed(u, lambda r=recommender, uid=user_id: r.recommendations(uid, k=10))
            serve_stats["requests"] += 1
            serve_stats["round_trips"].append(u.batch_gets - before_gets)
            serve_stats["read_units"].append(u.read_units - before_units)
            serve_stats["fallback"] += bool(answer.fallback)
        while next_items < len(item_batches) and item_batches[next_items][0] <= closes:
            aggregate = _timed(usage["items branch"], lambda b=item_batches[next_items][1]: items.process(b))
            _check_aggregate(aggregate, counts, "items")
            next_items += 1
        while (
            next_experiments < len(experiment_batches) and experiment_batches[next_experiments][0] <= closes
        ):
            b = experiment_batches[next_experiments][1]
            aggregate = _timed(usage["experiments branch"], lambda b=b: experiments.process(b))
            _check_aggregate(aggregate, counts, "experiments")
            next_experiments += 1
    # The last windows close after the last hot batch.
    clock.now += max(options.items_window, options.experiments_window)
    for _closes, batch in item_batches[next_items:]:
        _check_aggregate(_timed(usage["items branch"], lambda b=batch: items.process(b)), counts, "items")
    for _closes, batch in experiment_batches[next_experiments:]:
        _check_aggregate(
            _timed(usage["experiments branch"], lambda b=batch: experiments.process(b)), counts, "experiments"
        )
    client = options.client_cpu
    durations = {name: duration_ms(u, u.batches, client) for name, u in usage.items()}
    return {
        "store": store,
        "warm": warmed,
        "usage": usage,
        "attributed": attributed,
        "categories": stream.facts["categories"],
        "durations": durations,
        "rates": rates,
        "counts": counts,
        "serve": serve_stats,
        "containers": containers,
        "batches": {
            "hot": len(hot_batches),
            "items": len(item_batches),
            "experiments": len(experiment_batches),
        },
    }


def _containers(options: argparse.Namespace) -> int:
    return max(1, round(options.rate * options.requests_per_event / options.requests_per_container))


def _check_aggregate(result: Any, counts: Counter[str], branch: str) -> None:
    # The hot path runs ahead, so every record is ready; a record whose outbox entry is gone (the user had
    # more than outbox_cap effects since) is counted, as the function's AggregateUnresolved metric does.
    if result.failed_sequence_number is not None or result.not_ready:
        raise AssertionError(f"{branch} batch did not complete: {result}")
    counts[f"{branch}_unresolved"] += result.unresolved
    counts[f"{branch}_effects"] += result.effects
    counts[f"{branch}_rows_written"] += result.rows_written
    counts[f"{branch}_merges"] += bool(result.merged)


# --- The previous design --------------------------------------------------------------------------------
def old_config() -> Any:
    """The previous design's FeatureConfig with the same prod settings (and its 4 trending slots)."""
    from bench.old_design.features import FeatureConfig as OldConfig

    return OldConfig(
        user_ttl_seconds=FEATURES.user_ttl_seconds,
        item_ttl_seconds=FEATURES.item_ttl_seconds,
        allowed_lateness_ms=FEATURES.allowed_lateness_ms,
        trending_slots=OLD_TRENDING_SLOTS,
    )


def run_old(stream: Stream, options: argparse.Namespace) -> dict[str, Any]:
    from bench.old_design import features as old_features
    from bench.old_design import logic as old_logic
    from bench.old_design import serve as old_serve

    cfg = old_config()
    clock = Clock()
    store = _OldMeteredStore(clock)
    if stream.warm:
        warm_old(store._store, stream.warm, cfg)
    processor = old_logic.BatchProcessor(store, NoDeadLetters(), cfg, sleep=_no_sleep)  # type: ignore[arg-type]
    process_usage, serve_usage = Usage(), Usage()
    serve_stats: dict[str, Any] = {"requests": 0, "read_units": [], "round_trips": 0, "keys_read": 0}
    step = max(1, round(1 / options.requests_per_event))
    position = 0
    for closes, batch in windows(stream.records, 1, HOT_BATCH_SIZE):
        clock.now = float(closes)
        records = [
            old_logic.KinesisRecord(r.shard_id, r.sequence_number, r.partition_key, r.data, r.arrival_ms)
            for r in batch
        ]
        before_w, before_r = store.bill.write_units, store.bill.read_units
        result = _timed(process_usage, lambda rs=records: processor.process(rs))
        assert result.failed_sequence_number is None, "previous design's batch did not complete"
        process_usage.write_units += store.bill.write_units - before_w
        process_usage.read_units += store.bill.read_units - before_r
        for record in batch:
            position += 1
            if position % step:
                continue
            user_id = json.loads(record.data)["user_id"]  # type: ignore[arg-type]
            before = store.bill.read_units
            started = time.process_time()
            first_keys = old_serve.first_round_keys(user_id, OLD_TRENDING_SLOTS)
            first = store.read(first_keys, consistent=False)
            user = first.get(old_features.user_key(user_id))
            second = old_serve.second_round_keys(user, OLD_TRENDING_SLOTS)
            if second:
                store.read(second, consistent=False)
            serve_usage.cpu_s += time.process_time() - started
            serve_stats["round_trips"] += 1 + bool(second)
            serve_stats["keys_read"] += len(first_keys) + len(second)
            serve_stats["requests"] += 1
            serve_stats["read_units"].append(store.bill.read_units - before)
    serve_usage.read_units = sum(serve_stats["read_units"])
    serve_usage.batches = serve_stats["requests"]
    serve_usage.batch_gets = serve_stats["round_trips"]
    serve_usage.keys_read = serve_stats["keys_read"]
    process_usage.batch_gets = store.bill.batch_gets - serve_usage.batch_gets
    process_usage.puts = store.bill.items_written
    process_usage.keys_read = store.bill.keys_read - serve_usage.keys_read
    client = options.client_cpu
    durations = {"process": duration_ms(process_usage, process_usage.batches, client)}
    # A TransactWriteItems of up to 100 rows waits longer than a PutItem, and chunks commit in turn.
    durations["process"]["dynamodb_wait_ms"] = round(
        (process_usage.batch_gets * BATCH_GET_MS + old_transactions(store) * TRANSACT_WRITE_MS)
        / max(1, process_usage.batches),
        2,
    )
    durations["process"]["duration_ms"] = round(
        durations["process"]["cpu_ms"]
        + durations["process"]["client_cpu_ms"]
        + durations["process"]["dynamodb_wait_ms"],
        1,
    )
    durations["serve"] = duration_ms(serve_usage, serve_usage.batches, client)
    process_usage.write_units_by_kind = store.units_by_kind
    process_usage.sizes_by_kind = store.sizes_by_kind
    return {
        "store": store,
        "usage": {"process": process_usage, "serve": serve_usage},
        "rates": store.rates,
        "serve": serve_stats,
        "transactions": store.bill.transactions,
        "durations": durations,
    }


def old_transactions(store: Any) -> int:
    return int(store.bill.transactions)


class _OldMeteredStore:
    """The previous design's BilledStore, with writes per key per second, sizes and units by row kind."""

    def __init__(self, clock: Clock) -> None:
        from bench.old_design.store import BilledStore

        self._store = BilledStore()
        self.bill = self._store.bill
        self.rates = KeyRates(clock)
        self.units_by_kind: Counter[str] = Counter()
        self.sizes_by_kind: dict[str, list[int]] = defaultdict(list)

    def read(self, keys: Iterable[Any], *, consistent: bool = True) -> dict[Any, Any]:
        return self._store.read(keys, consistent=consistent)

    def commit(self, writes: Sequence[tuple[Any, Any, int]]) -> None:
        from bench.old_design.store import kind_of as old_kind

        old_sizes = {key: _size(self._store.item(key)) for key, _row, _v in writes}
        self._store.commit(writes)
        for key, _row, _expected in writes:
            size = item_size(self._store.item(key))  # type: ignore[arg-type]
            units = 2 * max(1, math.ceil(max(size, old_sizes[key]) / 1024))
            kind = old_kind(key)
            self.units_by_kind[kind] += units
            self.sizes_by_kind[kind].append(size)
            self.rates.add(key, units)


# --- Hot keys at 100,000 events/s -------------------------------------------------------------------------
# How a key's write rate grows with the number of shards, per kind of row:
# - owned by one shard's consumer (a user row: one hot-path lane; a trending partial: one shard's items
#   aggregator): its rate does not grow with shards;
# - written by every shard's consumer (co-visitation rows, counters; the previous design's item profiles
#   and counters): each shard's stream touches it about as often (users are spread over shards by hash),
#   so its rate grows with the number of shards;
# - the previous design's trending slot rows: shards share `OLD_TRENDING_SLOTS` slot rows by hash, so a
#   slot row's rate grows with shards / slots;
# - merged trending lists: rewritten once per merge interval, whatever the number of shards.
NEW_SCALING = {"user": "own", "partial": "own", "item": "shared", "counter": "shared", "list": "interval"}
OLD_SCALING = {
    "user": "own",
    "item": "shared",
    "counter": "shared",
    "trending, global": "slots",
    "trending, category": "slots",
}


def hot_keys(
    rates: KeyRates, seconds: float, kinds: Callable[[Any], str], scaling: dict[str, str]
) -> dict[str, Any]:
    shards = SCALE_EVENTS_PER_SECOND / RATE
    factors = {"own": 1.0, "interval": 1.0, "shared": shards, "slots": shards / OLD_TRENDING_SLOTS}
    per_kind: dict[str, dict[str, Any]] = {}
    for key, writes in rates.writes.items():
        kind = kinds(key)
        factor = factors[scaling.get(kind, "shared")]
        rate = writes / seconds * factor
        found = per_kind.get(kind)
        if found is None or rate > found["writes_per_s_at_100k"]:
            per_kind[kind] = {
                "key": _key_text(key),
                "writes_in_run": writes,
                "writes_per_s_in_run": round(writes / seconds, 3),
                "busiest_second_in_run": rates.busiest[key],
                "scaling": scaling.get(kind, "shared"),
                "factor": round(factor, 2),
                "writes_per_s_at_100k": round(rate, 2),
                "write_units_per_s_at_100k": round(rates.units[key] / seconds * factor, 2),
            }
    hottest = max(per_kind.values(), key=lambda k: k["writes_per_s_at_100k"])
    return {"shards_at_100k": shards, "by_kind": per_kind, "hottest": hottest}


def _key_text(key: Any) -> str:
    if isinstance(key, Key):
        return f"{key.table}:{key.pk}" + (f"/{key.sk}" if key.sk else "")
    table, pk, sk = key
    return f"{table}:{pk}" + (f"/{sk}" if sk else "")


# --- Row sizes ---------------------------------------------------------------------------------------------
def size_summary(sizes: dict[str, list[int]]) -> dict[str, dict[str, Any]]:
    out = {}
    for kind, values in sorted(sizes.items()):
        if not values:
            continue
        out[kind] = {
            "writes": len(values),
            "p50_bytes": round(percentile(values, 50)),
            "p90_bytes": round(percentile(values, 90)),
            "p99_bytes": round(percentile(values, 99)),
            "max_bytes": max(values),
            "over_1kb_share": round(sum(1 for v in values if v > 1024) / len(values), 4),
        }
    return out


# --- Durations -----------------------------------------------------------------------------------------
def duration_ms(usage: Usage, invocations: int, client: dict[str, float]) -> dict[str, float]:
    """An invocation's duration: its CPU here (in-memory store, codec included: an upper bound, the meter
    sizes every item it touches), the DynamoDB client's CPU per request (measured without a network) and
    the round trips at the assumed latencies (BatchGetItem chunks in turn, PutItem calls 16 at a time)."""
    from streamrec_core.features.dynamodb import DEFAULT_WRITERS

    if not invocations:
        return {"duration_ms": 0.0}
    cpu = usage.cpu_s * 1000 / invocations
    client_ms = (
        usage.puts * client["put_item_ms"] + usage.keys_read / 100 * client["batch_get_100_ms"]
    ) / invocations
    waits = (
        usage.batch_gets * BATCH_GET_MS
        + math.ceil(usage.puts / invocations / DEFAULT_WRITERS) * PUT_MS * invocations
        + usage.queries * QUERY_MS
    ) / invocations
    return {
        "cpu_ms": round(cpu, 2),
        "client_cpu_ms": round(client_ms, 2),
        "dynamodb_wait_ms": round(waits, 2),
        "duration_ms": round(cpu + client_ms + waits, 1),
    }


def user_row_parts(store: MemoryStore) -> dict[str, Any]:
    """What a stored user row's bytes are made of: each part's share, measured by encoding the row with
    that part emptied (its strings go with it), for all user rows and for those over 1 KB."""
    import dataclasses

    from streamrec_core.features.codec import from_item, to_item
    from streamrec_core.features.user_fold import UserRow

    parts = ("history", "recent", "outbox", "affinity", "bought", "watermarks")
    empty = {"history": [], "recent": [], "outbox": [], "affinity": {}, "bought": [], "watermarks": {}}
    totals: dict[str, Counter[str]] = {"all": Counter(), "over 1 KB": Counter()}
    rows: Counter[str] = Counter()
    for key, item in store.items.items():
        if kind_of(key) != "user":
            continue
        row = from_item(key, item)
        assert isinstance(row, UserRow)
        size = item_size(item)
        groups = ["all"] + (["over 1 KB"] if size > 1024 else [])
        measured = {
            part: size - item_size(to_item(dataclasses.replace(row, **{part: empty[part]}))) for part in parts
        }
        for group in groups:
            rows[group] += 1
            totals[group]["whole row"] += size
            for part, bytes_ in measured.items():
                totals[group][part] += bytes_
    return {
        group: {"rows": rows[group], **{k: round(v / rows[group]) for k, v in totals[group].items()}}
        for group in totals
        if rows[group]
    }


# --- Cost inputs ---------------------------------------------------------------------------------------
def new_cost_inputs(new: dict[str, Any], events: int, seconds: float) -> dict[str, Any]:
    """Profile fields of bench.cost_model from the new design's run (per event, scaled where needed)."""
    usage = new["usage"]
    hot, items, experiments, serve = (
        usage["hot path"],
        usage["items branch"],
        usage["experiments branch"],
        usage["serve"],
    )
    merge = merge_at_scale(new, seconds, new["categories"])
    aggregate_wru = items.write_units + experiments.write_units - merge["run_write_units"]
    aggregate_rru = items.read_units + experiments.read_units - merge["run_read_units"]
    return {
        "ddb_write_units_per_event": round(hot.write_units / events, 4),
        "ddb_process_read_units_per_event": round(hot.read_units / events, 4),
        "ddb_aggregate_write_units_per_event": round(
            aggregate_wru / events + merge["write_units_per_event_at_100k"], 4
        ),
        "ddb_aggregate_read_units_per_event": round(
            aggregate_rru / events + merge["read_units_per_event_at_100k"], 4
        ),
        "ddb_read_units_per_recommendation": round(serve.read_units / max(1, new["serve"]["requests"]), 4),
        "ddb_write_requests_per_event": round((hot.puts + items.puts + experiments.puts) / events, 4),
    }


def merge_at_scale(new: dict[str, Any], seconds: float, categories: int) -> dict[str, Any]:
    """The merges' cost in this run, and per event at 100,000 events/s.

    A merge reads every shard's partial in one Query and rewrites the global list and the category lists.
    In this one-shard run it cost what one partial and its categories cost; at S shards the Query reads S
    partials (S x the measured mean partial size) and at most every category of the catalogue has a
    list (bounded here by every category of the stream: S partials of up to 150 items each hold most of
    them). Merges happen once
    per interval whatever the rate, so per event they shrink as the rate grows.
    """
    usage = new["usage"]["items branch"]
    store: MemoryStore = new["store"]
    merges = max(1, new["counts"]["items_merges"])
    run_read = usage.read_units_by_kind.get("partial (Query)", 0.0)
    run_write = usage.write_units_by_kind.get("list", 0)
    partial_sizes = [item_size(i) for k, i in store.items.items() if kind_of(k) == "partial"]
    list_sizes = [item_size(i) for k, i in store.items.items() if kind_of(k) == "list"]
    categories_seen = max(1, categories)
    shards = SCALE_EVENTS_PER_SECOND / RATE
    partial = sum(partial_sizes) / max(1, len(partial_sizes))
    query_units = read_units(int(shards * partial), consistent=False)
    list_units = sum(max(1, math.ceil(s / 1024)) for s in list_sizes) / max(1, len(list_sizes))
    per_merge_write = list_units * (1 + categories_seen)  # categories: not more than seen in the run
    interval_s = FEATURES.merge_interval_ms / 1000
    return {
        "merges": merges,
        "run_read_units": run_read,
        "run_write_units": run_write,
        "mean_partial_bytes": round(partial),
        "category_lists": categories_seen,
        "query_read_units_at_100k": query_units,
        "write_units_per_merge_at_100k": round(per_merge_write, 1),
        "read_units_per_event_at_100k": round(query_units / interval_s / SCALE_EVENTS_PER_SECOND, 6),
        "write_units_per_event_at_100k": round(per_merge_write / interval_s / SCALE_EVENTS_PER_SECOND, 6),
        "run_seconds": seconds,
    }


def old_cost_inputs(old: dict[str, Any], events: int) -> dict[str, Any]:
    process, serve = old["usage"]["process"], old["usage"]["serve"]
    durations = old["durations"]
    return {
        "process": {"duration_ms": durations["process"]["duration_ms"]},
        "serve": {"duration_ms": durations["serve"]["duration_ms"]},
        "ddb_write_units_per_event": round(process.write_units / events, 4),
        "ddb_process_read_units_per_event": round(process.read_units / events, 4),
        "ddb_aggregate_write_units_per_event": 0.0,
        "ddb_aggregate_read_units_per_event": 0.0,
        "ddb_read_units_per_recommendation": round(serve.read_units / max(1, old["serve"]["requests"]), 4),
        "ddb_write_requests_per_event": round(old["transactions"] / events, 4),
        "stream_consumers": 1,
        "aggregate_branches": False,
    }


# --- Report ----------------------------------------------------------------------------------------------
def measure(stream: Stream, options: argparse.Namespace) -> dict[str, Any]:
    events = len(stream.records)
    seconds = stream.facts["seconds"]
    facts = stream.facts
    print(
        f"\n-- {stream.name}: {fmt(events)} events in {seconds} s on one shard, {fmt(facts['users'])} users, "
        f"{fmt(facts['items'])} items, {fmt(facts['categories'])} categories, "
        f"{fmt(facts['attributed_events'])} attributed"
    )
    print(
        f"   per 1-second hot-path batch: {facts['distinct_users_per_event_in_a_batch']:.3f} distinct users "
        f"and {facts['distinct_items_per_event_in_a_batch']:.3f} distinct items per event"
    )
    if stream.warm:
        print(
            f"   warm-up: {fmt(len(stream.warm))} earlier events of the same shop over {WARM_DAYS} days "
            "folded into both designs' tables first (not billed)"
        )
    started = time.perf_counter()
    new = run_new(stream, FEATURES, options)
    print(f"   new design ran in {time.perf_counter() - started:.0f} s")
    if new["warm"]:
        w = new["warm"]
        print(
            f"   warm table: {fmt(w['users'])} user rows (history p50 {w['history_entries_p50']:.0f}, p90 "
            f"{w['history_entries_p90']:.0f} entries; {w['user_row_bytes_p50']:.0f} B p50), "
            f"{fmt(w['item_rows'])} item rows"
        )
    old = None
    if not options.no_baseline:
        started = time.perf_counter()
        old = run_old(stream, options)
        print(f"   previous design ran in {time.perf_counter() - started:.0f} s")

    usage = new["usage"]
    out: dict[str, Any] = {"facts": facts, "events": events, "seconds": seconds}
    consumers = {name: u.as_dict(events) for name, u in usage.items()}
    total_wru = sum(u.write_units for u in usage.values()) / events
    total_rru = sum(u.read_units for u in usage.values()) / events
    out["new"] = {
        "consumers": consumers,
        "write_units_per_event": round(total_wru, 4),
        "read_units_per_event": round(total_rru, 4),
        "counts": dict(new["counts"]),
        "batches": new["batches"],
        "serve": _serve_summary(new["serve"], new["containers"]),
        "row_sizes": size_summary({k: v for u in usage.values() for k, v in u.sizes_by_kind.items()}),
        "hot_keys": hot_keys(new["rates"], seconds, kind_of, NEW_SCALING),
        "merge": merge_at_scale(new, seconds, facts["categories"]),
        "warm_up": new["warm"],
        "user_row_parts": user_row_parts(new["store"]),
        "durations": new["durations"],
        "cost_inputs": new_cost_inputs(new, events, seconds),
    }
    if old is not None:
        from bench.old_design.store import kind_of as old_kind

        process = old["usage"]["process"]
        out["old"] = {
            "consumers": {"process": process.as_dict(events), "serve": old["usage"]["serve"].as_dict(events)},
            "write_units_per_event": round(process.write_units / events, 4),
            "read_units_per_event": round(
                (process.read_units + old["usage"]["serve"].read_units) / events, 4
            ),
            "transactions_per_event": round(old["transactions"] / events, 4),
            "serve": {
                "requests": old["serve"]["requests"],
                "read_units_per_request": round(
                    sum(old["serve"]["read_units"]) / max(1, old["serve"]["requests"]), 3
                ),
            },
            "row_sizes": size_summary(process.sizes_by_kind),
            "durations": old["durations"],
            "hot_keys": hot_keys(old["rates"], seconds, old_kind, OLD_SCALING),
            "cost_inputs": old_cost_inputs(old, events),
        }
    out["cost"] = price(out)
    report(out)
    return out


def _serve_summary(stats: dict[str, Any], containers: int) -> dict[str, Any]:
    units = stats["read_units"]
    return {
        "requests": stats["requests"],
        "containers": containers,
        "read_units_per_request": round(sum(units) / max(1, len(units)), 3),
        "read_units_p50": percentile(units, 50),
        "read_units_p99": percentile(units, 99),
        "max_round_trips": max(stats["round_trips"], default=0),
        "mean_round_trips": round(sum(stats["round_trips"]) / max(1, len(stats["round_trips"])), 3),
        "fallback_share": round(stats["fallback"] / max(1, stats["requests"]), 3),
    }


def price(out: dict[str, Any]) -> dict[str, Any]:
    """The 100,000 events/s bill (bench.cost_model) with this run's figures, new design and baseline."""
    from bench.cost_model import (
        ON_DEMAND,
        PROFILES,
        PROVISIONED,
        Prices,
        apply_overrides,
        lever_bills,
        monthly_bill,
    )

    prices = Prices.load()
    priced: dict[str, Any] = {}
    for design in ("new", "old"):
        if design not in out:
            continue
        bill = monthly_bill(apply_overrides(PROFILES["large-100k"], out[design]["cost_inputs"]), prices)
        priced[design] = {
            "on_demand_per_million": round(bill.per_million_events(ON_DEMAND), 4),
            "provisioned_per_million": round(bill.per_million_events(PROVISIONED), 4),
            "on_demand_monthly": round(bill.total(ON_DEMAND)),
            "provisioned_monthly": round(bill.total(PROVISIONED)),
            "by_service_on_demand": {k: round(v) for k, v in bill.by_service(ON_DEMAND).items()},
            "by_service_provisioned": {k: round(v) for k, v in bill.by_service(PROVISIONED).items()},
        }
    priced["levers"] = lever_bills(apply_overrides(PROFILES["large-100k"], out["new"]["cost_inputs"]), prices)
    return priced


def report(out: dict[str, Any]) -> None:
    new, old = out["new"], out.get("old")
    print("   DynamoDB units per event (the previous design, same batches, beside):")
    print(f"     {'consumer':<22}{'WRU/event':>11}{'RRU/event':>11}{'puts/event':>12}   previous design")
    for name, c in new["consumers"].items():
        print(
            f"     {name:<22}{c['write_units_per_event']:>11.3f}{c['read_units_per_event']:>11.3f}"
            f"{c['puts_per_event']:>12.3f}"
        )
    line = f"     {'total':<22}{new['write_units_per_event']:>11.3f}{new['read_units_per_event']:>11.3f}"
    if old:
        line += (
            f"{'':>12}   {old['write_units_per_event']:.3f} WRU, {old['read_units_per_event']:.3f} RRU "
            f"({old['transactions_per_event']:.4f} TransactWriteItems/event)"
        )
    print(line)
    kinds = Counter()
    for c in new["consumers"].values():
        kinds.update(c["write_units_per_event_by_kind"])
    print("     WRU/event by row: " + ", ".join(f"{k} {v:.3f}" for k, v in kinds.most_common()))
    reads: Counter[str] = Counter()
    for name, c in new["consumers"].items():
        reads.update({f"{name}: {k}": v for k, v in c["read_units_per_event_by_kind"].items()})
    print("     RRU/event by consumer and row: " + ", ".join(f"{k} {v:.3f}" for k, v in reads.most_common()))
    if old:
        print(
            "     previous design WRU/event by row: "
            + ", ".join(
                f"{k} {v:.3f}"
                for k, v in Counter(
                    old["consumers"]["process"]["write_units_per_event_by_kind"]
                ).most_common()
            )
        )
    counts = new["counts"]
    print(
        f"   records with an item effect {fmt(counts.get('items_effects', 0))}, experiment effect "
        f"{fmt(counts.get('experiments_effects', 0))}; unresolved (outbox entry gone before the aggregator "
        f"read it) {fmt(counts.get('items_unresolved', 0) + counts.get('experiments_unresolved', 0))}; merges "
        f"{counts.get('items_merges', 0)}"
    )
    serve = new["serve"]
    print(
        f"   serve: {serve['read_units_per_request']:.2f} RRU per recommendation over {serve['requests']} requests "
        f"({serve['containers']} containers, trending cached 10 s), round trips max {serve['max_round_trips']}; "
        + (f"previous design {old['serve']['read_units_per_request']:.2f} RRU (no cache)" if old else "")
    )
    for group, parts in new["user_row_parts"].items():
        print(
            f"   user rows at the end, {group} ({fmt(parts['rows'])} rows), mean bytes: "
            + ", ".join(f"{k} {v}" for k, v in parts.items() if k != "rows")
        )
    print("   row sizes as written (bytes, p50 / p90 / p99 / max, share over 1 KB):")
    for design, sizes in (("new", new["row_sizes"]), ("previous", old["row_sizes"] if old else {})):
        for kind, s in sizes.items():
            print(
                f"     {design:<9}{kind:<20}{s['p50_bytes']:>7} {s['p90_bytes']:>7} {s['p99_bytes']:>7} "
                f"{s['max_bytes']:>7}   {s['over_1kb_share']:6.1%} of {fmt(s['writes'])} writes"
            )
    hot = new["hot_keys"]
    print(
        f"   hottest key at {fmt(SCALE_EVENTS_PER_SECOND)} events/s ({hot['shards_at_100k']:.0f} shards of {RATE} "
        "events/s; own rows keep their rate, shared rows x shards, old slot rows x shards/slots):"
    )
    for design, keys in (("new", hot), ("previous", old["hot_keys"] if old else None)):
        if keys is None:
            continue
        for kind, k in sorted(keys["by_kind"].items(), key=lambda kv: -kv[1]["writes_per_s_at_100k"]):
            print(
                f"     {design:<9}{kind:<20}{k['writes_per_s_at_100k']:>9.1f} writes/s "
                f"{k['write_units_per_s_at_100k']:>9.1f} WCU/s  ({k['writes_per_s_in_run']:.3f}/s in the run "
                f"x {k['factor']:g}, busiest second {k['busiest_second_in_run']})  {k['key']}"
            )
    merge = new["merge"]
    print(
        f"   merges: {merge['merges']} in the run; at 100k: Query {merge['query_read_units_at_100k']:g} RRU + "
        f"{merge['write_units_per_merge_at_100k']:g} WRU per merge ({merge['category_lists']} category lists), "
        f"{merge['write_units_per_event_at_100k']:.5f} WRU and {merge['read_units_per_event_at_100k']:.5f} RRU per event"
    )
    print("   function duration per invocation (CPU here + DynamoDB client CPU + assumed round trips):")
    for design, durations in (("new", new["durations"]), ("previous", old["durations"] if old else {})):
        for name, d in durations.items():
            if d.get("duration_ms"):
                print(
                    f"     {design:<9}{name:<20}{d['duration_ms']:>9.1f} ms = {d['cpu_ms']:.1f} CPU + "
                    f"{d['client_cpu_ms']:.1f} client + {d['dynamodb_wait_ms']:.1f} waiting"
                )
    cost = out["cost"]
    for design, label in (("new", "new design"), ("old", "previous design")):
        if design in cost:
            c = cost[design]
            services = sorted(c["by_service_on_demand"].items(), key=lambda kv: -kv[1])
            print(
                f"   cost at 100,000 events/s ({label}): {c['on_demand_per_million']:.3f} USD per million events "
                f"on demand, {c['provisioned_per_million']:.3f} provisioned; on demand by service (USD/month): "
                + ", ".join(f"{k} {v:,}" for k, v in services[:6])
            )
    for lever in cost.get("levers", []):
        print(
            f"     lever: {lever['lever']:<84} {lever['on_demand_per_million']:.3f} on demand, "
            f"{lever['provisioned_per_million']:.3f} provisioned"
        )
    print("   targets:")
    for verdict in targets(out):
        print(f"     {verdict['verdict']:<7} {verdict['target']}: {verdict['measured']}")


def targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    new, old, cost = out["new"], out.get("old"), out["cost"]

    def beside(value: str) -> str:
        return f" (previous design: {value})" if old else ""

    wru = new["write_units_per_event"]
    hottest = new["hot_keys"]["hottest"]
    rows = [
        {
            "target": f"<= {TARGET_WRU_PER_EVENT} WRU per event",
            "met": wru <= TARGET_WRU_PER_EVENT,
            "measured": f"{wru:.3f}" + beside(f"{old['write_units_per_event']:.3f}" if old else ""),
        },
        {
            "target": f"no key above {fmt(TARGET_KEY_WRITES_PER_SECOND)} writes/s at 100,000 events/s",
            "met": hottest["writes_per_s_at_100k"] <= TARGET_KEY_WRITES_PER_SECOND,
            "measured": f"{hottest['writes_per_s_at_100k']:.1f} ({hottest['key']})"
            + beside(
                f"{old['hot_keys']['hottest']['writes_per_s_at_100k']:.0f} ({old['hot_keys']['hottest']['key']})"
                if old
                else ""
            ),
        },
        {
            "target": f"<= {TARGET_USD_PER_MILLION_PROVISIONED:.2f} USD per million events, provisioned",
            "met": cost["new"]["provisioned_per_million"] <= TARGET_USD_PER_MILLION_PROVISIONED,
            "measured": f"{cost['new']['provisioned_per_million']:.3f}"
            + beside(f"{cost['old']['provisioned_per_million']:.3f}" if old else ""),
        },
        {
            "target": f"<= {TARGET_USD_PER_MILLION_ON_DEMAND:.2f} USD per million events, on demand",
            "met": cost["new"]["on_demand_per_million"] <= TARGET_USD_PER_MILLION_ON_DEMAND,
            "measured": f"{cost['new']['on_demand_per_million']:.3f}"
            + beside(f"{cost['old']['on_demand_per_million']:.3f}" if old else ""),
        },
    ]
    for row in rows:
        row["verdict"] = "met" if row["met"] else "MISSED"
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("generated", "taobao", "both"), default="both")
    parser.add_argument(
        "--seconds", type=int, default=300, help="seconds of the generated stream (default 300)"
    )
    parser.add_argument("--taobao-events", type=int, default=None, help="first N Taobao events (default all)")
    parser.add_argument("--rate", type=int, default=RATE, help="events/s of the shard (default 800)")
    parser.add_argument("--items-window", type=int, default=ITEMS_WINDOW_S)
    parser.add_argument("--experiments-window", type=int, default=EXPERIMENTS_WINDOW_S)
    parser.add_argument("--requests-per-event", type=float, default=REQUESTS_PER_EVENT)
    parser.add_argument("--requests-per-container", type=float, default=REQUESTS_PER_CONTAINER_S)
    parser.add_argument(
        "--warm-events",
        type=int,
        default=WARM_EVENTS,
        help=f"earlier events of the generated stream's users folded in first (default {WARM_EVENTS:,}; 0: cold)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the previous design")
    parser.add_argument(
        "--quick", action="store_true", help="60 s generated (200,000 warm-up events), 20,000 Taobao; no save"
    )
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = min(args.seconds, 60)
        args.warm_events = min(args.warm_events, 200_000)
        args.taobao_events = args.taobao_events or 20_000
    header = print_header("scale: DynamoDB units per event, hottest key, serve reads, targets (issue 12)")
    from bench.ddb_client import client_cpu

    args.client_cpu = client_cpu()
    print(
        f"   DynamoDB client CPU per request (bench.ddb_client, no network): PutItem "
        f"{args.client_cpu['put_item_ms']:.3f} ms, BatchGetItem of 100 rows {args.client_cpu['batch_get_100_ms']:.2f} ms; "
        f"assumed latencies: BatchGetItem {BATCH_GET_MS:g} ms, PutItem {PUT_MS:g} ms, Query {QUERY_MS:g} ms, "
        f"TransactWriteItems {TRANSACT_WRITE_MS:g} ms"
    )
    figures: dict[str, Any] = {
        "settings": {
            "rate": args.rate,
            "hot_batch_size": HOT_BATCH_SIZE,
            "items_window_s": args.items_window,
            "experiments_window_s": args.experiments_window,
            "aggregate_batch_size": AGGREGATE_BATCH_SIZE,
            "requests_per_event": args.requests_per_event,
            "requests_per_container_s": args.requests_per_container,
            "client_cpu": args.client_cpu,
            "assumed_latency_ms": {
                "batch_get_item": BATCH_GET_MS,
                "put_item": PUT_MS,
                "query": QUERY_MS,
                "transact_write_items": TRANSACT_WRITE_MS,
            },
        }
    }
    if args.dataset in ("generated", "both"):
        figures["generated"] = measure(generated_stream(args.seconds, args.rate, args.warm_events), args)
    if args.dataset in ("taobao", "both"):
        figures["taobao"] = measure(taobao_stream(args.taobao_events, args.rate), args)
    if not args.no_save and not args.quick:
        write_result("scale", header, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
