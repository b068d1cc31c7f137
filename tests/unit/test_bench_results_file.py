"""bench.results_file: bench/results.json holds only fields the cost model accepts, from bench.scale."""

from __future__ import annotations

from typing import Any

from bench.cost_model import PROFILES, apply_overrides
from bench.results_file import cost_inputs

SCALE_INPUTS = {
    "ddb_write_units_per_event": 1.01,
    "ddb_process_read_units_per_event": 0.95,
    "ddb_aggregate_write_units_per_event": 0.81,
    "ddb_aggregate_read_units_per_event": 0.77,
    "ddb_read_units_per_recommendation": 3.2,
    "ddb_write_requests_per_event": 1.76,
    "attributed_share": 0.026,
    "process": {"duration_ms": 650.0},
    "aggregate_items": {"duration_ms": 6200.0},
    "aggregate_experiments": {"duration_ms": 38.0},
    "serve": {"duration_ms": 16.6},
}
RESULTS: dict[str, Any] = {
    "scale": {
        "figures": {
            "generated": {
                "new": {"cost_inputs": SCALE_INPUTS},
                "facts": {"events": 240_000, "seconds": 300, "distinct_users_per_event_in_a_batch": 0.95},
            },
            "taobao": {"new": {"cost_inputs": {**SCALE_INPUTS, "ddb_write_units_per_event": 0.3}}},
        }
    },
    "pipeline_window0": {"figures": {"ingest_100": {"ingest_function_duration": {"p50_ms": 30.4}}}},
}


def test_the_real_scale_figures_become_profile_fields_the_cost_model_applies():
    inputs, sources = cost_inputs(RESULTS)
    profile = apply_overrides(PROFILES["large-100k"], inputs)
    # the generated real-scale stream's figures, not the Taobao sample's
    assert profile.ddb_write_units_per_event == 1.01
    assert profile.ddb_aggregate_write_units_per_event == 0.81
    assert profile.attributed_share == 0.026
    assert profile.aggregate_items.duration_ms == 6200.0 and profile.serve.duration_ms == 16.6
    assert profile.ingest.duration_ms == 31
    assert len(sources) == 2


def test_missing_results_give_no_inputs():
    assert cost_inputs({}) == ({}, {})
