"""bench/results.json: the measured figures the cost model takes (``python -m bench.cost_model --measured``).

Built from the benchmarks' own result files (bench/results/*.json). Every key is a field of
``bench.cost_model.Profile`` (the cost model rejects unknown keys), so the file is the cost model's
input as it is; where each number comes from is in `sources` of ``bench/results/cost_inputs.json``
and in BENCHMARKS.md.

The process function's duration per batch is CPU measured here plus DynamoDB round trips at an assumed
latency (moto's latency is not AWS's): ``cpu_ms_per_event x batch_size + reads x READ_MS + writes x
WRITE_MS`` per batch, with the reads and writes per batch measured against moto.

Usage:
    python -m bench.results_file          # rebuild bench/results.json from bench/results/*.json
"""

from __future__ import annotations

import json
import math
from typing import Any

from bench.common import COST_INPUT_FILE, RESULTS_DIR, read_result

# Assumed DynamoDB latencies from a Lambda in the same region (p50, single-digit ms reads; a
# TransactWriteItems of up to 100 items takes longer: two-phase commit over many partitions).
BATCH_GET_MS = 8.0
TRANSACT_WRITE_MS = 25.0
# The batch size the cost model's process duration is for (cdk.json prod: 1000).
PROD_BATCH_SIZE = 1000


def cost_inputs(results: dict[str, dict[str, Any] | None]) -> tuple[dict[str, Any], dict[str, str]]:
    """(Profile overrides, where each came from) from the benchmarks' result documents."""
    inputs: dict[str, Any] = {}
    sources: dict[str, str] = {}
    writes = (results.get("dynamodb_writes") or {}).get("figures", {}).get("streamrec")
    if writes:
        inputs["ddb_write_requests_per_event"] = writes["write_requests_per_event"]
        inputs["ddb_write_units_per_event"] = writes["write_units_per_event"]
        inputs["ddb_process_read_units_per_event"] = writes["read_units_per_event"]
        sources["ddb_*_per_event"] = (
            "bench.dynamodb_writes: real replay, batch 500, process handler against moto"
        )
    serve = (results.get("serve") or {}).get("figures")
    if serve:
        if serve.get("read_units_per_request") is not None:
            inputs["ddb_read_units_per_recommendation"] = serve["read_units_per_request"]
        inputs["serve"] = {"duration_ms": math.ceil(serve["handler_wall"]["p50_ms"])}
        sources["serve"] = "bench.serve: handler p50 against moto in-process; RRU from the items read"
    throughput = (results.get("process_throughput") or {}).get("figures", {}).get("real")
    if throughput and writes:
        variant = throughput["variants"]["streamrec_marshalling"]
        cpu_ms_per_event = variant["cpu_seconds"] * 1000 / variant.get("events", throughput["events"])
        batches = writes["batches"]
        scale = PROD_BATCH_SIZE / (writes["events"] / batches)
        reads_per_batch = writes["read_requests"] / batches * scale
        writes_per_batch = writes["write_requests"] / batches * scale
        duration = (
            cpu_ms_per_event * PROD_BATCH_SIZE
            + reads_per_batch * BATCH_GET_MS
            + writes_per_batch * TRANSACT_WRITE_MS
        )
        inputs["process"] = {"duration_ms": math.ceil(duration)}
        sources["process"] = (
            f"CPU {cpu_ms_per_event:.3f} ms/event (bench.process_throughput, logic + marshalling) x "
            f"{PROD_BATCH_SIZE} "
            f"+ {reads_per_batch:.1f} BatchGetItem x {BATCH_GET_MS:g} ms + {writes_per_batch:.1f} "
            f"TransactWriteItems "
            f"x {TRANSACT_WRITE_MS:g} ms per batch of {PROD_BATCH_SIZE} (latencies assumed)"
        )
    pipeline = (results.get("pipeline_window1") or results.get("pipeline_window0") or {}).get("figures", {})
    ingest_small = pipeline.get("ingest_100")
    if ingest_small:
        inputs["ingest"] = {"duration_ms": math.ceil(ingest_small["ingest_function_duration"]["p50_ms"])}
        sources["ingest"] = (
            "bench.pipeline_bench: ingest function p50 on the emulator, 100 events per request"
        )
    return inputs, sources


def build() -> dict[str, Any]:
    names = ["dynamodb_writes", "serve", "process_throughput", "pipeline_window1", "pipeline_window0"]
    inputs, sources = cost_inputs({name: read_result(name) for name in names})
    COST_INPUT_FILE.write_text(json.dumps(inputs, indent=2) + "\n")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "cost_inputs.json").write_text(
        json.dumps({"inputs": inputs, "sources": sources}, indent=2) + "\n"
    )
    return inputs


def main() -> int:
    inputs = build()
    print(json.dumps(inputs, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
