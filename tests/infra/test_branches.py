"""The aggregate branches: two more event source mappings on the events stream (items, experiments)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local_emulator.filtering import parse_patterns, record_matches
from stacks.settings import BranchSourceSettings
from tests.infra.conftest import Synth, arn_of, ref

# function logical-id prefix -> the settings of its mapping
BRANCHES = {"BranchesItems": "aggregate_source", "BranchesExperiments": "experiments_source"}
HOT_PATH = "ProcessingProcess"


def _source(synth: Synth, branch: str) -> BranchSourceSettings:
    return getattr(synth.settings, BRANCHES[branch])


def _values(esm: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "ParallelizationFactor",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
    )
    return {k: esm[k] for k in keys}


def test_the_stream_has_three_mappings_the_hot_path_and_two_branches(synth: Synth) -> None:
    stream_id, _ = synth.one("AWS::Kinesis::Stream")
    mappings = synth.of_type("AWS::Lambda::EventSourceMapping").values()
    assert len(mappings) == 3
    for mapping in mappings:
        assert mapping["Properties"]["EventSourceArn"] == arn_of(stream_id)
    for prefix in (HOT_PATH, *BRANCHES):
        synth.mapping_of(prefix)  # exactly one each


def test_dev_uses_distinct_numbers_so_a_setting_given_to_the_wrong_property_or_mapping_is_caught(
    dev: Synth,
) -> None:
    # Given the three mappings of the dev profile
    mappings = {prefix: _values(dev.mapping_of(prefix)) for prefix in (HOT_PATH, *BRANCHES)}
    # Then within each mapping no two properties share a value ...
    for prefix, values in mappings.items():
        assert len(set(values.values())) == len(values), (prefix, values)
    # ... and no property has the same value on two mappings, except the branches' fixed factor of 1
    for key in (
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
    ):
        seen = [values[key] for values in mappings.values()]
        assert len(set(seen)) == len(seen), (key, seen)


@pytest.mark.parametrize("branch", sorted(BRANCHES))
def test_branch_mapping_takes_every_value_from_its_own_setting(synth: Synth, branch: str) -> None:
    esm = synth.mapping_of(branch)
    source = _source(synth, branch)
    assert esm["BatchSize"] == source.batch_size
    assert esm["MaximumBatchingWindowInSeconds"] == source.max_batching_window.to_seconds()
    assert esm["MaximumRetryAttempts"] == source.retry_attempts
    assert esm["MaximumRecordAgeInSeconds"] == source.max_record_age.to_seconds()
    # Same starting point as the hot path: a branch must see every record the hot path sees.
    assert esm["StartingPosition"] == synth.settings.event_source.starting_position


@pytest.mark.parametrize("branch", sorted(BRANCHES))
def test_branch_mapping_invokes_one_batch_per_shard_at_a_time(synth: Synth, branch: str) -> None:
    # The branches keep one watermark per shard on shared rows: only with ParallelizationFactor 1 are a
    # shard's records applied by one invocation at a time, in sequence order.
    assert synth.mapping_of(branch)["ParallelizationFactor"] == 1


def test_prod_branches_take_large_batches_with_a_batching_window(prod: Synth) -> None:
    hot = prod.mapping_of(HOT_PATH)
    items = prod.mapping_of("BranchesItems")
    assert items["BatchSize"] > hot["BatchSize"]
    assert items["MaximumBatchingWindowInSeconds"] > hot["MaximumBatchingWindowInSeconds"] == 0


@pytest.mark.parametrize("branch", sorted(BRANCHES))
def test_branch_mapping_reports_item_failures_bisects_and_sends_exhausted_batches_to_the_on_failure_queue(
    synth: Synth, branch: str
) -> None:
    esm = synth.mapping_of(branch)
    on_failure_id, _ = synth.one("AWS::SQS::Queue", "ProcessingOnFailureQueue")
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["BisectBatchOnFunctionError"] is True
    # One on-failure queue for every consumer: AWS names the function in each message (redrive).
    assert esm["DestinationConfig"] == {"OnFailure": {"Destination": arn_of(on_failure_id)}}


def test_the_items_branch_sees_every_record(synth: Synth) -> None:
    assert "FilterCriteria" not in synth.mapping_of("BranchesItems")


def _patterns(synth: Synth) -> list[dict[str, Any]]:
    return parse_patterns(synth.mapping_of("BranchesExperiments")["FilterCriteria"])


def test_the_experiments_mapping_filters_on_the_attribution_in_the_records_json_data(synth: Synth) -> None:
    assert _patterns(synth) == [{"data": {"attribution": {"variant": [{"exists": True}]}}}]


def _record(**fields: Any) -> bytes:
    event = {"event_id": "e1", "user_id": "u1", "event_type": "click", "item_id": "i1", **fields}
    return json.dumps(event).encode()


@pytest.mark.parametrize(
    ("data", "passes"),
    [
        (_record(attribution={"request_id": "r1", "variant": "control"}), True),
        (_record(attribution={"request_id": "r1", "variant": "b", "experiment_id": "x"}), True),
        (_record(), False),
        (_record(attribution=None), False),
        (_record(attribution={"request_id": "r1"}), False),
        (b"not json", False),
    ],
)
def test_only_attributed_events_reach_the_experiments_function(dev: Synth, data: bytes, passes: bool) -> None:
    # Given the synthesized filter, applied as Lambda applies it to Kinesis data (the emulator's filter)
    assert record_matches(_patterns(dev), data) is passes


@pytest.mark.parametrize(
    ("branch", "entry"), [("BranchesItems", "items"), ("BranchesExperiments", "experiments")]
)
def test_branch_mapping_invokes_its_own_handler(synth: Synth, branch: str, entry: str) -> None:
    function_id, function = synth.one("AWS::Lambda::Function", branch)
    assert function["Properties"]["Handler"] == f"aggregate.handler.{entry}"
    assert synth.mapping_of(branch)["FunctionName"] == ref(function_id)
