"""Peak memory of the process function (the hot path) on a batch of records (to size Lambda memory).

Measured in a fresh child process, so nothing else the benchmarks loaded counts:

1. *runtime*: max RSS after importing what the function imports (boto3, Powertools, the process
   handler) and building its clients: what the container holds before the first record.
2. *per batch*: the real Taobao replay is processed batch by batch through `process.logic.HotPath`
   with a store that keeps rows as the codec's DynamoDB items and decodes / encodes them on every read
   and write (`bench.stores.CodecStore`), so every batch reads fully grown user rows as the deployed
   function does. For each batch, tracemalloc's peak of memory allocated while processing it (the
   rows read, the fold, the items written), and max RSS at the end.

Usage:
    python -m bench.process_memory                      # batch sizes 500 and 1000, all real events
    python -m bench.process_memory --batch-size 500 --events 20000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from typing import Any

from bench.common import REPO_ROOT, fmt, print_header, write_result


def _rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(batch_size: int, events: int | None, shards: int) -> dict[str, Any]:
    """Runs in the child process: import like the function, then measure batch by batch."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    start_rss = _rss_mb()
    import boto3
    from process import handler  # noqa: F401 - what the function imports at cold start

    boto3.client("dynamodb")
    boto3.client("sqs")
    runtime_rss = _rss_mb()

    import tracemalloc

    from process.logic import HotPath
    from streamrec_core.kinesis import parse_kinesis_event

    from bench.common import FEATURES, dataset, encode_events, kinesis_batches
    from bench.process_throughput import NoDeadLetters
    from bench.stores import CodecStore

    batches = kinesis_batches(
        encode_events(dataset("real", limit=events)), batch_size=batch_size, shards=shards
    )
    data_rss = _rss_mb()
    store = CodecStore()
    processor = HotPath(store, NoDeadLetters(), FEATURES, sleep=lambda s: None)
    peaks: list[float] = []
    tracemalloc.start()
    for batch in batches:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        processor.process(parse_kinesis_event(batch.event))
        _, peak = tracemalloc.get_traced_memory()
        peaks.append((peak - before) / 1024**2)
    tracemalloc.stop()
    stored_mb = sum(len(item["d"]["B"]) + 40 for item in store.items.values()) / 1024**2
    return {
        "batch_size": batch_size,
        "batches": len(batches),
        "interpreter_rss_mb": round(start_rss, 1),
        "runtime_rss_mb": round(runtime_rss, 1),
        "rss_after_loading_bench_data_mb": round(data_rss, 1),
        "final_rss_mb": round(_rss_mb(), 1),
        "store_rows_mb": round(stored_mb, 1),
        "batch_peak_mb": {
            "p50": round(sorted(peaks)[len(peaks) // 2], 2),
            "max": round(max(peaks), 2),
            "last": round(peaks[-1], 2),
        },
    }


def run_child(batch_size: int, events: int | None, shards: int) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.process_memory",
        "--child",
        "--batch-size",
        str(batch_size),
        "--shards",
        str(shards),
    ]
    if events:
        command += ["--events", str(events)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, action="append", help="repeatable (default: 500 and 1000)")
    parser.add_argument("--events", type=int, default=None, help="first N real events (default: all)")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="batch 500 only, first 10,000 events")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    sizes = args.batch_size or ([500] if args.quick else [500, 1000])
    if args.quick:
        args.events = args.events or 10_000
    if args.child:
        print(json.dumps(child(sizes[0], args.events, args.shards)))
        return 0

    header = print_header("process function memory: runtime footprint and per-batch peak")
    figures: dict[str, Any] = {}
    for size in sizes:
        result = run_child(size, args.events, args.shards)
        figures[f"batch_{size}"] = result
        peak = result["batch_peak_mb"]
        print(
            f"   batch {size}: runtime (Python + boto3 + Powertools + handler) "
            f"{result['runtime_rss_mb']:.0f} MB RSS; "
            f"allocated while processing one batch: p50 {peak['p50']:.1f} MB, max {peak['max']:.1f} MB "
            f"over {fmt(result['batches'])} batches"
        )
        print(
            f"      (child's final max RSS {result['final_rss_mb']:.0f} MB includes the benchmark's "
            f"own data: "
            f"{result['rss_after_loading_bench_data_mb']:.0f} MB after loading it, and the in-memory table "
            f"of {result['store_rows_mb']:.0f} MB of user rows that DynamoDB holds in AWS)"
        )
    largest = max(r["runtime_rss_mb"] + r["batch_peak_mb"]["max"] for r in figures.values())
    figures["function_peak_estimate_mb"] = round(largest, 1)
    print(
        f"   the function needs about {largest:.0f} MB (runtime + the largest batch's peak); Lambda's memory "
        "setting also buys CPU (1 vCPU at 1,769 MB), which is what the process function is bound by"
    )
    if not args.no_save and not args.quick:
        write_result("process_memory", header, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
