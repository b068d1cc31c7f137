"""What every benchmark shares: the machine, the data, Kinesis records as ingest writes them, statistics.

Benchmarks import the function code by the names Lambda uses (``process``, ``streamrec_core``). Records are
built with ingest's own code (``validate_event`` at the door, then ``encode_record``) and wrapped in the
event source mapping's event shape, so the process function sees byte for byte what it sees deployed.

Data: the real Taobao clickstream is read from ``../shared/data/taobao-userbehavior/events.jsonl`` (never
copied into the repository); generated streams come from ``tools.generate_clickstream`` with a seed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import shlex
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streamrec_core.features.config import FeatureConfig
from streamrec_core.schema import encode_record, format_timestamp, validate_event

REPO_ROOT = Path(__file__).resolve().parent.parent

# STREAMREC_EVENTS_FILE points elsewhere (e.g. when the benchmarks run from an exported checkout).
REAL_EVENTS = Path(
    os.environ.get("STREAMREC_EVENTS_FILE")
    or REPO_ROOT.parent / "shared" / "data" / "taobao-userbehavior" / "events.jsonl"
)
RESULTS_DIR = Path(__file__).resolve().parent / "results"
COST_INPUT_FILE = Path(__file__).resolve().parent / "results.json"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/streamrec-bench"
# AWS sequence numbers have 56 digits; the process function compares them as integers.
_SEQUENCE_BASE = 49_650_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000
MAX_HASH_KEY = 2**128 - 1


def prod_profile() -> dict[str, Any]:
    """The prod settings profile of cdk.json: what the benchmarks run the functions with."""
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["profiles"]["prod"]


def _prod_features() -> dict[str, int]:
    """The prod profile's feature settings (cdk.json): what the deployed functions run with."""
    features = prod_profile()["features"]
    settings = {
        "user_ttl_seconds": int(features["user_ttl_days"]) * 86_400,
        "item_ttl_seconds": int(features["item_ttl_days"]) * 86_400,
        "allowed_lateness_ms": int(features["allowed_lateness_seconds"]) * 1000,
    }
    if "outbox_retention_seconds" in features:
        settings["outbox_retention_ms"] = int(features["outbox_retention_seconds"]) * 1000
    return settings


FEATURES = FeatureConfig(**_prod_features())


# --- The machine and the command -------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS and Python: printed with every figure."""
    memory_gb = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gb = round(pages / 1024**3, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


def code_version() -> str:
    """The commit the measured code is at, and whether lambdas/ differs from it (uncommitted edits)."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "lambdas"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("STREAMREC_CODE_VERSION", "unknown (not a git checkout)")
    changed = [line[3:] for line in dirty if line.strip()]
    return f"{head}" + (
        f" with uncommitted changes in {', '.join(changed)}" if changed else " (lambdas/ clean)"
    )


def command_line() -> str:
    """The command that is running, as someone would type it (``python -m bench.x ...``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    head = ["python", "-m", spec.name] if spec is not None and spec.name else ["python", sys.argv[0]]
    return shlex.join(head + sys.argv[1:])


def print_header(title: str) -> dict[str, Any]:
    """Print the title, machine and command; return them for the results file."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped to a file or make
    info = machine()
    print(f"== {title}")
    print(
        f"   machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB, {info['os']}, "
        f"{info['implementation']} {info['python']}"
    )
    print(f"   command: {command_line()}")
    print(f"   code: {code_version()}")
    print(f"   {load_average()} at start (figures are CPU time of this process; wall time beside them)")
    return {
        "title": title,
        "machine": info,
        "command": command_line(),
        "load_at_start": load_average(),
        "code": code_version(),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


# --- Results ---------------------------------------------------------------------------------------
def write_result(name: str, header: dict[str, Any], figures: dict[str, Any]) -> Path:
    """Write one benchmark's figures to bench/results/<name>.json (machine-readable, committed)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({**header, "figures": figures}, indent=2, sort_keys=False) + "\n")
    print(f"   results: {path.relative_to(REPO_ROOT)}")
    return path


def read_result(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


# --- Statistics ------------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean of durations in milliseconds."""
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50), 3),
        "p95_ms": round(percentile(values, 95), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "max_ms": round(max(values), 3) if values else float("nan"),
        "mean_ms": round(statistics.fmean(values), 3) if values else float("nan"),
    }


@dataclass(frozen=True, slots=True)
class Timing:
    """CPU seconds of this process (the figure: other processes on a shared machine do not count) and
    wall seconds (printed beside it, so a loaded machine shows)."""

    cpu_s: float
    wall_s: float


def load_average() -> str:
    try:
        one, five, _ = os.getloadavg()
        return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"
    except OSError:
        return "load average unknown"


# --- Data ------------------------------------------------------------------------------------------
def read_jsonl(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    events = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                events.append(json.loads(line))
                if limit is not None and len(events) >= limit:
                    break
    return events


def real_events(limit: int | None = None) -> list[dict[str, Any]]:
    """The Taobao sample (67,402 events, 814 users), in time order; SystemExit when it is absent."""
    if not REAL_EVENTS.is_file():
        raise SystemExit(
            f"real data not found at {REAL_EVENTS} (it lives in ../shared/data, outside the repo)"
        )
    return read_jsonl(REAL_EVENTS, limit)


def generated_events(
    events: int, *, users: int = 1000, items: int = 5000, zipf: float = 0.9, seed: int = 7, days: float = 1.0
) -> list[dict[str, Any]]:
    """A seeded synthetic clickstream in the shared format (tools.generate_clickstream)."""
    from tools.generate_clickstream import ShopShape, generate_events

    return generate_events(
        events, users=users, items=items, seed=seed, days=days, shape=ShopShape(zipf_exponent=zipf)
    )


def source_to_event(source: dict[str, Any]) -> dict[str, Any]:
    """A source line as a producer would send it (replay's mapping: schema fields, deterministic id)."""
    from tools.replay import to_schema_event

    return to_schema_event(source, source["timestamp"])


@dataclass(frozen=True, slots=True)
class Record:
    """One encoded Kinesis record: what PutRecords stored (data, partition key) and when it arrived."""

    data: bytes
    partition_key: str
    arrival: float  # Unix seconds


def encode_events(sources: Iterable[dict[str, Any]], *, receipt_delay_s: float = 1.0) -> list[Record]:
    """Events through ingest's door: validate (now = event time + delay, so none is late), encode.

    The source's own timestamps are kept (re-timing would squeeze sessions together and change what is
    co-visited); ingest's age check is relative to `now`, so every event passes as it would live.
    """
    records = []
    delay = timedelta(seconds=receipt_delay_s)
    for source in sources:
        raw = source_to_event(source)
        stamp = datetime.fromisoformat(raw["timestamp"].replace("Z", "+00:00"))
        now = stamp + delay
        event, violations = validate_event(
            raw, now=now, max_age=timedelta(days=7), max_future=timedelta(minutes=5)
        )
        if event is None:
            raise ValueError(f"bench data rejected by ingest: {violations}")
        records.append(Record(encode_record(event, format_timestamp(now)), event["user_id"], now.timestamp()))
    return records


def shard_of(partition_key: str, shards: int) -> int:
    """Kinesis's shard for a partition key: MD5 -> 128-bit hash key, shards split the range evenly."""
    hash_key = int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")
    return min(shards - 1, hash_key * shards // (MAX_HASH_KEY + 1))


@dataclass(frozen=True, slots=True)
class Batch:
    shard_id: str
    event: dict[str, Any]  # the Lambda Kinesis event {"Records": [...]}

    def __len__(self) -> int:
        return len(self.event["Records"])


def kinesis_batches(records: Sequence[Record], *, batch_size: int, shards: int = 1) -> list[Batch]:
    """Partition records onto shards by key, number them per shard, cut each shard into batches.

    Batches of different shards are interleaved in time order (round robin), as concurrent pollers
    would deliver them; within a shard, order and sequence numbers are those of the stream.
    """
    per_shard: list[list[dict[str, Any]]] = [[] for _ in range(shards)]
    for record in records:
        shard = shard_of(record.partition_key, shards)
        shard_id = f"shardId-{shard:012d}"
        sequence = str(_SEQUENCE_BASE + len(per_shard[shard]) + 1)
        per_shard[shard].append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": record.partition_key,
                    "sequenceNumber": sequence,
                    "data": base64.b64encode(record.data).decode("ascii"),
                    "approximateArrivalTimestamp": record.arrival,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{sequence}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/process",
                "awsRegion": "us-east-1",
                "eventSourceARN": STREAM_ARN,
            }
        )
    cut: list[list[Batch]] = []
    for shard, items in enumerate(per_shard):
        shard_id = f"shardId-{shard:012d}"
        cut.append(
            [
                Batch(shard_id, {"Records": items[i : i + batch_size]})
                for i in range(0, len(items), batch_size)
            ]
        )
    interleaved: list[Batch] = []
    for round_ in range(max((len(b) for b in cut), default=0)):
        for batches in cut:
            if round_ < len(batches):
                interleaved.append(batches[round_])
    return interleaved


def stream_records(records: Sequence[Record], *, shard_id: str = "shardId-000000000000") -> list[Any]:
    """`streamrec_core.kinesis.KinesisRecord`s of one shard, numbered in order (what a function's
    records are after the event source mapping's event is parsed)."""
    from streamrec_core.kinesis import KinesisRecord

    return [
        KinesisRecord(
            shard_id=shard_id,
            sequence_number=str(_SEQUENCE_BASE + index + 1),
            partition_key=record.partition_key,
            data=record.data,
            arrival_ms=int(round(record.arrival * 1000)),
            event_source_arn=STREAM_ARN,
        )
        for index, record in enumerate(records)
    ]


def dataset(name: str, *, limit: int | None = None, **generator: Any) -> list[dict[str, Any]]:
    """'real' (the Taobao sample) or 'generated' (generate_clickstream with `generator` options)."""
    if name == "real":
        return real_events(limit)
    if name == "generated":
        count = limit or generator.pop("events", 50_000)
        return generated_events(count, **generator)
    raise ValueError(f"unknown dataset {name!r}")


def fmt(value: float, digits: int = 0) -> str:
    """A number with thousands separators."""
    return f"{value:,.{digits}f}"
