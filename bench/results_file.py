"""bench/results.json: the measured figures the cost model takes (``python -m bench.cost_model --measured``).

Built from the benchmarks' own result files (bench/results/*.json). Every key is a field of
``bench.cost_model.Profile`` (the cost model rejects unknown keys), so the file is the cost model's
input as it is; where each number comes from is in `sources` of ``bench/results/cost_inputs.json`` and
in BENCHMARKS.md.

- DynamoDB units per event per consumer, per recommendation, the attributed share and the functions'
  durations: ``bench.scale`` on the generated real-scale stream (its `cost_inputs`; durations are CPU
  measured there plus the DynamoDB client's CPU per request and round trips at assumed latencies);
- ingest's duration: ``bench.pipeline_bench`` (ingest function p50 on the emulator, 100 events per
  request), when it ran.

Usage:
    python -m bench.results_file          # rebuild bench/results.json from bench/results/*.json
"""

from __future__ import annotations

import json
import math
from typing import Any

from bench.common import COST_INPUT_FILE, RESULTS_DIR, read_result

# The dataset whose figures are published (the small Taobao sample is shown beside it, never alone).
PUBLISHED_DATASET = "generated"


def cost_inputs(results: dict[str, dict[str, Any] | None]) -> tuple[dict[str, Any], dict[str, str]]:
    """(Profile overrides, where each came from) from the benchmarks' result documents."""
    inputs: dict[str, Any] = {}
    sources: dict[str, str] = {}
    scale = (results.get("scale") or {}).get("figures", {}).get(PUBLISHED_DATASET)
    if scale:
        inputs.update(scale["new"]["cost_inputs"])
        facts = scale["facts"]
        sources["ddb_*, attributed_share, process, aggregate_*, serve"] = (
            f"bench.scale, generated real-scale stream ({facts['events']:,} events in {facts['seconds']} s "
            f"on one shard, {facts['distinct_users_per_event_in_a_batch']} distinct users per event a batch, "
            "warm table); durations = CPU there + DynamoDB client CPU + assumed round-trip latencies"
        )
    pipeline = (results.get("pipeline_window0") or results.get("pipeline_window1") or {}).get("figures", {})
    ingest_small = pipeline.get("ingest_100")
    if ingest_small:
        inputs["ingest"] = {"duration_ms": math.ceil(ingest_small["ingest_function_duration"]["p50_ms"])}
        sources["ingest"] = (
            "bench.pipeline_bench: ingest function p50 on the emulator, 100 events per request"
        )
    return inputs, sources


def build() -> dict[str, Any]:
    names = ["scale", "pipeline_window0", "pipeline_window1"]
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
