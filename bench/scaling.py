"""Figure 7: how throughput and writes per event change with batch size and with key skew.

For each dataset (the real sample, and generated streams with different Zipf exponents and user
counts) and each batch size (100, 500, 1000):

- throughput: events/s (CPU time, one core) of ``BatchProcessor.process`` with the no-I/O store, as in
  ``bench.process_throughput``;
- writes: TransactWriteItems requests, items and write units per event, counted by
  `bench.stores.MarshallingStore`, which stores exactly the typed items the feature store sends (one
  commit = one TransactWriteItems request; ``bench.dynamodb_writes`` checks the same counts against moto).

Usage:
    python -m bench.scaling                       # every dataset x batch sizes 100, 500, 1000
    python -m bench.scaling --quick               # 10,000 events per dataset
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from process.logic import BatchProcessor, parse_kinesis_event

from bench.common import dataset, encode_events, fmt, kinesis_batches, print_header, write_result
from bench.process_throughput import NoDeadLetters, pin_to_one_core, streamrec_runner
from bench.stores import DictStore, MarshallingStore

BATCH_SIZES = (100, 500, 1000)
# name -> generator options (tools.generate_clickstream): skew of item popularity and number of users.
GENERATED = {
    "generated zipf 0.6, 1k users": {"zipf": 0.6, "users": 1_000, "items": 5_000},
    "generated zipf 0.9, 1k users": {"zipf": 0.9, "users": 1_000, "items": 5_000},
    "generated zipf 1.2, 1k users": {"zipf": 1.2, "users": 1_000, "items": 5_000},
    "generated zipf 0.9, 20k users": {"zipf": 0.9, "users": 20_000, "items": 20_000},
}


def measure(batches: list[Any], events: int) -> dict[str, Any]:
    run = streamrec_runner(DictStore())
    started = time.process_time()
    for batch in batches:
        run(batch)
    cpu = time.process_time() - started

    from bench.common import FEATURES

    store = MarshallingStore()
    processor = BatchProcessor(store, NoDeadLetters(), FEATURES, sleep=lambda s: None)
    for batch in batches:
        processor.process(parse_kinesis_event(batch.event))
    writes = store.writes
    return {
        "events_per_second": round(events / cpu),
        "write_requests_per_event": round(writes.requests / events, 4),
        "items_written_per_event": round(writes.items / events, 3),
        "write_units_per_event": round(writes.units / events, 3),
        "read_requests_per_event": round(store.reads / events, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=30_000, help="events per dataset (default 30,000)")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="10,000 events per dataset")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.events = 10_000
    header = print_header("scaling: batch size and key skew vs throughput and writes per event")
    print(
        f"   {pin_to_one_core()}; {fmt(args.events)} events per dataset, {args.shards} shards, one pass each"
    )
    datasets: dict[str, list[dict[str, Any]]] = {"real (Taobao sample)": dataset("real", limit=args.events)}
    for name, options in GENERATED.items():
        datasets[name] = dataset("generated", limit=args.events, **options)
    figures: dict[str, Any] = {"events_per_dataset": args.events, "shards": args.shards, "datasets": {}}
    print(
        f"   {'dataset':<32} {'batch':>5} {'events/s':>10} {'writes/ev':>10} {'items/ev':>9} "
        f"{'WRU/ev':>7} {'reads/ev':>9}"
    )
    for name, sources in datasets.items():
        records = encode_events(sources)
        rows = {}
        for size in BATCH_SIZES:
            batches = kinesis_batches(records, batch_size=size, shards=args.shards)
            result = measure(batches, len(records))
            rows[str(size)] = result
            print(
                f"   {name:<32} {size:>5} {fmt(result['events_per_second']):>10} "
                f"{result['write_requests_per_event']:>10.4f} {result['items_written_per_event']:>9.3f} "
                f"{result['write_units_per_event']:>7.3f} {result['read_requests_per_event']:>9.4f}"
            )
        figures["datasets"][name] = {
            "users": len({s["user_id"] for s in sources}),
            "items": len({s["item_id"] for s in sources}),
            "by_batch_size": rows,
        }
    if not args.no_save and not args.quick:
        write_result("scaling", header, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
