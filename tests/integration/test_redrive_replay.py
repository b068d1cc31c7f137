"""Dead-letter replay with `python -m tools.redrive`, against a local AWS as `make up` leaves it.

moto's server runs in its own process (the emulator's `MotoServer`, reset for every test); the process
function's real handler runs here, fed by the emulator's event source mapping poller, and dead-letters
through its real SQS sender. The tool then reaches that AWS through an endpoint file, as it reaches a
running `make up`, with no AWS credentials in the environment.

The poison is a bug an operator can fix: a deploy whose record validation wrongly refuses events that
carry `properties` (the kind of bug where process is stricter than ingest). The fix is the replay running
the correct validation, as it does after the fixed code is deployed and redrive runs from that checkout.
"""

from __future__ import annotations

import base64
import io
import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from process import handler as process_handler
from process.config import ProcessConfig
from process.dead_letter import SQS_MAX_BYTES, message_body
from streamrec_core import constants as c
from streamrec_core import kinesis as records
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.dynamodb import DynamoStore
from streamrec_core.features.events import InvalidRecord, decode_event
from streamrec_core.features.item_aggregates import ItemRow, Neighbour
from streamrec_core.features.keys import USERS, item_key, user_key
from streamrec_core.features.user_fold import UserRow

from local_emulator import aws as local_aws
from local_emulator.esm import EsmConfig, EsmPoller
from local_emulator.moto_server import MotoServer
from local_emulator.testing import FakeClock, create_stream, handler_invoker, put
from tests.feature_kit import (
    ITEMS_TABLE,
    SHARD,
    USERS_TABLE,
    FaultyDynamoDB,
    aggregate_env,
    comparable,
    create_function,
    create_tables,
    event,
    expected_rows,
    process_env,
    reference_rows,
    scan_rows,
)
from tools import redrive
from tools.redrive import cli

STREAM = "events"
FEATURES = FeatureConfig(user_ttl_seconds=86_400, item_ttl_seconds=86_400, allowed_lateness_ms=3_600_000)
OVERSIZED = f"oversized: record data exceeds {SQS_MAX_BYTES} bytes"


def ts(n: int) -> str:
    return f"2024-05-01T12:{n // 60:02d}:{n % 60:02d}.000Z"


# u2's last event carries `properties`: the buggy deploy dead-letters it. It is u2's last event, so a
# replay after the others applies it in the same order as an in-order run, and the features must equal
# those of applying every event once.
EVENTS = [
    event(1, user="u1", item="i1", ts=ts(1)),
    event(2, user="u2", item="i2", ts=ts(2)),
    event(3, user="u1", item="i2", ts=ts(3), etype="add_to_cart"),
    event(4, user="u2", item="i1", ts=ts(4)),
    event(5, user="u2", item="i3", ts=ts(5), etype="purchase", properties={"coupon": "spring"}),
    event(6, user="u3", item="i3", ts=ts(6)),
]


@contextmanager
def validation_bug() -> Iterator[None]:
    """A deploy whose record decoding wrongly refuses every event that carries `properties`."""
    correct = records.to_event

    def buggy(record: records.KinesisRecord) -> Any:
        if record.data is not None and b'"properties"' in record.data:
            raise InvalidRecord("invalid: properties: is not allowed (the bug)")
        return correct(record)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(records, "to_event", buggy)
        yield


@dataclass
class LocalAws:
    """moto's server with the pipeline's queues, stream, tables and process function, and the endpoint
    file a running `make up` would leave."""

    endpoint: str
    endpoint_file: Path
    dlq: str
    on_failure: str
    stream_arn: str
    function_arn: str
    env: dict[str, str]
    sequence_numbers: list[str] = field(default_factory=list)
    throttling: bool = False
    _poller: EsmPoller | None = None

    def client(self, service: str) -> Any:
        return local_aws.client(service, self.endpoint)

    def process(self, events: list[dict[str, Any]], *, outage: bool = False) -> None:
        """Put the events on the stream and let the process function work through them (one mapping
        across calls, resuming at its checkpoint). With `outage`, DynamoDB throttles every write until
        the mapping gives up on the batch and sends it to the on-failure queue."""
        kinesis = self.client("kinesis")
        for body in events:
            data = json.dumps(body).encode()
            self.sequence_numbers.append(str(put(kinesis, STREAM, body["user_id"], data)))
        self.throttling = outage
        self.poller().run_until_idle()
        assert not self.throttling, "the outage did not end in the on-failure queue"

    def poller(self) -> EsmPoller:
        if self._poller is None:
            sqs = self.client("sqs")
            dynamodb = FaultyDynamoDB(
                self.client("dynamodb"), plan=lambda n: "throttle" if self.throttling else None
            )
            process_handler.configure(ProcessConfig.from_env(self.env), dynamodb, sqs, sleep=lambda s: None)

            def send_on_failure(message: dict[str, Any]) -> None:
                sqs.send_message(QueueUrl=self.on_failure, MessageBody=json.dumps(message))
                self.throttling = False  # the outage ends when the mapping gives up

            config = EsmConfig(
                self.stream_arn,
                self.function_arn,
                batch_size=10,
                report_batch_item_failures=True,
                maximum_retry_attempts=0,
                on_failure_destination="arn:aws:sqs:us-east-1:123456789012:on-failure",
            )
            self._poller = EsmPoller(
                self.client("kinesis"),
                config,
                invoke=handler_invoker(process_handler.handler),
                send_on_failure=send_on_failure,
                clock=FakeClock(),
            )
        return self._poller

    def visible(self, queue: str) -> list[dict[str, Any]]:
        """The messages a consumer gets right now; hidden ones are not among them (these stay visible)."""
        return (
            self.client("sqs")
            .receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0)
            .get("Messages", [])
        )

    def state(self) -> dict:
        """The user rows (no aggregate branch runs here: the item rows hold only what redrive wrote)."""
        return {k: v for k, v in comparable(scan_rows(self.client("dynamodb"))).items() if k.table == USERS}

    def reference(self) -> dict:
        events = [
            decode_event(json.dumps(body).encode(), shard_id=SHARD, sequence_number=seq, arrival_ms=0)
            for body, seq in zip(EVENTS, self.sequence_numbers, strict=True)
        ]
        rows = comparable(expected_rows(reference_rows(FEATURES, events)))
        return {k: v for k, v in rows.items() if k.table == USERS}

    def item_rows(self) -> dict:
        return {k: v for k, v in scan_rows(self.client("dynamodb")).items() if k.pk.startswith("item#")}


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = MotoServer(log_path=tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def local(moto_endpoint: str, tmp_path: Path) -> Iterator[LocalAws]:
    # Every test starts from an empty AWS (moto's reset endpoint); the server itself is shared.
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).close()

    def client(service: str) -> Any:
        return local_aws.client(service, moto_endpoint)

    create_tables(client("dynamodb"))
    dlq = client("sqs").create_queue(QueueName="dlq")["QueueUrl"]
    on_failure = client("sqs").create_queue(QueueName="on-failure")["QueueUrl"]
    stream_arn = create_stream(client("kinesis"), STREAM)
    env = process_env(FEATURES, dlq)
    function_arn = create_function(client("lambda"), client("iam"), env)
    items_arn = create_function(
        client("lambda"), client("iam"), aggregate_env(FEATURES), "items", "aggregate.handler.items"
    )
    for consumer in (function_arn, items_arn):  # redrive finds the stream's consumers by their mappings
        client("lambda").create_event_source_mapping(
            EventSourceArn=stream_arn, FunctionName=consumer, StartingPosition="TRIM_HORIZON"
        )
    endpoint_file = tmp_path / "endpoint.json"
    outputs = {c.OUTPUT_DLQ_URL: dlq, c.OUTPUT_ON_FAILURE_QUEUE_URL: on_failure}
    endpoint_file.write_text(
        json.dumps({"moto_endpoint": moto_endpoint, "region": local_aws.REGION, "outputs": outputs})
    )
    yield LocalAws(moto_endpoint, endpoint_file, dlq, on_failure, stream_arn, function_arn, env)
    process_handler.reset()


@dataclass
class Run:
    code: int
    summary: dict[str, Any]
    err: str


def run(local: LocalAws, *args: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = redrive.main(["--endpoint-file", str(local.endpoint_file), *args])
    return Run(code, json.loads(out.getvalue()), err.getvalue())


@pytest.fixture
def poisoned(local: LocalAws) -> LocalAws:
    """The buggy deploy processed EVENTS: event 5 is in the dead-letter queue, the rest applied."""
    with validation_bug():
        local.process(EVENTS)
    (message,) = local.visible(local.dlq)
    assert json.loads(message["Body"])[c.DLQ_REASON] == "invalid: properties: is not allowed (the bug)"
    assert local.item_rows() == {}
    assert local.state() != local.reference()
    return local


def test_dead_letter_replay_end_to_end_poison_fix_replay_applied_once(poisoned, no_aws_credentials):
    """Given an event dead-lettered by a bug, when the bug is fixed and the dead-letter queue is
    replayed (no AWS credentials needed locally), the event is applied exactly once: the features equal
    those of applying every event once, and the message is gone."""
    result = run(poisoned, "--source", "dlq")
    assert result.code == 0, result.err
    assert result.summary["dlq"] | {"problems": []} == {
        "messages": 1,
        "handled": 1,
        "kept": 0,
        "records": 1,
        "applied": 1,
        "already_applied": 0,
        "dead_lettered": 0,
        "uncertain": 0,
        "aggregated": 1,
        "rows_written": 3,
        "problems": [],
    }
    assert poisoned.state() == poisoned.reference()
    assert poisoned.visible(poisoned.dlq) == []
    # and its co-visitation pair (u2 looked at i1, then bought i3) is in both rows, once
    assert poisoned.item_rows() == {
        item_key("i1"): ItemRow(
            "i1", 1, poisoned.item_rows()[item_key("i1")].expires_at, "c1", {"i3": Neighbour(4, "c1")}
        ),
        item_key("i3"): ItemRow(
            "i3", 1, poisoned.item_rows()[item_key("i3")].expires_at, "c1", {"i1": Neighbour(4, "c1")}
        ),
    }


def test_a_second_replay_of_the_same_dead_letter_applies_nothing_twice(poisoned, no_aws_credentials):
    """Dead letters are at least once (a retried batch sends its poison again): replaying the same
    record twice, in one run or in two, changes the features once."""
    (message,) = poisoned.visible(poisoned.dlq)
    sqs = poisoned.client("sqs")
    sqs.send_message(QueueUrl=poisoned.dlq, MessageBody=message["Body"])  # the same record, twice
    first = run(poisoned, "--source", "dlq")
    assert first.code == 0 and first.summary["dlq"]["handled"] == 2
    assert first.summary["dlq"]["applied"] == 1 and first.summary["dlq"]["already_applied"] == 1
    after_first = poisoned.state()
    assert after_first == poisoned.reference()
    items_after_first = poisoned.item_rows()

    sqs.send_message(QueueUrl=poisoned.dlq, MessageBody=message["Body"])  # and once more, later
    second = run(poisoned, "--source", "dlq")
    assert second.code == 0 and second.summary["dlq"]["applied"] == 0
    assert second.summary["dlq"]["already_applied"] == 1
    assert poisoned.state() == after_first and poisoned.item_rows() == items_after_first


def test_dry_run_reports_what_it_would_apply_and_changes_nothing(poisoned, no_aws_credentials):
    before = scan_rows(poisoned.client("dynamodb"))
    result = run(poisoned, "--source", "dlq", "--dry-run")
    assert result.code == 0 and result.summary["dry_run"]
    assert result.summary["dlq"]["handled"] == 1 and result.summary["dlq"]["applied"] == 1
    assert scan_rows(poisoned.client("dynamodb")) == before
    assert len(poisoned.visible(poisoned.dlq)) == 1  # still there, and visible at once


def test_a_dead_letter_whose_cause_is_not_fixed_stays_visible_with_its_reason(poisoned, no_aws_credentials):
    """Replayed before the fix, the record fails again: it is reported with its reason, exit 1, the
    message is visible again at once, no second dead letter is sent and nothing is applied."""
    before = poisoned.state()
    with validation_bug():
        result = run(poisoned, "--source", "dlq")
    assert result.code == 1
    (problem,) = result.summary["dlq"]["problems"]
    assert "still failing: invalid: properties: is not allowed (the bug)" in problem and problem in result.err
    assert len(poisoned.visible(poisoned.dlq)) == 1
    assert poisoned.state() == before


def test_a_corrupt_row_or_message_is_reported_kept_visible_and_nothing_else_is_lost(
    poisoned, no_aws_credentials
):
    """Given three dead letters and a corrupt message, where one dead letter's user row is corrupt, a
    replay names each failing message with its error (no traceback), exits 1, leaves exactly those two
    visible at once and applies the other two; the next run finds them again."""
    sqs, dynamodb = poisoned.client("sqs"), poisoned.client("dynamodb")
    for n, user in ((7, "u7"), (8, "u8")):
        body = event(n, user=user, item="i1", ts=ts(n), properties={"coupon": "spring"})
        data = base64.b64encode(json.dumps(body).encode()).decode()
        dead = json.loads(poisoned.visible(poisoned.dlq)[0]["Body"])
        sqs.send_message(
            QueueUrl=poisoned.dlq,
            MessageBody=json.dumps({**dead, c.DLQ_PAYLOAD: data, c.DLQ_SEQUENCE_NUMBER: str(100 + n)}),
        )
    sqs.send_message(QueueUrl=poisoned.dlq, MessageBody='{"reason": "no payload"}')
    dynamodb.put_item(
        TableName=USERS_TABLE,
        Item={c.USERS_PK: {"S": "u7"}, c.ATTR_DATA: {"B": b"\xc1 not msgpack"}, c.ATTR_VERSION: {"N": "1"}},
    )

    result = run(poisoned, "--source", "dlq")

    assert result.code == 1 and "Traceback" not in result.err
    dlq = result.summary["dlq"]
    assert dlq["messages"] == 4 and dlq["handled"] == 2 and dlq["kept"] == 2
    corrupt_row = [p for p in dlq["problems"] if f"({SHARD} 107)" in p]
    corrupt_message = [p for p in dlq["problems"] if "payload_base64: missing" in p]
    assert (
        len(corrupt_row) == 1
        and "processing failed: StoreError: a user row does not decode" in corrupt_row[0]
    )
    assert len(corrupt_message) == 1
    assert all(problem in result.err for problem in dlq["problems"])
    visible = [json.loads(m["Body"]) for m in poisoned.visible(poisoned.dlq)]
    assert sorted(body.get(c.DLQ_SEQUENCE_NUMBER, "") for body in visible) == ["", "107"]
    rows = DynamoStore(dynamodb, USERS_TABLE, ITEMS_TABLE).get_many(
        [user_key("u8"), user_key("u2")], consistent=True
    )
    u8, u2 = rows[user_key("u8")], rows[user_key("u2")]
    assert isinstance(u8, UserRow) and u8.counts == {"view": 1}
    assert isinstance(u2, UserRow) and u2.counts["purchase"] == 1
    again = run(poisoned, "--source", "dlq")
    assert again.code == 1 and again.summary["dlq"]["messages"] == 2


def test_a_truncated_payload_cannot_be_replayed_and_is_kept(local, no_aws_credentials):
    record = records.KinesisRecord(SHARD, "9", "u9", b"x" * SQS_MAX_BYTES, 0, local.stream_arn)
    body = message_body(records.DeadLetter(record, OVERSIZED))
    local.client("sqs").send_message(QueueUrl=local.dlq, MessageBody=body)
    result = run(local, "--source", "dlq")
    assert result.code == 1
    (problem,) = result.summary["dlq"]["problems"]
    assert "truncated" in problem and "cannot be replayed" in problem and OVERSIZED in problem
    assert len(local.visible(local.dlq)) == 1


def test_one_command_replays_both_queues(local, no_aws_credentials):
    """Given a poison event (dead-lettered) and later a batch given up on in a DynamoDB outage
    (on-failure), one run of the default command applies both, each event once."""
    with validation_bug():
        local.process(EVENTS[:5])
    local.process(EVENTS[5:], outage=True)
    assert len(local.visible(local.dlq)) == 1 and len(local.visible(local.on_failure)) == 1
    result = run(local)
    assert result.code == 0, result.err
    assert result.summary["dlq"]["handled"] == 1 and result.summary["on-failure"]["handled"] == 1
    assert result.summary["dlq"]["applied"] == 1 and result.summary["on-failure"]["applied"] == 1
    assert local.state() == local.reference()
    assert local.visible(local.dlq) == [] and local.visible(local.on_failure) == []


def test_an_unreachable_local_endpoint_is_a_clear_error(tmp_path, no_aws_credentials):
    """A `.local/endpoint.json` left behind by a pipeline that is gone: exit 2 and say so."""
    stale = tmp_path / "endpoint.json"
    outputs = {c.OUTPUT_DLQ_URL: "http://127.0.0.1:9/123456789012/dlq"}
    stale.write_text(json.dumps({"moto_endpoint": "http://127.0.0.1:9", "outputs": outputs}))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = redrive.main(["--endpoint-file", str(stale), "--source", "dlq"])
    assert code == 2 and "is `make up` still running?" in err.getvalue() and "Traceback" not in err.getvalue()


def test_the_local_pipeline_is_found_by_default_and_aws_needs_credentials(tmp_path, no_aws_credentials):
    args = cli.build_parser().parse_args([])
    with pytest.raises(cli.RunError, match="make up"):
        cli.resolve_target(args, default_file=tmp_path / "absent.json")
    endpoint_file = tmp_path / "endpoint.json"
    endpoint_file.write_text(json.dumps({"moto_endpoint": "http://127.0.0.1:1234", "region": "eu-west-1"}))
    target = cli.resolve_target(args, default_file=endpoint_file)
    assert target.endpoint == "http://127.0.0.1:1234" and target.region == "eu-west-1"
    aws_args = cli.build_parser().parse_args(["--dlq-url", "https://sqs.eu-west-1.amazonaws.com/1/dlq"])
    with pytest.raises(cli.RunError, match="no AWS credentials"):
        cli.resolve_target(aws_args, default_file=endpoint_file)
