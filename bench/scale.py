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
  records of the window that just closed (batch sizes and windows: cdk.json's prod `aggregate_source`,
  `experiments_source`: 10,000 and 1,000 records, 10 s).

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
import functools
import gc
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from aggregate.logic import ExperimentCounter, ItemAggregator
from process.logic import HotPath
from serve.logic import Recommender, ServeSettings
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.keys import kind_of
from streamrec_core.features.memory_store import MemoryStore
from streamrec_core.kinesis import DeadLetter, KinesisRecord

from bench.common import FEATURES, fmt, print_header, prod_profile, write_result
from bench.scale_data import (
    OLD_TRENDING_SLOTS,
    RATE,
    WARM_DAYS,
    WARM_EVENTS,
    Stream,
    generated_stream,
    taobao_stream,
    warm_new,
    warm_old,
    windows,
)
from bench.scale_figures import (
    BATCH_GET_MS,
    NEW_SCALING,
    OLD_SCALING,
    PUT_MS,
    QUERY_MS,
    TRANSACT_WRITE_MS,
    duration_ms,
    hot_keys,
    merge_at_scale,
    new_cost_inputs,
    old_cost_inputs,
    price,
    report,
    serve_summary,
    size_summary,
    targets,
    user_row_parts,
    write_units_at_scale,
)
from bench.stores import Clock, KeyRates, Meter, Usage, _size

if TYPE_CHECKING:
    from bench.old_design.logic import DeadLetter as OldDeadLetter

T = TypeVar("T")

# --- The production shape: the prod settings of cdk.json ------------------------------------------------
_PROD = prod_profile()
HOT_BATCH_SIZE = int(_PROD["event_source"]["batch_size"])  # window 0: a poll a second, ~800 records
ITEMS_BATCH_SIZE = int(_PROD["aggregate_source"]["batch_size"])
ITEMS_WINDOW_S = int(_PROD["aggregate_source"]["max_batching_window_seconds"])
EXPERIMENTS_BATCH_SIZE = int(_PROD["experiments_source"]["batch_size"])
EXPERIMENTS_WINDOW_S = int(_PROD["experiments_source"]["max_batching_window_seconds"])
REQUESTS_PER_EVENT = 0.1  # 10,000 recommendation requests/s at 100,000 events/s (the cost model's)
REQUESTS_PER_CONTAINER_S = 40  # a serve container kept busy by ~25 ms requests


# --- Metering -------------------------------------------------------------------------------------------
class NoDeadLetters:
    """The dead-letter port (of both designs); the benchmark's records are valid, so a letter is a bug in
    the benchmark."""

    def send(self, letters: Sequence[DeadLetter | OldDeadLetter]) -> NoReturn:
        raise AssertionError(f"benchmark record dead-lettered: {letters[0].reason}")


def _user_of(record: KinesisRecord) -> str:
    """The user of one of the benchmark's records (made from valid events: its data is there)."""
    assert record.data is not None
    return json.loads(record.data)["user_id"]


def _timed(usage: Usage, work: Callable[[], T]) -> T:
    """Run one invocation's work and add its CPU time to the consumer's.

    Everything alive before it (the in-memory tables, the stream) is frozen out of the cyclic garbage
    collector first: a function's container holds only its batch, and collections that walked this
    process's whole table would bill its CPU for a heap the function does not have.
    """
    gc.freeze()
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
    item_batches = windows(stream.records, options.items_window, ITEMS_BATCH_SIZE)
    attributed = [r for r in stream.records if r.seq in stream.attributed]
    experiment_batches = windows(attributed, options.experiments_window, EXPERIMENTS_BATCH_SIZE)
    counts: Counter[str] = Counter()
    serve_stats: dict[str, Any] = {"requests": 0, "round_trips": [], "read_units": [], "fallback": 0}
    step = max(1, round(1 / options.requests_per_event))
    position = 0
    next_items = next_experiments = 0
    for closes, batch in hot_batches:
        clock.now = float(closes)
        result = _timed(usage["hot path"], functools.partial(hot.process, batch))
        assert result.failed_sequence_number is None, "hot path batch did not complete"
        counts["hot_applied"] += result.applied
        counts["hot_users_written"] += result.users_written
        for record in batch:
            position += 1
            if position % step:
                continue
            user_id = _user_of(record)
            recommender = recommenders[serve_stats["requests"] % containers]
            u = usage["serve"]
            before_units, before_gets = u.read_units, u.batch_gets
            answer = _timed(u, functools.partial(recommender.recommendations, user_id, k=10))
            serve_stats["requests"] += 1
            serve_stats["round_trips"].append(u.batch_gets - before_gets)
            serve_stats["read_units"].append(u.read_units - before_units)
            serve_stats["fallback"] += bool(answer.fallback)
        while next_items < len(item_batches) and item_batches[next_items][0] <= closes:
            aggregate = _timed(
                usage["items branch"], functools.partial(items.process, item_batches[next_items][1])
            )
            _check_aggregate(aggregate, counts, "items")
            next_items += 1
        while (
            next_experiments < len(experiment_batches) and experiment_batches[next_experiments][0] <= closes
        ):
            b = experiment_batches[next_experiments][1]
            aggregate = _timed(usage["experiments branch"], functools.partial(experiments.process, b))
            _check_aggregate(aggregate, counts, "experiments")
            next_experiments += 1
    # The last windows close after the last hot batch.
    clock.now += max(options.items_window, options.experiments_window)
    for _closes, batch in item_batches[next_items:]:
        _check_aggregate(
            _timed(usage["items branch"], functools.partial(items.process, batch)), counts, "items"
        )
    for _closes, batch in experiment_batches[next_experiments:]:
        _check_aggregate(
            _timed(usage["experiments branch"], functools.partial(experiments.process, batch)),
            counts,
            "experiments",
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
    processor = old_logic.BatchProcessor(store, NoDeadLetters(), cfg, sleep=_no_sleep)
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
        result = _timed(process_usage, functools.partial(processor.process, records))
        assert result.failed_sequence_number is None, "previous design's batch did not complete"
        process_usage.write_units += store.bill.write_units - before_w
        process_usage.read_units += store.bill.read_units - before_r
        for record in batch:
            position += 1
            if position % step:
                continue
            user_id = _user_of(record)
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
            size = _size(self._store.item(key))
            units = 2 * max(1, math.ceil(max(size, old_sizes[key]) / 1024))
            kind = old_kind(key)
            self.units_by_kind[kind] += units
            self.sizes_by_kind[kind].append(size)
            self.rates.add(key, units)


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
        "serve": serve_summary(new["serve"], new["containers"]),
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
    out["new"]["write_units_per_event_at_100k"] = round(write_units_at_scale(out["new"]), 4)
    out["cost"] = price(out)
    out["targets"] = targets(out)
    report(out)
    return out


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
        help=f"earlier events of the generated users, folded in first (default {WARM_EVENTS:,}; 0: cold)",
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
        f"{args.client_cpu['put_item_ms']:.3f} ms, BatchGetItem of 100 rows "
        f"{args.client_cpu['batch_get_100_ms']:.2f} ms; "
        f"assumed latencies: BatchGetItem {BATCH_GET_MS:g} ms, PutItem {PUT_MS:g} ms, Query {QUERY_MS:g} ms, "
        f"TransactWriteItems {TRANSACT_WRITE_MS:g} ms"
    )
    figures: dict[str, Any] = {
        "settings": {
            "rate": args.rate,
            "hot_batch_size": HOT_BATCH_SIZE,
            "items_window_s": args.items_window,
            "experiments_window_s": args.experiments_window,
            "items_batch_size": ITEMS_BATCH_SIZE,
            "experiments_batch_size": EXPERIMENTS_BATCH_SIZE,
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
