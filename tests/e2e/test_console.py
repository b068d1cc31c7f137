"""The local console (`/_local/console`): the stack's own dashboard drawn from the runtime's metrics."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from streamrec_core import constants

from local_emulator.metrics import dims

# Seconds after its time within which a datapoint may still be recorded (EMF, metered units); what the
# runtime observes itself (invocations, API requests, queue depths) is recorded at its time.
LATE_S = 5.0
RECORDED_AT_THEIR_TIME = frozenset({"AWS/Lambda", "AWS/ApiGateway", "AWS/SQS"})

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.embedded_only("the console is served by the embedded emulator's local runtime"),
]


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


def _template_dashboard(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The widgets of the synthesized template's dashboard (intrinsics replaced by a placeholder)."""
    (body,) = [
        r["Properties"]["DashboardBody"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    separator, parts = body["Fn::Join"]
    text = separator.join(p if isinstance(p, str) else "REF" for p in parts)
    return json.loads(text)["widgets"]


def test_console_draws_every_widget_of_the_templates_dashboard_with_the_runtimes_numbers(
    local_pipeline, unique_id
):
    pipeline = local_pipeline.pipeline
    admin = pipeline.endpoint_document()["admin_url"]
    # Given events accepted and processed by the pipeline
    events = [{"event_type": "view", "user_id": unique_id, "item_id": f"{unique_id}-i{n}"} for n in range(5)]
    assert local_pipeline.post_events(events).status == 200
    local_pipeline.wait_until_idle()

    # When the console page and its data are fetched
    status, content_type, page = _get(admin + "console")
    assert status == 200 and content_type.startswith("text/html") and b"console.json" in page
    status, _, raw = _get(admin + "console.json?minutes=15")
    document = json.loads(raw)

    # Then its widgets are the template's, in order, with the same titles, metric lines and periods
    expected = _template_dashboard(pipeline.stacks[0].template)
    assert [(w["type"], w["title"]) for w in document["widgets"]] == [
        (w["type"], w["properties"].get("title", "")) for w in expected
    ]
    for drawn, widget in zip(document["widgets"], expected, strict=True):
        if widget["type"] != "metric":
            continue
        lines = [m for m in widget["properties"]["metrics"] if m[-1].get("visible", True)]
        assert [s["period"] for s in drawn["series"]] == [m[-1]["period"] for m in lines], drawn["title"]
        assert [s.get("name") for s in drawn["series"]] == [
            None if "expression" in m[-1] else m[1] for m in lines
        ], drawn["title"]

    # And every metric point equals the runtime's own statistic for the same period. A function's EMF
    # and a metered Kinesis or DynamoDB unit are recorded after their time (when the invocation ends, at
    # the next monitor tick; the console's own experiment read makes some): their periods that ended
    # less than LATE_S before the page was computed may only have grown since (sums) or are not compared.
    checked = 0
    for widget in document["widgets"]:
        for series in widget.get("series", []):
            if "expression" in series:
                continue
            key = (series["namespace"], series["name"], dims(series["dimensions"]))
            for start, end, value in series["points"]:
                now = pipeline.runtime.metrics.statistic(*key, series["stat"], start, end)
                if series["namespace"] in RECORDED_AT_THEIR_TIME or end < document["now"] - LATE_S:
                    assert value == now, (series["label"], start, end)
                elif series["stat"] == "Sum":
                    assert (value or 0.0) <= (now or 0.0), (series["label"], start, end)
                checked += value is not None
    assert checked > 0
    accepted = next(
        s
        for w in document["widgets"]
        for s in w.get("series", [])
        if s.get("name") == constants.METRIC_EVENTS_ACCEPTED
    )
    assert sum(v for _, _, v in accepted["points"] if v is not None) >= len(events)

    # And the alarms widget names every alarm with its local state and when it changed
    (alarm_widget,) = [w for w in document["widgets"] if w["type"] == "alarm"]
    states = pipeline.alarm_states()
    assert {a["name"] for a in alarm_widget["alarms"]} <= set(states)
    for alarm in alarm_widget["alarms"]:
        assert alarm["state"] == states[alarm["name"]]["state"]
        assert alarm["changed_at"] == states[alarm["name"]]["changed_at"]

    # And the mappings, queue depths and the redrive command are shown
    assert document["mappings"] and all(m["shards"] >= 1 for m in document["mappings"])
    dlq = pipeline.outputs[constants.OUTPUT_DLQ_URL].rsplit("/", 1)[-1]
    on_failure = pipeline.outputs[constants.OUTPUT_ON_FAILURE_QUEUE_URL].rsplit("/", 1)[-1]
    assert {dlq, on_failure} <= set(document["queues"])
    assert document["redrive"]["command"] == "make redrive"


def test_console_refuses_a_window_that_is_not_a_number(local_pipeline):
    admin = local_pipeline.pipeline.endpoint_document()["admin_url"]
    try:
        urllib.request.urlopen(admin + "console.json?minutes=soon", timeout=30)
    except urllib.error.HTTPError as error:
        assert error.code == 400 and b"minutes" in error.read()
    else:
        raise AssertionError("a non-numeric window was accepted")


def test_kinesis_and_dynamodb_widgets_show_what_the_stream_and_tables_did(local_pipeline, unique_id):
    """The emulator meters what AWS would publish for the stream and the tables (service_metrics)."""
    pipeline = local_pipeline.pipeline
    runtime = pipeline.runtime
    stream = {"StreamName": pipeline.outputs[constants.OUTPUT_STREAM_NAME]}
    users = {"TableName": pipeline.outputs[constants.OUTPUT_USERS_TABLE]}
    items = {"TableName": pipeline.outputs[constants.OUTPUT_ITEMS_TABLE]}

    def total(namespace: str, name: str, dimensions: dict[str, str]) -> float:
        return runtime.metrics.statistic(namespace, name, dims(dimensions), "Sum", 0, 4e9) or 0.0

    def totals() -> dict[str, float]:
        # what the monitor does every second (take what the moto server metered), from four threads at
        # once besides the monitor's own: nothing may be recorded twice
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda _: runtime.sample(), range(4)))
        return {
            "records": total("AWS/Kinesis", "IncomingRecords", stream),
            "bytes": total("AWS/Kinesis", "IncomingBytes", stream),
            "user writes": total("AWS/DynamoDB", "ConsumedWriteCapacityUnits", users),
            "item writes": total("AWS/DynamoDB", "ConsumedWriteCapacityUnits", items),
            "user reads": total("AWS/DynamoDB", "ConsumedReadCapacityUnits", users),
        }

    local_pipeline.wait_until_idle()
    before = totals()
    # Given five events of a new user on five new items, processed, and the user's recommendations read
    events = [{"event_type": "view", "user_id": unique_id, "item_id": f"{unique_id}-i{n}"} for n in range(5)]
    assert local_pipeline.post_events(events).status == 200
    local_pipeline.wait_until_idle()
    assert local_pipeline.recommendations(unique_id).status == 200
    after = totals()

    # Then the stream counted exactly those records, and the tables the units their rows cost
    grew = {name: after[name] - before[name] for name in before}
    assert grew["records"] == len(events), grew
    assert grew["bytes"] >= sum(len(json.dumps(e)) for e in events), grew
    assert grew["user writes"] >= 1 and grew["item writes"] >= len(events), grew
    assert grew["user reads"] >= 0.5, grew
    # And throttles are an observed zero (moto never throttles), so the throttle widgets have data too
    assert runtime.metrics.statistic("AWS/DynamoDB", "WriteThrottleEvents", dims(users), "Sum", 0, 4e9) == 0
