"""The local console: the stack's own CloudWatch dashboard, alarms, mappings and queues, drawn locally.

Served by the local gateway under ``/_local/`` (127.0.0.1 only, loopback Host headers only; no key
because nothing but this machine can reach it):

- ``/_local/console``: the page (``static/console.html``, plain SVG charts, no network needed);
- ``/_local/console.json?minutes=N``: what the page draws. The widgets are those of the
  ``AWS::CloudWatch::Dashboard`` the emulator deployed (read back from moto's CloudWatch, so titles,
  metrics, statistics and periods are the template's; nothing is listed twice); each metric's points
  are `MetricStore.statistic` over the widget's periods, the same numbers the alarms are evaluated on.
  With the alarms' local states (and when each changed), the event source mappings' progress and the
  dead-letter / on-failure queue depths, and the local-only sections other local tools add (e.g. the
  storefront's freshness per click and its experiment's CTR per variant), drawn apart from the dashboard.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local_emulator.alarms import metric_math
from local_emulator.metrics import MetricStore, compute_statistic, dims

STATIC = Path(__file__).with_name("static")
# Most points one series carries (a long window at a short period would otherwise grow the page).
MAX_POINTS = 120
DEFAULT_MINUTES = 15
# The window console.json draws: at least a minute, at most the 6 hours the metric store keeps.
MIN_MINUTES = 1
MAX_MINUTES = 360
# Finer periods the page may ask for instead of the dashboard's own (a few minutes of clicking draws a
# point per minute at 60 s; at 1 s a sum is per second). The dashboard's periods stay the default.
LOCAL_PERIODS_S = (1, 10)
REDRIVE_COMMAND = "make redrive"
REDRIVE_DOC = "docs/runbook.md#redrive"
# A local-only section: called with (now, window_s), returns {"kind": "points" | "intervals", "title", ...}.
Section = Callable[[float, float], dict[str, Any]]


def parse_dashboard(body: str) -> list[dict[str, Any]]:
    """The widgets of a dashboard body, each metric line expanded to {namespace, name, dimensions, ...}.

    Metric lines are CloudWatch's ``[namespace, name, dim, value, ..., {options}]`` (``"."`` repeats the
    previous line's entry) or ``[{"expression": ..., "id": ...}]`` for metric math.
    """
    widgets = []
    for raw in json.loads(body).get("widgets", []):
        properties = raw.get("properties", {})
        widget: dict[str, Any] = {"type": raw.get("type"), "title": properties.get("title", "")}
        if raw.get("type") == "text":
            widget["markdown"] = properties.get("markdown", "")
        elif raw.get("type") == "alarm":
            widget["alarms"] = [arn.rsplit(":", 1)[-1] for arn in properties.get("alarms", [])]
        elif raw.get("type") == "metric":
            widget["metrics"] = _metric_lines(properties.get("metrics", []), properties)
        widgets.append(widget)
    return widgets


def _metric_lines(lines: list[list[Any]], properties: dict[str, Any]) -> list[dict[str, Any]]:
    expanded = []
    previous: list[Any] = []
    for line in lines:
        options = line[-1] if line and isinstance(line[-1], dict) else {}
        parts = line[:-1] if options else line
        period = int(options.get("period") or properties.get("period") or 300)
        common = {
            "id": options.get("id"),
            "label": options.get("label"),
            "visible": options.get("visible", True),
            "y_axis": options.get("yAxis", "left"),
            "period": period,
        }
        if not parts and "expression" in options:
            expanded.append({**common, "expression": options["expression"]})
            continue
        parts = [
            previous[i] if value == "." and i < len(previous) else value for i, value in enumerate(parts)
        ]
        previous = parts
        namespace, name, *pairs = parts
        dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
        stat = options.get("stat") or properties.get("stat") or "Average"
        label = common["label"] or f"{name} {stat}"
        expanded.append(
            {
                **common,
                "label": label,
                "namespace": namespace,
                "name": name,
                "dimensions": dimensions,
                "stat": stat,
            }
        )
    return expanded


def parse_minutes(text: str) -> float:
    """console.json's ``minutes``: a number from MIN_MINUTES to MAX_MINUTES, else ValueError saying so
    (NaN, infinities and negatives included: they are not windows)."""
    try:
        minutes = float(text)
    except ValueError:
        minutes = math.nan
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise ValueError(f"minutes must be a number from {MIN_MINUTES} to {MAX_MINUTES}, not {text[:40]!r}")
    return minutes


def parse_period(text: str) -> int | None:
    """console.json's ``period``: ``dashboard`` (or absent: each line's own period) or one of
    LOCAL_PERIODS_S seconds for every line; else ValueError saying so."""
    if text in ("", "dashboard"):
        return None
    if text in {str(p) for p in LOCAL_PERIODS_S}:
        return int(text)
    allowed = ", ".join(str(p) for p in LOCAL_PERIODS_S)
    raise ValueError(f"period must be dashboard or one of {allowed} (seconds), not {text[:40]!r}")


class Console:
    """Answers the console's routes from the deployed dashboard and the runtime's state."""

    def __init__(
        self,
        widgets: list[dict[str, Any]],
        metrics: MetricStore,
        *,
        alarms: Callable[[], dict[str, dict[str, Any]]],
        status: Callable[[], dict[str, Any]],
        queue_depths: Callable[[], dict[str, int | None]],
        sections: Callable[[], list[Section]] = list,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.widgets = widgets
        self._metrics = metrics
        self._alarms = alarms
        self._status = status
        self._queue_depths = queue_depths
        self._sections = sections
        self._clock = clock

    def page(self) -> bytes:
        """The console's HTML page."""
        return (STATIC / "console.html").read_bytes()

    def document(
        self, minutes: float = DEFAULT_MINUTES, now: float | None = None, period: int | None = None
    ) -> dict[str, Any]:
        """Everything the page draws, for the window of `minutes` ending `now`; `period` (seconds) draws
        every metric line at that period instead of the dashboard's (its own stays in `dashboard_period`)."""
        now = self._clock() if now is None else now
        window_s = max(MIN_MINUTES, min(float(minutes), MAX_MINUTES)) * 60.0
        alarms = self._alarms()
        widgets = []
        for widget in self.widgets:
            drawn = dict(widget)
            if widget["type"] == "metric":
                drawn["series"] = self._series(widget["metrics"], now, window_s, period)
                drawn.pop("metrics")
            elif widget["type"] == "alarm":
                drawn["alarms"] = [
                    {"name": name, **_alarm_summary(alarms.get(name))} for name in widget["alarms"]
                ]
            widgets.append(drawn)
        return {
            "now": now,
            "window_s": window_s,
            "period": period or "dashboard",
            "widgets": widgets,
            "mappings": self._status().get("pollers", []),
            "queues": self._queue_depths(),
            "redrive": {"command": REDRIVE_COMMAND, "doc": REDRIVE_DOC},
            "local": [section(now, window_s) for section in self._sections()],
        }

    def _series(
        self, lines: list[dict[str, Any]], now: float, window_s: float, override: int | None = None
    ) -> list[dict[str, Any]]:
        """Each visible line's points [start, end, value]: periods aligned to the epoch, the last one
        ending now (CloudWatch aligns periods the same way; the current period is partial). Metric math
        is computed after the metrics it names (a dashboard may list an expression first)."""
        values: list[list[float | None]] = []
        windows: list[list[tuple[float, float]]] = []
        for line in lines:
            period = override or line["period"]
            count = min(MAX_POINTS, max(1, math.ceil(window_s / period)))
            last_start = math.floor(now / period) * period
            starts = [last_start - (count - 1 - i) * period for i in range(count)]
            windows.append([(start, min(start + period, now)) for start in starts])
            if "expression" in line:
                values.append([])
                continue
            key = (line["namespace"], line["name"], dims(line["dimensions"]))
            values.append(
                [compute_statistic(self._metrics.values(*key, s, e), line["stat"]) for s, e in windows[-1]]
            )
        by_id = {line["id"]: v for line, v in zip(lines, values, strict=True) if line.get("id")}
        for index, line in enumerate(lines):
            if "expression" in line:
                values[index] = [
                    metric_math(
                        line["expression"], {k: v[i] if i < len(v) else None for k, v in by_id.items()}
                    )
                    for i in range(len(windows[index]))
                ]
        return [
            {
                **{k: v for k, v in line.items() if k != "visible"},
                "period": override or line["period"],
                "dashboard_period": line["period"],
                "points": [[s, e, v] for (s, e), v in zip(window, series, strict=True)],
            }
            for line, window, series in zip(lines, windows, values, strict=True)
            if line["visible"]
        ]


def _alarm_summary(state: dict[str, Any] | None) -> dict[str, Any]:
    if state is None:
        return {"state": "UNKNOWN", "changed_at": "", "reason": "not deployed locally"}
    return {
        "state": state.get("state"),
        "changed_at": state.get("changed_at"),
        "reason": state.get("reason"),
        "evaluated_locally": state.get("evaluated_locally"),
    }
