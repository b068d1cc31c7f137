"""Hot path speed (issue 12, item 5): decode + user fold, events/s on one core, no I/O; goal >= 50,000.

Datasets: bench.scale's two streams, cut into the hot path's 1-second batches (800 records): the
generated real-scale stream over a warm table (the same warm-up as bench.scale: returning users' rows
at full size) and the Taobao replay.

Variants, in the same process, CPU time pinned to one core, best of `--repeats` passes taking turns:

- **hot path**: `process.logic.HotPath.process(records)` over `bench.stores.CodecStore`: records decoded
  and checked with msgspec (`streamrec_core.kinesis.decode_batch`), grouped by user, user rows read
  (codec decode), folded (`features.user_fold.fold`), written back once per user (codec encode). This is
  the function's CPU work per batch but for the DynamoDB client (bench.ddb_client measures that);
- **hot path + parse**: the same from the event source mapping's event (`parse_kinesis_event`: base64);
- **per-record baseline**: each record on its own, as a per-record writer does it with the standard
  library: `json.loads` + the previous design's record-mode checks (`schema.validate_event`) + the Event
  built in Python, then its user row read, folded and written back (the same fold and codec);
- **previous design**: `bench.old_design`'s BatchProcessor (one fold for user, item, trending and counter
  rows) over a dict store without marshalling (the figure BENCHMARKS.md published as ~12k events/s).

The hot path and the per-record baseline must end with the same user rows (checked, printed).
Then what msgspec buys (decoding alone: msgspec vs json.loads + validate_event + Event in Python), where
the hot path's time goes (stages timed alone on the same inputs) and a cProfile of it.

Usage:
    python -m bench.process_throughput                  # 60 s of the generated stream + Taobao, 3 passes
    python -m bench.process_throughput --quick          # 20 s generated (small warm-up), 20,000 Taobao
    python -m bench.process_throughput --dataset taobao --profile-only
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from process.logic import HotPath
from streamrec_core.constants import DEFAULT_EXPERIMENT_ID
from streamrec_core.features.events import Event, record_event_id, timestamp_ms
from streamrec_core.features.keys import Key, user_key
from streamrec_core.features.memory_store import MemoryStore
from streamrec_core.features.user_fold import UserRow, fold
from streamrec_core.kinesis import DeadLetter, KinesisRecord, decode_batch, parse_kinesis_event
from streamrec_core.schema import decode_record, validate_event

from bench.common import FEATURES, STREAM_ARN, Timing, fmt, print_header, write_result
from bench.stores import CodecStore

if TYPE_CHECKING:
    from bench.old_design.logic import DeadLetter as OldDeadLetter

GOAL_EVENTS_PER_SECOND = 50_000
_ZERO = timedelta(0)


class NoDeadLetters:
    """The dead-letter port (of both designs); the benchmark data is valid, so a letter here is a bug in
    the benchmark."""

    def send(self, letters: Sequence[DeadLetter | OldDeadLetter]) -> NoReturn:
        raise AssertionError(f"benchmark data was dead-lettered: {letters[0].reason}")


def pin_to_one_core() -> str:
    """Run on one core (the figure is per core); returns which."""
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity)"


def esm_event(records: Sequence[KinesisRecord]) -> dict[str, Any]:
    """The event source mapping's event for a batch (what the handler parses)."""
    import base64

    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": base64.b64encode(r.data or b"").decode("ascii"),
                    "approximateArrivalTimestamp": r.arrival_ms / 1000,
                },
                "eventSource": "aws:kinesis",
                "eventID": f"{r.shard_id}:{r.sequence_number}",
                "eventSourceARN": STREAM_ARN,
            }
            for r in records
        ]
    }


# --- The per-record baseline ----------------------------------------------------------------------------
def python_event(record: KinesisRecord) -> Event:
    """A record decoded with the standard library: json.loads, the record-mode schema checks, the Event."""
    body, violations = validate_event(
        decode_record(record.data or b""), now=None, max_age=_ZERO, max_future=_ZERO
    )
    if body is None:
        raise AssertionError(f"benchmark record rejected: {violations}")
    attribution = body.get("attribution")
    received = body.get("received_at")
    time_ms = timestamp_ms(body["timestamp"])
    return Event(
        body.get("event_id") or record_event_id(record.shard_id, record.sequence_number),
        body["event_type"],
        body["user_id"],
        body.get("item_id"),
        body.get("category") or "",
        time_ms,
        timestamp_ms(received) if received else time_ms,
        record.shard_id,
        record.sequence_number,
        int(record.sequence_number),
        record.arrival_ms,
        (attribution.get("experiment_id") or DEFAULT_EXPERIMENT_ID) if attribution else None,
        attribution.get("variant") if attribution else None,
    )


def per_record(store: CodecStore, records: Sequence[KinesisRecord]) -> None:
    """One record at a time: decode it, read its user's row, fold it, write the row back."""
    for record in sorted(records, key=lambda r: r.seq):
        event = python_event(record)
        key = user_key(event.user_id)
        row = store.get_many([key], consistent=True)[key]
        if not isinstance(row, UserRow):
            row = UserRow(event.user_id)
        fold(row, event, FEATURES)
        store.put_many([row])


# --- The previous design ------------------------------------------------------------------------------------
class OldDictStore:
    """The previous design's StorePort with rows by reference (no marshalling), as its benchmark had it."""

    def __init__(self, rows: dict[Any, dict[str, Any]]) -> None:
        self.rows = rows

    def read(self, keys: Any, *, consistent: bool = True) -> dict[Any, Any]:
        rows = self.rows
        return {key: rows.get(key) for key in keys}

    def commit(self, writes: Sequence[tuple[Any, dict[str, Any], int]]) -> None:
        for key, row, _expected in writes:
            self.rows[key] = row


# --- Datasets -----------------------------------------------------------------------------------------------
class Dataset:
    """A stream's hot-path batches and its warm tables (both designs), ready for repeated passes."""

    def __init__(self, name: str, stream: Any, with_old: bool) -> None:
        from bench.scale import HOT_BATCH_SIZE, old_config
        from bench.scale_data import warm_new, warm_old, windows

        self.name = name
        self.batches = [batch for _closes, batch in windows(stream.records, 1, HOT_BATCH_SIZE)]
        self.events = sum(len(b) for b in self.batches)
        self.users = stream.facts["users"]
        memory = MemoryStore()
        self.warm = warm_new(memory, stream.warm, FEATURES) if stream.warm else {}
        self.items = dict(memory.items)
        self.old_items: dict[Any, Any] = {}
        self.old_config = old_config()
        if with_old:
            from bench.old_design.store import BilledStore

            old = BilledStore()
            if stream.warm:
                warm_old(old, stream.warm, self.old_config)
            self.old_items = dict(old.items)

    def fresh_old_rows(self) -> dict[Any, dict[str, Any]]:
        from bench.old_design.store import from_item

        return {key: from_item(item) for key, item in self.old_items.items()}


def load(name: str, args: argparse.Namespace) -> Dataset:
    from bench.scale_data import generated_stream, taobao_stream

    if name == "generated":
        stream = generated_stream(args.seconds, warm_events=args.warm_events)
    else:
        stream = taobao_stream(args.taobao_events)
    return Dataset(stream.name, stream, with_old=not args.no_baseline)


# --- Variants -----------------------------------------------------------------------------------------------
def run_hot_path(data: Dataset, *, parse: bool) -> tuple[Timing, CodecStore]:
    store = CodecStore(data.items)
    hot = HotPath(store, NoDeadLetters(), FEATURES, sleep=lambda s: None)
    events = [esm_event(batch) for batch in data.batches] if parse else []
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    if parse:
        for event in events:
            hot.process(parse_kinesis_event(event))
    else:
        for batch in data.batches:
            hot.process(batch)
    return Timing(time.process_time() - cpu, time.perf_counter() - wall), store


def run_per_record(data: Dataset) -> tuple[Timing, CodecStore]:
    """The per-record baseline, with the garbage collector paused per batch as the hot path pauses it
    (so the two differ only in how they process records)."""
    store = CodecStore(data.items)
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in data.batches:
        gc.disable()
        per_record(store, batch)
        gc.enable()
    return Timing(time.process_time() - cpu, time.perf_counter() - wall), store


def run_previous(data: Dataset) -> tuple[Timing, Any]:
    from bench.old_design.logic import BatchProcessor
    from bench.old_design.logic import KinesisRecord as OldRecord

    store = OldDictStore(data.fresh_old_rows())
    processor = BatchProcessor(store, NoDeadLetters(), data.old_config, sleep=lambda s: None)
    batches = [
        [OldRecord(r.shard_id, r.sequence_number, r.partition_key, r.data, r.arrival_ms) for r in batch]
        for batch in data.batches
    ]
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        processor.process(batch)
    return Timing(time.process_time() - cpu, time.perf_counter() - wall), store


VARIANTS: dict[str, Callable[[Dataset], tuple[Timing, Any]]] = {
    "hot path": lambda d: run_hot_path(d, parse=False),
    "hot path + parse": lambda d: run_hot_path(d, parse=True),
    "per-record baseline": run_per_record,
    "previous design": run_previous,
}


def user_rows(store: CodecStore) -> dict[Key, Any]:
    """User rows without their version (the per-record side writes more often)."""
    out = {}
    for key, row in store.rows().items():
        if key.table == "users":
            row.version = 0
            out[key] = row
    return out


# --- Where the time goes ------------------------------------------------------------------------------------
def decoding(data: Dataset, repeats: int) -> dict[str, float]:
    """Microseconds per record to decode and check records: msgspec vs the standard library (garbage
    collector paused, as in the function)."""
    records = [r for batch in data.batches for r in batch]
    gc.collect()
    gc.disable()
    try:
        return _decoding(data, records, repeats)
    finally:
        gc.enable()


def _decoding(data: Dataset, records: list[KinesisRecord], repeats: int) -> dict[str, float]:
    best = {"msgspec (decode_batch)": float("inf"), "json.loads + validate_event + Event": float("inf")}
    for _ in range(repeats):
        started = time.process_time()
        for batch in data.batches:
            decode_batch(batch)
        best["msgspec (decode_batch)"] = min(best["msgspec (decode_batch)"], time.process_time() - started)
        started = time.process_time()
        for record in records:
            python_event(record)
        key = "json.loads + validate_event + Event"
        best[key] = min(best[key], time.process_time() - started)
    return {name: round(seconds / len(records) * 1e6, 3) for name, seconds in best.items()}


def stages(data: Dataset) -> dict[str, float]:
    """Microseconds per event of each stage of the hot path, each timed on its own, batch after batch
    (rows written by one batch are read by the next, as in the function), with the cyclic garbage
    collector paused as HotPath.process pauses it (with it running, the codec alone costs ~3x: every
    collection walks the stored rows)."""
    from streamrec_core.features.codec import from_item, to_item

    gc.collect()
    gc.disable()
    try:
        return _stages(data, from_item, to_item)
    finally:
        gc.enable()


def _stages(data: Dataset, from_item: Any, to_item: Any) -> dict[str, float]:
    clock = time.process_time
    names = (
        "parse_kinesis_event (base64, record objects)",
        "decode_batch (msgspec: JSON, field rules, Event)",
        "group by user",
        "read user rows (codec decode)",
        "fold (user_fold.fold)",
        "write user rows (codec encode)",
    )
    spent = dict.fromkeys(names, 0.0)
    items = dict(data.items)
    for batch in data.batches:
        event = esm_event(batch)
        started = clock()
        parse_kinesis_event(event)
        spent[names[0]] += clock() - started
        started = clock()
        events = decode_batch(batch)[0]
        spent[names[1]] += clock() - started
        started = clock()
        by_user: dict[str, list[Event]] = {}
        for e in events:
            by_user.setdefault(e.user_id, []).append(e)
        spent[names[2]] += clock() - started
        started = clock()
        rows = {}
        for uid in by_user:
            key = user_key(uid)
            item = items.get(key)
            rows[uid] = from_item(key, item) if item is not None else UserRow(uid)
        spent[names[3]] += clock() - started
        started = clock()
        for uid, user_events in by_user.items():
            row = rows[uid]
            for e in user_events:
                fold(row, e, FEATURES)
        spent[names[4]] += clock() - started
        started = clock()
        written = {user_key(uid): to_item(row, row.version + 1) for uid, row in rows.items()}
        spent[names[5]] += clock() - started
        items.update(written)
    return {name: round(seconds / data.events * 1e6, 3) for name, seconds in spent.items()}


def profile(data: Dataset, top: int = 14) -> list[dict[str, Any]]:
    store = CodecStore(data.items)
    hot = HotPath(store, NoDeadLetters(), FEATURES, sleep=lambda s: None)
    profiler = cProfile.Profile()
    profiler.enable()
    for batch in data.batches:
        hot.process(batch)
    profiler.disable()
    profiler.create_stats()  # the table pstats.Stats would read: (file, line, function) -> counts, times
    table = profiler.stats
    total = sum(entry[2] for entry in table.values())
    rows: list[dict[str, Any]] = []
    for (filename, line, function), (_cc, calls, own, cumulative, _callers) in table.items():
        rows.append(
            {
                "function": f"{_short(filename)}:{line}({function})",
                "calls": calls,
                "own_s": round(own, 4),
                "own_share": round(own / total, 4) if total else 0.0,
                "cumulative_s": round(cumulative, 4),
            }
        )
    rows.sort(key=lambda r: r["own_s"], reverse=True)
    return rows[:top]


def _short(filename: str) -> str:
    for marker in ("/lambdas/", "/site-packages/", "/bench/", "/lib/python"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# --- The benchmark ------------------------------------------------------------------------------------------
def measure(data: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    print(
        f"\n-- {data.name}: {fmt(data.events)} events in {len(data.batches)} batches "
        f"(~{data.events / max(1, len(data.batches)):.0f} records), {fmt(data.users)} users"
        + (
            f"; warm table: {fmt(data.warm['users'])} user rows, "
            f"history p50 {data.warm['history_entries_p50']:.0f}"
            if data.warm
            else ""
        )
    )
    variants = [v for v in VARIANTS if not (args.no_baseline and v == "previous design")]
    best: dict[str, tuple[Timing, Any]] = {}
    for _ in range(args.repeats):
        for name in variants:
            timing, store = VARIANTS[name](data)
            if name not in best or timing.cpu_s < best[name][0].cpu_s:
                best[name] = (timing, store)
    out: dict[str, Any] = {"events": data.events, "batches": len(data.batches), "variants": {}}
    for name in variants:
        timing = best[name][0]
        rate = data.events / timing.cpu_s
        out["variants"][name] = {
            "cpu_seconds": round(timing.cpu_s, 4),
            "wall_seconds": round(timing.wall_s, 4),
            "events_per_second": round(rate),
            "us_per_event": round(timing.cpu_s / data.events * 1e6, 2),
        }
        print(
            f"   {name:<24} {fmt(rate):>9} events/s  {timing.cpu_s / data.events * 1e6:7.2f} us/event CPU "
            f"(wall {fmt(data.events / timing.wall_s)} events/s)"
        )
    same = user_rows(best["hot path"][1]) == user_rows(best["per-record baseline"][1])
    ratio = (
        out["variants"]["hot path"]["events_per_second"]
        / out["variants"]["per-record baseline"]["events_per_second"]
    )
    out["same_user_rows_as_per_record"] = same
    out["ratio_to_per_record"] = round(ratio, 2)
    print(f"   hot path / per-record baseline: {ratio:.2f}x (same user rows: {'yes' if same else 'NO'})")
    if "previous design" in out["variants"]:
        old_ratio = (
            out["variants"]["hot path"]["events_per_second"]
            / out["variants"]["previous design"]["events_per_second"]
        )
        out["ratio_to_previous_design"] = round(old_ratio, 2)
        print(f"   hot path / previous design: {old_ratio:.2f}x")
    headline = out["variants"]["hot path"]["events_per_second"]
    out["goal_met"] = headline >= GOAL_EVENTS_PER_SECOND
    print(
        f"   goal >= {fmt(GOAL_EVENTS_PER_SECOND)} events/s on one core: "
        f"{'met' if out['goal_met'] else 'MISSED'} ({fmt(headline)})"
    )
    out["decoding_us_per_record"] = decoding(data, args.repeats)
    print(
        "   decoding alone, us per record: "
        + ", ".join(f"{k} {v:.2f}" for k, v in out["decoding_us_per_record"].items())
    )
    out["stages_us_per_event"] = stage_us = stages(data)
    print("   where the hot path's time goes (each stage alone on the same inputs), us per event:")
    for stage, us in stage_us.items():
        print(f"     {stage:<52} {us:7.2f}")
    names = list(stage_us)
    core = stage_us[names[1]] + stage_us[names[2]] + stage_us[names[4]]
    codec = stage_us[names[3]] + stage_us[names[5]]
    out["decode_and_fold_events_per_second"] = round(1e6 / core)
    out["decode_and_fold_goal_met"] = 1e6 / core >= GOAL_EVENTS_PER_SECOND
    print(
        f"   decode + group + fold alone: {fmt(1e6 / core)} events/s ({core:.1f} us/event): goal "
        f"{'met' if out['decode_and_fold_goal_met'] else 'MISSED'}; the codec adds {codec:.1f} us/event "
        f"(rows read and written once per user per batch), {codec / (core + codec):.0%} of the hot path"
    )
    out["profile"] = profile(data)
    print("   cProfile of the hot path (own time; profiler overhead included):")
    for row in out["profile"][:10]:
        print(
            f"     {row['own_share']:6.1%} {row['own_s'] * 1000:8.1f} ms {row['calls']:>9,} calls  "
            f"{row['function']}"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    from bench.scale_data import WARM_EVENTS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("generated", "taobao", "both"), default="both")
    parser.add_argument(
        "--seconds", type=int, default=60, help="seconds of the generated stream (default 60)"
    )
    parser.add_argument("--warm-events", type=int, default=WARM_EVENTS)
    parser.add_argument("--taobao-events", type=int, default=None, help="first N Taobao events (default all)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per variant; the best is reported")
    parser.add_argument("--no-baseline", action="store_true", help="skip the previous design")
    parser.add_argument(
        "--quick", action="store_true", help="20 s generated (100,000 warm-up), 20,000 Taobao"
    )
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.warm_events = min(args.seconds, 20), min(args.warm_events, 100_000)
        args.taobao_events, args.repeats = args.taobao_events or 20_000, 1
    header = print_header("hot path speed: decode + user fold, one core, no I/O (issue 12, item 5)")
    pinned = "not pinned" if args.no_pin else pin_to_one_core()
    print(f"   {pinned}; goal >= {fmt(GOAL_EVENTS_PER_SECOND)} events/s")
    figures: dict[str, Any] = {"pinning": pinned, "goal_events_per_second": GOAL_EVENTS_PER_SECOND}
    for name in ("generated", "taobao") if args.dataset == "both" else (args.dataset,):
        figures[name] = measure(load(name, args), args)
    if not args.no_save and not args.quick:
        write_result("process_throughput", header, figures)
    print(
        json.dumps(
            {
                n: f["variants"]["hot path"]["events_per_second"]
                for n, f in figures.items()
                if isinstance(f, dict) and "variants" in f
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
