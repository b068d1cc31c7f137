"""The embedded emulator end to end on a tiny CDK app (tests/integration/emulator_app): synthesize, deploy
the template into moto's server, and check what the local runtime serves: API Gateway's REST proxy
contract with API keys and usage plans, the Kinesis event source mapping's on-failure destination, a
locally evaluated alarm that fires and notifies its SNS topic, and three mappings on one stream (own
settings, own checkpoints, a filter) whose functions use handler names other than `handler` and a layer."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from local_emulator.pipeline import REPO_ROOT, LocalPipeline

APP_DIR = Path(__file__).resolve().parent / "emulator_app"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    with LocalPipeline.start(
        profile="test",
        app_dir=APP_DIR,
        workdir=tmp_path_factory.mktemp("emulator"),
        cache_root=REPO_ROOT / ".local" / "cdk.out-fixtures",
    ) as running:
        yield running


def _call(url, method="GET", key=None, body=None, headers=None):
    request = urllib.request.Request(url, method=method, data=body, headers=dict(headers or {}))
    if key is not None:
        request.add_header("x-api-key", key)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_deploy_names_each_api_key_by_its_output(pipeline):
    """Keys are created with generated values and named after the stack's <Role>ApiKeyId outputs."""
    assert set(pipeline.api_keys) == {"main", "slow", "idle"}
    assert all(len(value) == 40 for value in pipeline.api_keys.values())
    assert pipeline.base_url.endswith("/test")


def test_keyed_method_without_api_key_is_forbidden(pipeline):
    """API Gateway answers 403 {"message":"Forbidden"} when a required API key is missing."""
    status, _, body = _call(f"{pipeline.base_url}/echo/42")
    assert status == 403
    assert json.loads(body) == {"message": "Forbidden"}


def test_keyed_method_with_unknown_api_key_is_forbidden(pipeline):
    """An API key that does not exist is refused like a missing one."""
    status, _, body = _call(f"{pipeline.base_url}/echo/42", key="x" * 40)
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})


def test_key_whose_usage_plan_covers_no_stage_is_forbidden(pipeline):
    """A key only opens the API stages of its usage plans."""
    status, _, _ = _call(f"{pipeline.base_url}/echo/42", key=pipeline.api_keys["idle"])
    assert status == 403


def test_method_without_key_requirement_needs_no_key(pipeline):
    # Given a key sent anyway: on a keyless method API Gateway names no key in the event
    status, _, raw = _call(f"{pipeline.base_url}/open", key=pipeline.api_keys["main"])
    assert status == 201
    identity = json.loads(raw)["event"]["requestContext"]["identity"]
    assert identity["apiKey"] is None and identity["apiKeyId"] is None


def test_function_receives_the_rest_proxy_event_and_a_lambda_context(pipeline):
    """The integration receives API Gateway's REST proxy event (version 1.0) and a Lambda context."""
    # Given a valid key, path and query parameters, a repeated header and a JSON body
    key = pipeline.api_keys["main"]
    status, _, raw = _call(
        f"{pipeline.base_url}/echo/item%2042?k=5&tag=a&tag=b",
        method="POST",
        key=key,
        body=b'{"hello": "world"}',
        headers={"content-type": "application/json", "x-trace": "t-1"},
    )

    # Then the function saw every field of the proxy event
    assert status == 201
    answer = json.loads(raw)
    event = answer["event"]
    assert event["resource"] == "/echo/{id}"
    assert event["path"] == "/echo/item%2042"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"id": "item 42"}
    assert event["queryStringParameters"] == {"k": "5", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"k": ["5"], "tag": ["a", "b"]}
    headers = {k.lower(): v for k, v in event["headers"].items()}
    assert headers["x-trace"] == "t-1"
    assert {k.lower(): v for k, v in event["multiValueHeaders"].items()}["x-trace"] == ["t-1"]
    assert event["body"] == '{"hello": "world"}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "test"
    assert context["httpMethod"] == "POST"
    assert context["resourcePath"] == "/echo/{id}"
    assert context["identity"]["apiKey"] == key
    # the id functions compare with the key id they accept (streamrec_core.routes.authorize)
    key_ids = {k["value"]: k["id"] for stack in pipeline.stacks for k in stack.api_keys.values()}
    assert context["identity"]["apiKeyId"] == key_ids[key]
    assert context["requestId"]
    # And a Lambda-like context: name, memory from the template, ARN and remaining time under 5 s
    assert answer["context"]["function_name"] == pipeline.outputs["EchoFunctionName"]
    assert answer["context"]["memory_limit_in_mb"] == "256"
    assert answer["context"]["invoked_function_arn"].endswith(
        f":function:{pipeline.outputs['EchoFunctionName']}"
    )
    assert 0 < answer["context"]["remaining_ms"] <= 5000


def test_proxy_response_sets_status_headers_and_body(pipeline):
    """statusCode, headers and multiValueHeaders of the Lambda proxy response reach the client."""
    status, headers, raw = _call(f"{pipeline.base_url}/open")
    assert status == 201
    assert headers["x-single"] == "one"
    assert headers.get_all("x-multi") == ["a", "b"]
    assert json.loads(raw)["event"]["resource"] == "/open"


def test_function_error_is_a_502(pipeline):
    """A handler exception becomes 502 {"message":"Internal server error"}, and the runtime survives."""
    status, _, body = _call(f"{pipeline.base_url}/boom")
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
    assert _call(f"{pipeline.base_url}/open")[0] == 201


def test_malformed_proxy_response_is_a_502(pipeline):
    status, _, body = _call(f"{pipeline.base_url}/malformed")
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})


def test_unknown_route_and_unknown_stage_are_403(pipeline):
    """API Gateway: no resource -> "Missing Authentication Token"; no stage -> "Forbidden"."""
    status, _, body = _call(f"{pipeline.base_url}/nowhere")
    assert (status, json.loads(body)) == (403, {"message": "Missing Authentication Token"})
    stage_url = pipeline.base_url.rsplit("/", 1)[0] + "/nostage/open"
    status, _, body = _call(stage_url)
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})


def test_usage_plan_throttle_answers_429(pipeline):
    """A key's usage plan throttle (burst 1, one token per 100 s) refuses the second request in a row."""
    key = pipeline.api_keys["slow"]
    first, _, _ = _call(f"{pipeline.base_url}/limited", key=key)
    second, _, body = _call(f"{pipeline.base_url}/limited", key=key)
    assert first == 201
    assert (second, json.loads(body)) == (429, {"message": "Too Many Requests"})


def test_payload_over_ten_megabytes_is_refused(pipeline):
    status, _, _ = _call(
        f"{pipeline.base_url}/echo/1",
        method="POST",
        key=pipeline.api_keys["main"],
        body=b"x" * (10 * 1024 * 1024 + 1),
    )
    assert status == 413


def test_poison_record_reaches_the_on_failure_queue_in_aws_shape(pipeline):
    """The event source mapping (retries 0) sends a failing batch's metadata to its SQS destination."""
    # Given a poison record on the stream
    kinesis, sqs = pipeline.client("kinesis"), pipeline.client("sqs")
    stream = pipeline.outputs["StreamName"]
    sequence = kinesis.put_record(StreamName=stream, PartitionKey="p", Data=b"poison")["SequenceNumber"]

    # When the pipeline has processed the stream
    pipeline.wait_until_idle(timeout_s=60)

    # Then the on-failure queue holds AWS's invocation record for it
    messages = sqs.receive_message(
        QueueUrl=pipeline.outputs["OnFailureQueueUrl"], MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", [])
    infos = [json.loads(m["Body"])["KinesisBatchInfo"] for m in messages]
    mine = [info for info in infos if info["startSequenceNumber"] == sequence]
    assert len(mine) == 1
    assert mine[0]["batchSize"] == 1
    assert mine[0]["streamArn"].endswith(f":stream/{stream}")
    body = json.loads(next(m["Body"] for m in messages if sequence in m["Body"]))
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert body["responseContext"]["functionError"] == "Unhandled"


def test_queue_depth_alarm_fires_and_notifies_its_topic(pipeline):
    """The template's alarm (skipped by moto's CloudFormation) is evaluated locally from the queue's
    real depth; on ALARM it is visible in moto's CloudWatch and published to its SNS action."""
    # Given a poison record processed into the on-failure queue
    kinesis = pipeline.client("kinesis")
    kinesis.put_record(StreamName=pipeline.outputs["StreamName"], PartitionKey="p", Data=b"poison")
    pipeline.wait_until_idle(timeout_s=60)

    # When the alarms are evaluated
    states = pipeline.evaluate_alarms()

    # Then the depth alarm is in ALARM locally and in moto
    assert states["fixture-on-failure-depth"]["state"] == "ALARM"
    described = pipeline.client("cloudwatch").describe_alarms(AlarmNames=["fixture-on-failure-depth"])
    assert described["MetricAlarms"][0]["StateValue"] == "ALARM"
    # And the SNS topic delivered CloudWatch's notification to its subscribed queue
    notifications: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not notifications and time.monotonic() < deadline:
        received = pipeline.client("sqs").receive_message(
            QueueUrl=pipeline.outputs["AlarmInboxUrl"], MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        notifications = [json.loads(m["Body"]) for m in received.get("Messages", [])]
    assert any(
        n["AlarmName"] == "fixture-on-failure-depth" and n["NewStateValue"] == "ALARM" for n in notifications
    )


def test_dashboard_names_the_api_stage_moto_skipped(pipeline):
    """A dashboard graphing the stage's metrics refers to the stage, which moto's CloudFormation does not
    create (it writes "None" there); the deploy puts the body again, resolved from the template."""
    body = pipeline.client("cloudwatch").get_dashboard(DashboardName="fixture-dashboard")["DashboardBody"]
    [series] = json.loads(body)["widgets"][0]["properties"]["metrics"]
    assert series[:4] == ["AWS/ApiGateway", "Count", "ApiName", "Api"]
    assert series[4:6] == ["Stage", pipeline.outputs["ApiStageName"]] == ["Stage", "test"]


def test_mapping_updates_in_moto_reach_the_poller(pipeline):
    """UpdateEventSourceMapping (here Enabled false, then true) is read back by the running poller."""
    lambda_client, kinesis = pipeline.client("lambda"), pipeline.client("kinesis")
    (mapping,) = lambda_client.list_event_source_mappings(FunctionName=pipeline.outputs["SinkFunctionName"])[
        "EventSourceMappings"
    ]
    (poller,) = [t.poller for t in pipeline.runtime.pollers if t.poller.config.uuid == mapping["UUID"]]

    # Given a disabled mapping
    lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    _eventually(lambda: not poller.config.enabled)

    # When a record arrives, nothing reads it
    read_before = poller.records_read()
    kinesis.put_record(StreamName=pipeline.outputs["StreamName"], PartitionKey="p", Data=b"fine")
    pipeline.wait_until_idle(timeout_s=30)
    assert poller.records_read() == read_before

    # Then, enabled again, the mapping delivers it
    lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    _eventually(lambda: poller.records_read() == read_before + 1)


def _eventually(check, timeout_s=15.0):
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def _recorded_batches(pipeline):
    sqs, url = pipeline.client("sqs"), pipeline.outputs["RecordedQueueUrl"]
    batches: list[Any] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        if not messages:
            return batches
        for message in messages:
            batches.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_three_mappings_on_one_stream_each_deliver_with_their_own_settings_and_checkpoints(pipeline):
    """Like streamrec's hot path and aggregate branches: every mapping reads the whole stream on its own;
    the filtered one gets only attributed records and checkpoints past the others."""
    # Given seven records on the branch stream in one PutRecords: four attributed, two not, one non-JSON
    kinesis = pipeline.client("kinesis")
    stream = pipeline.outputs["BranchStreamName"]
    entries = []
    for i in range(6):
        event: dict[str, Any] = {"event_id": f"e{i}", "user_id": f"u{i % 3}"}
        if i != 1 and i != 4:
            event["attribution"] = {"request_id": f"r{i}", "variant": "control"}
        entries.append({"PartitionKey": f"u{i % 3}", "Data": json.dumps(event).encode()})
    entries.append({"PartitionKey": "u0", "Data": b"not json"})
    written = kinesis.put_records(StreamName=stream, Records=entries)["Records"]
    seqs = [r["SequenceNumber"] for r in written]

    # When the pipeline is idle
    pipeline.wait_until_idle(timeout_s=60)

    # Then the hot path got all seven in batches of at most two, each partition key in stream order
    batches = _recorded_batches(pipeline)
    hot = [b for b in batches if b["branch"] == "hot"]
    assert sorted(s for b in hot for s in b["sequence_numbers"]) == sorted(seqs, key=int)
    assert all(len(b["sequence_numbers"]) <= 2 for b in hot)
    for key in ("u0", "u1", "u2"):
        order = [
            s
            for b in hot
            for s, k in zip(b["sequence_numbers"], b["partition_keys"], strict=True)
            if k == key
        ]
        assert order == sorted(order, key=int)
    # And the windowed branch got all seven at once (its batch holds up to 100; the window gathers them)
    items = [b["sequence_numbers"] for b in batches if b["branch"] == "items"]
    assert items == [seqs]
    # And the filtered branch got only the attributed records, two per batch, never the non-JSON one
    experiments = [b for b in batches if b["branch"] == "experiments"]
    attributed = [seqs[i] for i in (0, 2, 3, 5)]
    assert [b["sequence_numbers"] for b in experiments] == [attributed[:2], attributed[2:]]
    assert all(all(b["decodable"]) for b in experiments)
    # And every mapping of the stream is checkpointed at the stream's last record
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    pollers = [t.poller for t in pipeline.runtime.pollers if t.poller.config.event_source_arn == arn]
    assert len(pollers) == 3
    for poller in pollers:
        assert poller.checkpoints() == {"shardId-000000000000": int(seqs[-1])}
