"""The cost model against hand-computed AWS bills (us-east-1 prices from bench/prices.json).

Every expected number below is worked out in the comment above it from the published unit prices, so
a wrong tier boundary, a missing round-up or a swapped unit shows up as a different figure.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bench.cost_model import (
    LEVERS,
    ON_DEMAND,
    PROFILES,
    PROVISIONED,
    FunctionProfile,
    Prices,
    Profile,
    apply_overrides,
    deployed_settings,
    function_invocations_per_second,
    lambda_gb_seconds,
    lever_bills,
    main,
    monthly_bill,
    process_invocations_per_second,
    provisioned_shards,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prices() -> Prices:
    return Prices.load()


def line(bill, service: str, item_prefix: str):
    (found,) = [x for x in bill.lines if x.service == service and x.item.startswith(item_prefix)]
    return found


# --- Price data -----------------------------------------------------------------------------------------


def test_every_price_states_its_unit_source_and_date():
    data = json.loads((REPO_ROOT / "bench" / "prices.json").read_text())
    assert data["region"] == "us-east-1" and data["checked_on"]
    for key, entry in data["prices"].items():
        assert entry["unit"] and entry["source"] and entry["source_date"], key
        assert ("price" in entry) != ("tiers" in entry), key
        if "tiers" in entry:
            bounds = [t["up_to"] for t in entry["tiers"]]
            assert bounds[-1] is None and bounds[:-1] == sorted(bounds[:-1]), key


# --- API Gateway tiers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requests", "expected"),
    [
        # exactly the first tier: 333 M x $3.50/M = $1,165.50
        (333e6, 1165.50),
        # 67 M into the second tier: 1,165.50 + 67 x 2.80 = 1,165.50 + 187.60 = $1,353.10
        (400e6, 1353.10),
        # the second tier full at 1 B: 1,165.50 + 667 x 2.80 (1,867.60) = $3,033.10
        (1e9, 3033.10),
        # 21 B: 3,033.10 + 19,000 M x 2.38 (45,220) + 1,000 M x 1.51 (1,510) = $49,763.10
        (21e9, 49763.10),
    ],
)
def test_api_gateway_rest_requests_are_priced_tier_by_tier(prices, requests, expected):
    assert prices.cost("apigw_rest_request", requests) == pytest.approx(expected)


def test_reads_on_an_http_api_leave_only_ingest_on_the_rest_tiers(prices):
    # 1,000 ingest requests/s x 2,628,000 s = 2.628 B on REST: 1,165.50 + 1,867.60
    # + (2,628 M - 1,000 M) x $2.38/M (3,874.64) = $6,907.74
    # 10,000 reads/s = 26.28 B on the HTTP API: 300 M x $1.00/M + 25,980 M x $0.90/M = $23,682
    bill = monthly_bill(dataclasses.replace(PROFILES["large-100k"], read_api="http"), prices)
    assert line(bill, "API Gateway", "REST requests").cost == pytest.approx(6907.74)
    http = line(bill, "API Gateway", "HTTP API requests")
    assert http.quantity == pytest.approx(26.28e9)
    assert http.cost == pytest.approx(23682.0)


def test_large_profile_api_gateway_line(prices):
    # 100,000 events/s / 100 per request = 1,000 req/s, plus 10,000 reads/s = 11,000 req/s
    # x 2,628,000 s = 28.908 B requests.
    # 1,165.50 + 1,867.60 + 45,220 + (28,908 M - 20,000 M) x 1.51 (13,451.08) = $61,704.18
    bill = monthly_bill(PROFILES["large-100k"], prices)
    api = line(bill, "API Gateway", "REST requests")
    assert api.quantity == pytest.approx(28.908e9)
    assert api.cost == pytest.approx(61704.18)


# --- Kinesis ---------------------------------------------------------------------------------------------


def _one_event_per_second(record_bytes: float) -> Profile:
    return Profile(
        "unit",
        events_per_second=1,
        reads_per_second=0,
        event_bytes=record_bytes,
        record_overhead_bytes=0,
        stream_retention_hours=24,
    )


def test_put_payload_units_round_up_per_25_kb(prices):
    # 1 event/s = 2,628,000 records a month.
    # 25,600 B = exactly 25 KB -> 1 unit each: 2.628 M units x $0.014/M = $0.036792
    at_limit = monthly_bill(_one_event_per_second(25 * 1024), prices)
    assert line(at_limit, "Kinesis", "provisioned PUT").quantity == 2_628_000
    assert line(at_limit, "Kinesis", "provisioned PUT").cost == pytest.approx(0.036792)
    # 25,601 B -> 2 units each: 5.256 M units x $0.014/M = $0.073584
    over = monthly_bill(_one_event_per_second(25 * 1024 + 1), prices)
    assert line(over, "Kinesis", "provisioned PUT").quantity == 5_256_000
    assert line(over, "Kinesis", "provisioned PUT").cost == pytest.approx(0.073584)


def test_on_demand_data_rounds_each_record_up_to_1_kb(prices):
    # 1,025 B -> 2 KB a record; 2,628,000 records x 2 KB = 5,256,000 KB = 5.0125 GB (/ 1024^2)
    # in: 5.0125 x $0.08 = $0.4010; out for 3 consumers (hot path, items, experiments):
    # 15.0375 GB x $0.04 = $0.6015
    bill = monthly_bill(_one_event_per_second(1025), prices)
    data_in = line(bill, "Kinesis", "on-demand data in")
    assert data_in.quantity == pytest.approx(5.012512)
    assert data_in.cost == pytest.approx(0.401001)
    data_out = line(bill, "Kinesis", "on-demand data out (3 consumers)")
    assert data_out.quantity == pytest.approx(15.037537)
    assert data_out.cost == pytest.approx(0.601501)
    # the stream-hour: 730 x $0.04 = $29.20
    assert line(bill, "Kinesis", "on-demand stream-hours").cost == pytest.approx(29.20)


def test_provisioned_shards_follow_the_tightest_limit_with_headroom():
    # 100,000 records/s of 460 B: bytes in 46 MB/s -> 43.9 shards; records -> 100 shards;
    # out for 3 consumers 138 MB/s / 2 MB/s -> 65.8; so 100 / 0.8 target utilisation = 125 shards
    assert provisioned_shards(PROFILES["large-100k"]) == 125
    # 1,000 small records/s -> 1 shard by records / 0.8 = 1.25 -> 2 shards
    assert provisioned_shards(PROFILES["small-1k"]) == 2
    # 100 records/s of 20 KB: 2,048,000 B/s in -> 1.95 shards; out x3 = 6,144,000 B/s / 2 MB/s -> 2.93;
    # / 0.8 -> 3.66 -> 4 shards (the three consumers' reads are the tightest limit)
    big = dataclasses.replace(
        PROFILES["small-1k"], events_per_second=100, event_bytes=20 * 1024, record_overhead_bytes=0
    )
    assert provisioned_shards(big) == 4
    # with one consumer (the previous design) bytes in are: 1.95 / 0.8 -> 3 shards
    assert provisioned_shards(dataclasses.replace(big, stream_consumers=1)) == 3


def test_large_profile_kinesis_provisioned_lines(prices):
    bill = monthly_bill(PROFILES["large-100k"], prices)
    # 125 shards x 730 h = 91,250 shard-hours x $0.015 = $1,368.75
    assert line(bill, "Kinesis", "provisioned 125 shards").cost == pytest.approx(1368.75)
    # 262.8 B records x 1 unit x $0.014/M = $3,679.20
    assert line(bill, "Kinesis", "provisioned PUT").cost == pytest.approx(3679.20)
    # retention 168 h: 91,250 shard-hours x $0.02 = $1,825
    assert line(bill, "Kinesis", "provisioned retention").cost == pytest.approx(1825.00)


# --- Lambda ----------------------------------------------------------------------------------------------


def test_lambda_gb_seconds_round_duration_up_to_the_millisecond():
    # 1,000 invocations x 30 ms x 1 GB = 30 GB-s; 30.2 ms bills as 31 ms -> 31 GB-s; 512 MB halves it
    assert lambda_gb_seconds(1000, FunctionProfile(duration_ms=30, memory_mb=1024)) == pytest.approx(30)
    assert lambda_gb_seconds(1000, FunctionProfile(duration_ms=30.2, memory_mb=1024)) == pytest.approx(31)
    assert lambda_gb_seconds(1000, FunctionProfile(duration_ms=30, memory_mb=512)) == pytest.approx(15)


def test_lambda_duration_tiers_per_architecture(prices):
    # arm64, 8 B GB-s: 7.5 B x $0.0000133334 (100,000.50) + 0.5 B x $0.0000120001 (6,000.05) = $106,000.55
    assert prices.cost("lambda_gb_second_arm64", 8e9) == pytest.approx(106000.55)
    # x86_64, 8 B GB-s: 6 B x $0.0000166667 (100,000.20) + 2 B x $0.000015 (30,000) = $130,000.20
    assert prices.cost("lambda_gb_second_x86_64", 8e9) == pytest.approx(130000.20)


def test_small_profile_lambda_lines(prices):
    # ingest 1,000/100 = 10 req/s, process 1 batch/s (2 shards x 500 events/s x 2 s window = 1,000 = batch
    # size), serve 100 req/s: 111 invocations/s x 2,628,000 s = 291,708,000 x $0.20/M = $58.3416
    # (the aggregate functions are priced in test_aggregate_functions_fill_their_batches_per_window)
    profile = dataclasses.replace(
        PROFILES["small-1k"],
        aggregate_branches=False,
        batching_window_seconds=2.0,  # stated here: the arithmetic must not follow cdk.json's profile
        ingest=FunctionProfile(duration_ms=30, memory_mb=1024),
        process=FunctionProfile(duration_ms=300, memory_mb=1769),
        serve=FunctionProfile(duration_ms=25, memory_mb=1024),
    )
    bill = monthly_bill(profile, prices)
    assert line(bill, "Lambda", "requests").quantity == pytest.approx(291_708_000)
    assert line(bill, "Lambda", "requests").cost == pytest.approx(58.3416)
    # GB-s: ingest 26.28 M x 0.030 s x 1 GB = 788,400; process 2.628 M x 0.300 s x 1769/1024 GB
    # = 1,361,991.80; serve 262.8 M x 0.025 s x 1 GB = 6,570,000; total 8,720,391.80 GB-s
    # x $0.0000133334 (first arm64 tier) = $116.2725
    duration = line(bill, "Lambda", "duration arm64")
    assert duration.quantity == pytest.approx(8_720_391.80)
    assert duration.cost == pytest.approx(116.2725, abs=1e-4)


def test_process_batches_fill_to_the_batch_size_or_the_window():
    small = dataclasses.replace(PROFILES["small-1k"], batching_window_seconds=2.0)
    # 500 events/s per shard x 2 s window = 1,000 events = batch size -> 1 invocation/s
    assert process_invocations_per_second(small, shards=2) == pytest.approx(1.0)
    # no window: Lambda still polls each shard once a second -> 500-event batches -> 2 invocations/s
    assert process_invocations_per_second(dataclasses.replace(small, batching_window_seconds=0), 2) == 2
    # a trickle: 1 event/s on 4 shards -> batches of 1 (never fewer than one event) -> 1 invocation/s
    assert process_invocations_per_second(dataclasses.replace(small, events_per_second=1), 4) == 1


# --- DynamoDB, CloudWatch, totals ---------------------------------------------------------------------------


def test_large_profile_dynamodb_on_demand_and_provisioned(prices):
    profile = dataclasses.replace(
        PROFILES["large-100k"],
        ddb_write_units_per_event=0.6,
        ddb_process_read_units_per_event=0.15,
        ddb_aggregate_write_units_per_event=0.4,
        ddb_aggregate_read_units_per_event=0.3,
        ddb_read_units_per_recommendation=8,
    )
    bill = monthly_bill(profile, prices)
    # 100,000 events/s x 2,628,000 s = 262.8 B events a month.
    # hot path writes: 262.8 B x 0.6 WRU = 157.68 B WRU x $0.625/M = $98,550
    assert line(bill, "DynamoDB", "on-demand WRU, process").cost == pytest.approx(98550.0)
    # aggregate branches' writes: 262.8 B x 0.4 = 105.12 B WRU x $0.625/M = $65,700
    assert line(bill, "DynamoDB", "on-demand WRU, aggregate").cost == pytest.approx(65700.0)
    # reads: hot path 262.8 B x 0.15 = 39.42 B RRU x $0.125/M = $4,927.50; aggregate 262.8 B x 0.3 =
    # 78.84 B RRU = $9,855; serve 10,000/s x 8 RRU x 2,628,000 s = 210.24 B RRU = $26,280
    assert line(bill, "DynamoDB", "on-demand RRU, process").cost == pytest.approx(4927.50)
    assert line(bill, "DynamoDB", "on-demand RRU, aggregate").cost == pytest.approx(9855.0)
    assert line(bill, "DynamoDB", "on-demand RRU, serve").cost == pytest.approx(26280.0)
    # provisioned: (0.6 + 0.4) x 100,000 = 100,000 WRU/s / 0.7 = 142,857.1 -> 142,858 WCU
    # x 730 h x $0.00065 = $67,786.12
    assert line(bill, "DynamoDB", "provisioned 142,858 WCU").cost == pytest.approx(67786.121)
    # (0.15 + 0.3) x 100,000 + 80,000 = 125,000 RRU/s / 0.7 = 178,571.4 -> 178,572 RCU
    # x 730 h x $0.00013 = $16,946.48
    assert line(bill, "DynamoDB", "provisioned 178,572 RCU").cost == pytest.approx(16946.4828)


def test_the_previous_design_has_one_consumer_and_no_aggregate_branches(prices):
    # Given the previous design: one process function did everything, one consumer read the stream
    profile = dataclasses.replace(
        PROFILES["large-100k"], aggregate_branches=False, stream_consumers=1, ddb_write_units_per_event=9.4
    )
    bill = monthly_bill(profile, prices)
    # Then no aggregate function or DynamoDB line is billed, even with aggregate units in the profile
    assert not [x for x in bill.lines if "aggregate" in x.item]
    assert not [n for n in bill.notes if n.startswith("aggregate")]
    # and Kinesis data out is data in once: 262.8 B records x 1 KB / 1024^2 = 250,625.6 GB
    # x $0.04 = $10,025.02
    assert line(bill, "Kinesis", "on-demand data out (1 consumer)").cost == pytest.approx(10025.024, rel=1e-6)
    # and its writes: 262.8 B x 9.4 WRU = 2,470.32 B WRU x $0.625/M = $1,543,950
    assert line(bill, "DynamoDB", "on-demand WRU, process").cost == pytest.approx(1543950.0)


def test_aggregate_functions_fill_their_batches_per_window(prices):
    # 100,000 events/s on 125 shards = 800 events/s a shard; the items mapping's 10 s window holds 8,000
    # records (under the 10,000 batch size): 100,000 / 8,000 = 12.5 invocations/s. The experiments
    # mapping passes 2% of records: 16 a shard a second, 160 a window: 2,000 / 160 = 12.5 invocations/s.
    profile = dataclasses.replace(
        PROFILES["large-100k"],
        aggregate_batching_window_seconds=10.0,
        aggregate_batch_size=10_000,
        attributed_share=0.02,
        aggregate_items=FunctionProfile(duration_ms=4000, memory_mb=1024),
        aggregate_experiments=FunctionProfile(duration_ms=50, memory_mb=512),
    )
    rates = function_invocations_per_second(profile, provisioned_shards(profile))
    assert rates["aggregate_items"] == pytest.approx(12.5)
    assert rates["aggregate_experiments"] == pytest.approx(12.5)
    # a 20 s window would hold 16,000 records a shard: batches stop at 10,000 -> 10 invocations/s
    longer = dataclasses.replace(profile, aggregate_batching_window_seconds=20.0)
    assert function_invocations_per_second(longer, 125)["aggregate_items"] == pytest.approx(10.0)
    # GB-s a month: items 12.5/s x 2,628,000 s x 4 s x 1 GB = 131,400,000; experiments 12.5/s x 2,628,000
    # x 0.05 s x 0.5 GB = 821,250
    bill = monthly_bill(profile, prices)
    items_note = next(n for n in bill.notes if n.startswith("aggregate_items:"))
    experiments_note = next(n for n in bill.notes if n.startswith("aggregate_experiments:"))
    assert items_note.endswith("= 131,400,000 GB-s")
    assert experiments_note.endswith("= 821,250 GB-s")


def test_each_lever_is_the_bill_with_its_overrides_and_all_together_cost_least(prices):
    profile = PROFILES["large-100k"]
    rows = lever_bills(profile, prices)
    assert [r["lever"] for r in rows] == [name for name, _ in LEVERS] + ["all of the above"]
    base = monthly_bill(profile, prices)
    for row, (_name, lever) in zip(rows[:-1], LEVERS, strict=True):
        alone = monthly_bill(apply_overrides(profile, lever(profile)), prices)
        assert row["on_demand_per_million"] == pytest.approx(alone.per_million_events(ON_DEMAND), abs=1e-4)
        assert row["provisioned_per_million"] <= base.per_million_events(PROVISIONED) + 1e-9
    assert rows[-1]["provisioned_per_million"] == min(r["provisioned_per_million"] for r in rows)


def test_lambda_logs_use_the_vended_log_tiers(prices):
    # 60 TB: 10 TB x $0.50 + 20 TB x $0.25 + 20 TB x $0.10 + 10 TB x $0.05, 1 TB = 1,024 GB:
    # 5,120 + 5,120 + 2,048 + 512 = $12,800
    assert prices.cost("cloudwatch_lambda_logs_ingest_gb", 60 * 1024) == pytest.approx(12800.0)


def test_totals_pick_one_mode_and_cost_per_million_divides_by_events(prices):
    bill = monthly_bill(PROFILES["medium-10k"], prices)
    common = sum(x.cost for x in bill.lines if x.option == "common")
    on_demand = sum(x.cost for x in bill.lines if x.option == ON_DEMAND)
    provisioned = sum(x.cost for x in bill.lines if x.option == PROVISIONED)
    assert bill.total(ON_DEMAND) == pytest.approx(common + on_demand)
    assert bill.total(PROVISIONED) == pytest.approx(common + provisioned)
    # 10,000 events/s x 2,628,000 s = 26,280 million events
    assert bill.per_million_events(ON_DEMAND) == pytest.approx(bill.total(ON_DEMAND) / 26_280)


# --- Inputs ----------------------------------------------------------------------------------------------


def test_settings_come_from_the_chosen_profile_in_cdk_json(tmp_path):
    # Given a cdk.json whose prod profile differs from the model's own defaults
    prod = {
        "stream": {"mode": "PROVISIONED", "shard_count": 4, "retention_hours": 48},
        "event_source": {"batch_size": 250, "max_batching_window_seconds": 0},
        "functions": {
            "ingest": {"memory_mb": 256},
            "process": {"memory_mb": 3008},
            "serve": {"memory_mb": 512},
            "architecture": "x86_64",
            "log_retention": "TWO_WEEKS",
        },
    }
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"context": {"profiles": {"prod": prod}}}))
    # When the model reads it and applies it to a profile
    profile = apply_overrides(Profile("p", 10, 1), deployed_settings(path))
    # Then batch, window, retention, architecture, log retention (in days) and memory follow it
    assert (profile.batch_size, profile.batching_window_seconds, profile.stream_retention_hours) == (
        250,
        0,
        48,
    )
    assert (profile.architecture, profile.log_retention_days) == ("x86_64", 14)
    assert [f.memory_mb for f in (profile.ingest, profile.process, profile.serve)] == [256, 3008, 512]
    # and the named profiles use the repository's own prod settings
    assert PROFILES["large-100k"].process.memory_mb == deployed_settings()["process"]["memory_mb"]


def test_measured_values_replace_defaults_and_unknown_keys_fail():
    measured = {"ddb_write_units_per_event": 0.3, "process": {"duration_ms": 120}}
    profile = apply_overrides(PROFILES["small-1k"], measured)
    assert profile.ddb_write_units_per_event == 0.3
    assert profile.process == FunctionProfile(duration_ms=120, memory_mb=1769, log_bytes_per_invocation=2000)
    with pytest.raises(ValueError, match="unknown profile field"):
        apply_overrides(PROFILES["small-1k"], {"write_units": 1})
    with pytest.raises(ValueError, match="unknown process fields"):
        apply_overrides(PROFILES["small-1k"], {"process": {"duration": 1}})


def test_cli_prints_json_per_profile_with_measured_file(tmp_path, capsys):
    measured = tmp_path / "measured.json"
    measured.write_text(
        json.dumps(
            {
                "ddb_write_units_per_event": 0.0,
                "ddb_process_read_units_per_event": 0.0,
                "ddb_read_units_per_recommendation": 0.0,
                "ddb_aggregate_write_units_per_event": 0.0,
                "ddb_aggregate_read_units_per_event": 0.0,
            }
        )
    )
    assert main(["--profile", "small-1k", "--measured", str(measured), "--json"]) == 0
    (bill,) = json.loads(capsys.readouterr().out)["bills"]
    assert bill["profile"]["name"] == "small-1k"
    # with no DynamoDB traffic, its on-demand share is storage only: 5 GB x $0.25 = $1.25
    assert bill["totals"][ON_DEMAND]["by_service"]["DynamoDB"] == pytest.approx(1.25)
    assert bill["totals"][ON_DEMAND]["per_million_events_usd"] > 0


def test_the_aggregate_branches_settings_come_from_cdk_json_when_it_has_them(tmp_path):
    # Given a prod profile with the aggregate functions and mappings
    prod = {
        "stream": {"retention_hours": 24},
        "event_source": {"batch_size": 1000, "max_batching_window_seconds": 0},
        "aggregate_source": {"batch_size": 5000, "max_batching_window_seconds": 20},
        "experiments_source": {"batch_size": 200, "max_batching_window_seconds": 5},
        "functions": {
            "ingest": {"memory_mb": 256},
            "process": {"memory_mb": 1769},
            "aggregate": {"memory_mb": 2048},
            "experiments": {"memory_mb": 256},
            "serve": {"memory_mb": 512},
            "architecture": "arm64",
            "log_retention": "ONE_WEEK",
        },
    }
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"context": {"profiles": {"prod": prod}}}))
    profile = apply_overrides(Profile("p", 10, 1), deployed_settings(path))
    # Then the branches' memory, batch sizes and windows follow it
    assert (profile.aggregate_items.memory_mb, profile.aggregate_experiments.memory_mb) == (2048, 256)
    assert (profile.aggregate_batch_size, profile.aggregate_batching_window_seconds) == (5000, 20)
    assert (profile.experiments_batch_size, profile.experiments_batching_window_seconds) == (200, 5)
