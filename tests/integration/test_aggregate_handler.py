"""aggregate.handler.items / .experiments against moto, after process.handler on the same Kinesis fixture."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from aggregate import handler as aggregate_handler
from aggregate.config import AggregateConfig
from moto import mock_aws
from process import handler as process_handler
from process.config import ProcessConfig
from streamrec_core import constants as c
from streamrec_core.env import ConfigError
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.counters import CounterRow
from streamrec_core.features.item_aggregates import ItemRow, Neighbour
from streamrec_core.features.keys import experiment_key, item_key, partial_key, trending_key
from streamrec_core.features.trending import TrendingList

from local_emulator.worker_main import LambdaContext
from tests.feature_kit import FaultyDynamoDB, aggregate_env, create_tables, process_env, scan_rows

FIXTURE = json.loads(
    (Path(__file__).resolve().parent.parent / "fixtures" / "process" / "kinesis_batch.json").read_text()
)
CFG = FeatureConfig(user_ttl_seconds=2_592_000, item_ttl_seconds=604_800, allowed_lateness_ms=3_600_000)
SHARD = "shardId-000000000003"


@pytest.fixture
def aws():
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        create_tables(dynamodb)
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        process_handler.configure(ProcessConfig.from_env(process_env(CFG, dlq)), dynamodb, sqs)
        spy = FaultyDynamoDB(dynamodb)
        # The fixture's records are from 2024: tell the branches the hot path never gives a record up.
        config = AggregateConfig.from_env(aggregate_env(CFG, hot_path_max_record_age_s=-1))
        aggregate_handler.configure(config, spy, sleep=lambda s: None)
        yield dynamodb, spy
        process_handler.reset()
        aggregate_handler.reset()


def emf(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


def test_the_item_branch_writes_the_pair_the_trending_partial_and_the_merged_lists(aws):
    dynamodb, spy = aws
    assert process_handler.handler(FIXTURE, LambdaContext("process")) == {"batchItemFailures": []}
    assert aggregate_handler.items(FIXTURE, LambdaContext("items")) == {"batchItemFailures": []}
    rows = scan_rows(dynamodb)
    # alice looked at book-1, then book-2 (cart, purchase): one pair per book-2 event, in both rows
    book1, book2 = rows[item_key("book-1")], rows[item_key("book-2")]
    assert isinstance(book1, ItemRow) and isinstance(book2, ItemRow)
    assert book1.neighbours == {"book-2": Neighbour(3 + 4, "books")}
    assert book2.neighbours == {"book-1": Neighbour(3 + 4, "books")}
    assert set(book1.watermarks) == {SHARD}
    assert partial_key(SHARD) in rows
    merged = rows[trending_key()]
    assert isinstance(merged, TrendingList) and {t.item for t in merged.items} == {"book-1", "book-2"}
    # one read pass for users, one for the rows it changes, the merge's reads
    assert spy.batch_get_calls <= 4


def test_a_redelivered_batch_changes_no_item_row(aws):
    dynamodb, spy = aws
    process_handler.handler(FIXTURE, LambdaContext("process"))
    aggregate_handler.items(FIXTURE, LambdaContext("items"))
    before = {k: v for k, v in scan_rows(dynamodb).items() if k.pk.startswith("item#")}
    puts = spy.put_calls
    assert aggregate_handler.items(FIXTURE, LambdaContext("items")) == {"batchItemFailures": []}
    assert {k: v for k, v in scan_rows(dynamodb).items() if k.pk.startswith("item#")} == before
    assert spy.put_calls == puts + 1  # only the branch's progress row


def test_records_the_hot_path_has_not_applied_are_handed_back(aws):
    assert aggregate_handler.items(FIXTURE, LambdaContext("items")) == {
        "batchItemFailures": [{"itemIdentifier": FIXTURE["Records"][0]["kinesis"]["sequenceNumber"]}]
    }


def test_the_experiment_branch_counts_per_variant_and_emits_dimensioned_metrics(aws, capsys):
    dynamodb, _spy = aws
    process_handler.handler(FIXTURE, LambdaContext("process"))
    emf(capsys)
    assert aggregate_handler.experiments(FIXTURE, LambdaContext("experiments")) == {"batchItemFailures": []}
    rows = scan_rows(dynamodb)
    treatment, control = (
        rows[experiment_key("ranking", "treatment")],
        rows[experiment_key("ranking", "control")],
    )
    assert isinstance(treatment, CounterRow) and isinstance(control, CounterRow)
    assert (treatment.purchases, control.impressions) == (1, 1)
    blobs = emf(capsys)
    per_variant = [b for b in blobs if c.METRIC_VARIANT_PURCHASES in b and c.METRIC_DIMENSION_VARIANT in b]
    assert [(b[c.METRIC_DIMENSION_EXPERIMENT], b[c.METRIC_DIMENSION_VARIANT]) for b in per_variant] == [
        ("ranking", "treatment")
    ]
    assert per_variant[0]["service"] == c.EXPERIMENTS_SERVICE


def test_records_the_hot_path_never_applied_within_its_record_age_were_given_up_and_are_skipped(aws, capsys):
    dynamodb, spy = aws
    aggregate_handler.configure(
        AggregateConfig.from_env(aggregate_env(CFG, hot_path_max_record_age_s=3600)),
        spy,
        sleep=lambda s: None,
    )
    # the hot path never applied these 2024 records: its mapping discarded them long ago
    assert aggregate_handler.items(FIXTURE, LambdaContext("items")) == {"batchItemFailures": []}
    assert not any(key.pk.startswith("item#") for key in scan_rows(dynamodb))
    # counted where a person sees it: the on-failure queue holds them until redrive
    (blob,) = [b for b in emf(capsys) if c.METRIC_AGGREGATE_GIVEN_UP in b]
    poison = 2  # undecodable: the hot path dead-letters them, the branch only skips them
    assert blob[c.METRIC_AGGREGATE_GIVEN_UP] == [len(FIXTURE["Records"]) - poison]


def test_a_missing_setting_fails_the_cold_start_naming_the_variable():
    for name in (c.ENV_ITEMS_TABLE, c.ENV_OUTBOX_RETENTION_SECONDS, c.ENV_HOT_PATH_MAX_RECORD_AGE_SECONDS):
        env = {k: v for k, v in aggregate_env(CFG).items() if k != name}
        with pytest.raises(ConfigError, match=name):
            AggregateConfig.from_env(env)
