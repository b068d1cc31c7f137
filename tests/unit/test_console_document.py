"""The console's reading of a dashboard body and the points it draws (local_emulator/console.py)."""

from __future__ import annotations

import json

import pytest

from local_emulator.console import Console, parse_dashboard
from local_emulator.metrics import MetricStore, dims

BODY = json.dumps(
    {
        "widgets": [
            {"type": "text", "properties": {"markdown": "## Ingest"}},
            {
                "type": "alarm",
                "properties": {"title": "Alarms", "alarms": ["arn:aws:cloudwatch:r:1:alarm:a-1"]},
            },
            {
                "type": "metric",
                "properties": {
                    "title": "Events",
                    "metrics": [
                        [{"label": "ratio", "expression": "FILL(ok, 0) / n", "period": 60}],
                        ["NS", "Accepted", "service", "ingest", {"period": 60, "stat": "Sum", "id": "ok"}],
                        [
                            ".",
                            "Received",
                            ".",
                            ".",
                            {"period": 60, "stat": "Sum", "id": "n", "visible": False},
                        ],
                        [
                            "NS",
                            "Latency",
                            "service",
                            "ingest",
                            {"period": 300, "stat": "p99", "yAxis": "right"},
                        ],
                    ],
                },
            },
        ]
    }
)


def _console(store: MetricStore, states: dict | None = None) -> Console:
    return Console(
        parse_dashboard(BODY),
        store,
        alarms=lambda: states or {},
        status=lambda: {"pollers": []},
        queue_depths=lambda: {"dlq": 0},
    )


def test_dashboard_lines_expand_repeats_options_and_metric_math():
    (_, alarm, metric) = parse_dashboard(BODY)
    assert alarm["alarms"] == ["a-1"]
    ratio, accepted, received, latency = metric["metrics"]
    assert ratio["expression"] == "FILL(ok, 0) / n" and ratio["period"] == 60
    assert (accepted["namespace"], accepted["name"], accepted["dimensions"]) == (
        "NS",
        "Accepted",
        {"service": "ingest"},
    )
    # "." repeats the entry of the line above
    assert (received["namespace"], received["dimensions"], received["visible"]) == (
        "NS",
        {"service": "ingest"},
        False,
    )
    assert (latency["stat"], latency["period"], latency["y_axis"]) == ("p99", 300, "right")


def test_points_are_the_stores_statistics_per_aligned_period_and_math_after_its_inputs():
    store = MetricStore(clock=lambda: 0.0)
    now = 10_000.0  # periods of 60 s aligned to the epoch: ..., [9900, 9960), [9960, 10000]
    for at, value in [(9_901.0, 2.0), (9_959.0, 3.0), (9_961.0, 4.0), (10_000.0, 1.0)]:
        store.put("NS", "Accepted", {"service": "ingest"}, value, timestamp=at)
    for at in (9_901.0, 9_961.0, 9_962.0, 9_963.0):
        store.put("NS", "Received", {"service": "ingest"}, 5.0, timestamp=at)
    document = _console(store).document(minutes=2, now=now)
    (metric,) = [w for w in document["widgets"] if w["type"] == "metric"]
    ratio, accepted, latency = metric["series"]  # the invisible line is not drawn
    assert [p[:2] for p in accepted["points"]] == [[9_900.0, 9_960.0], [9_960.0, 10_000.0]]
    key = ("NS", "Accepted", dims({"service": "ingest"}))
    for start, end, value in accepted["points"]:
        assert value == store.statistic(*key, "Sum", start, end)
    assert [p[2] for p in accepted["points"]] == [5.0, 5.0]
    # the expression, listed before its inputs, is computed from them period by period
    assert [p[2] for p in ratio["points"]] == [5.0 / 5.0, 5.0 / 15.0]


def test_a_period_without_data_is_null():
    body = json.dumps(
        {"widgets": [{"type": "metric", "properties": {"title": "t", "metrics": [
            ["AWS/Kinesis", "IncomingRecords", "StreamName", "s", {"period": 60, "stat": "Sum"}],
        ]}}]}
    )  # fmt: skip
    console = Console(parse_dashboard(body), MetricStore(), alarms=dict, status=dict, queue_depths=dict)
    (series,) = console.document(minutes=2, now=600.0)["widgets"][0]["series"]
    assert [p[2] for p in series["points"]] == [None, None]


def test_alarm_widget_shows_each_alarms_local_state_and_change_time():
    states = {"a-1": {"state": "ALARM", "changed_at": "2026-01-01T00:00:00.000+0000", "reason": "r"}}
    (alarm,) = [
        w for w in _console(MetricStore(), states).document(now=60.0)["widgets"] if w["type"] == "alarm"
    ]
    assert alarm["alarms"] == [
        {"name": "a-1", "state": "ALARM", "changed_at": "2026-01-01T00:00:00.000+0000", "reason": "r",
         "evaluated_locally": None}
    ]  # fmt: skip


@pytest.mark.parametrize("minutes", [0, -5, 10_000])
def test_the_window_is_bounded(minutes):
    document = _console(MetricStore()).document(minutes=minutes, now=60_000.0)
    assert 60.0 <= document["window_s"] <= 360 * 60.0


def test_local_sections_are_listed_apart_from_the_dashboards_widgets():
    calls = []

    def section(now: float, window_s: float) -> dict:
        calls.append((now, window_s))
        return {"kind": "points", "title": "local", "points": [[now, 5.0]]}

    console = Console(
        parse_dashboard(BODY),
        MetricStore(),
        alarms=dict,
        status=dict,
        queue_depths=dict,
        sections=lambda: [section],
    )
    document = console.document(minutes=5, now=1_000.0)
    assert document["local"] == [{"kind": "points", "title": "local", "points": [[1_000.0, 5.0]]}]
    assert calls == [(1_000.0, 300.0)]
    assert "local" not in [w["title"] for w in document["widgets"]]


def test_a_local_period_draws_every_line_at_it_keeping_the_dashboards_own_and_its_math():
    store = MetricStore(clock=lambda: 0.0)
    now = 10_005.0  # 10 s periods: ..., [9970, 9980), [9980, 9990), [9990, 10000), [10000, 10005]
    for at, value in [(9_975.0, 2.0), (9_981.0, 3.0), (9_999.0, 4.0)]:
        store.put("NS", "Accepted", {"service": "ingest"}, value, timestamp=at)
        store.put("NS", "Received", {"service": "ingest"}, 2 * value, timestamp=at)
    document = _console(store).document(minutes=1, now=now, period=10)
    (metric,) = [w for w in document["widgets"] if w["type"] == "metric"]
    ratio, accepted, latency = metric["series"]
    # Then each line is drawn at 10 s periods aligned to the epoch, saying the dashboard's own
    assert [(s["period"], s["dashboard_period"]) for s in (ratio, accepted, latency)] == [
        (10, 60),
        (10, 60),
        (10, 300),
    ]
    windows = [p[:2] for p in accepted["points"][-4:]]
    assert windows == [[9_970.0, 9_980.0], [9_980.0, 9_990.0], [9_990.0, 10_000.0], [10_000.0, 10_005.0]]
    key = ("NS", "Accepted", dims({"service": "ingest"}))
    for start, end, value in accepted["points"]:
        assert value == store.statistic(*key, "Sum", start, end)
    assert [p[2] for p in accepted["points"][-4:]] == [2.0, 3.0, 4.0, None]
    assert [p[2] for p in ratio["points"][-4:-1]] == [0.5, 0.5, 0.5]  # the math per 10 s period
    assert document["period"] == 10
    assert _console(store).document(minutes=1, now=now)["period"] == "dashboard"
