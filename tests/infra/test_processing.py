"""The Kinesis -> process event source mapping (the hot path) and the process function's queues."""

from __future__ import annotations

from tests.infra.conftest import QUEUES, Synth, arn_of, ref


def test_dev_profile_uses_pairwise_distinct_numbers_so_a_swapped_argument_cannot_pass(dev: Synth) -> None:
    # Given the dev event source settings
    es = dev.settings.event_source
    values = [
        es.batch_size,
        int(es.max_batching_window.to_seconds()),
        es.parallelization_factor,
        es.retry_attempts,
        int(es.max_record_age.to_seconds()),
    ]
    # Then no two are equal (otherwise the next test could not catch swapped keyword arguments)
    assert len(set(values)) == len(values), values


def test_event_source_mapping_takes_every_value_from_its_own_setting(synth: Synth) -> None:
    # Given the synthesized mapping of this profile
    esm = synth.mapping_of("ProcessingProcess")
    es = synth.settings.event_source
    # Then each property equals the one setting it belongs to
    assert esm["BatchSize"] == es.batch_size
    assert esm["MaximumBatchingWindowInSeconds"] == es.max_batching_window.to_seconds()
    assert esm["ParallelizationFactor"] == es.parallelization_factor
    assert esm["MaximumRetryAttempts"] == es.retry_attempts
    assert esm["MaximumRecordAgeInSeconds"] == es.max_record_age.to_seconds()
    assert esm["StartingPosition"] == es.starting_position


def test_event_source_mapping_reports_item_failures_bisects_and_sends_exhausted_batches_to_a_queue(
    synth: Synth,
) -> None:
    esm = synth.mapping_of("ProcessingProcess")
    stream_id, _ = synth.one("AWS::Kinesis::Stream")
    process_id, _ = synth.one("AWS::Lambda::Function", "ProcessingProcess")
    on_failure_id, _ = synth.one("AWS::SQS::Queue", "ProcessingOnFailureQueue")

    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["BisectBatchOnFunctionError"] is True
    assert esm["DestinationConfig"] == {"OnFailure": {"Destination": arn_of(on_failure_id)}}
    assert esm["EventSourceArn"] == arn_of(stream_id)
    assert esm["FunctionName"] == ref(process_id)
    # The hot path sees every record: no filter.
    assert "FilterCriteria" not in esm


def test_process_function_sends_poison_records_to_its_own_dead_letter_queue_not_the_on_failure_queue(
    synth: Synth,
) -> None:
    from streamrec_core import constants as c

    dlq_id, _ = synth.one("AWS::SQS::Queue", "ProcessingDeadLetterQueue")
    on_failure_id, _ = synth.one("AWS::SQS::Queue", "ProcessingOnFailureQueue")
    env = synth.props("AWS::Lambda::Function", "ProcessingProcess")["Environment"]["Variables"]

    assert dlq_id != on_failure_id
    assert env[c.ENV_DLQ_URL] == ref(dlq_id)


def test_queues_keep_messages_for_fourteen_days_so_a_redrive_can_wait_out_a_long_weekend(
    synth: Synth,
) -> None:
    for queue in synth.every("AWS::SQS::Queue", *QUEUES).values():
        assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
