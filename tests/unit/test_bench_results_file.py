"""bench.results_file: bench/results.json holds only fields the cost model accepts."""

from __future__ import annotations

from bench.cost_model import PROFILES, apply_overrides
from bench.results_file import cost_inputs

RESULTS = {
    "dynamodb_writes": {
        "figures": {
            "streamrec": {
                "write_requests_per_event": 0.03,
                "write_units_per_event": 5.5,
                "read_units_per_event": 1.2,
                "events": 1000,
                "batches": 2,
                "read_requests": 10,
                "write_requests": 30,
            }
        }
    },
    "serve": {"figures": {"read_units_per_request": 6.5, "handler_wall": {"p50_ms": 20.2}}},
    "process_throughput": {
        "figures": {"real": {"events": 1000, "variants": {"streamrec_marshalling": {"cpu_seconds": 0.5}}}}
    },
    "pipeline_window1": {"figures": {"ingest_100": {"ingest_function_duration": {"p50_ms": 30.4}}}},
}


def test_measured_figures_become_profile_fields_the_cost_model_applies():
    inputs, sources = cost_inputs(RESULTS)
    profile = apply_overrides(PROFILES["large-100k"], inputs)
    assert profile.ddb_write_requests_per_event == 0.03
    assert profile.ddb_write_units_per_event == 5.5
    assert profile.serve.duration_ms == 21 and profile.ingest.duration_ms == 31
    # process: 0.5 ms CPU/event x 1000 + (5 reads x 8 ms + 15 writes x 25 ms) scaled to 1000 events a batch
    assert profile.process.duration_ms == 500 + 10 * 8 + 30 * 25
    assert set(sources) == {"ddb_*_per_event", "serve", "process", "ingest"}


def test_missing_results_give_no_inputs():
    assert cost_inputs({}) == ({}, {})
