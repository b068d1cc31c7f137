"""Locally evaluated CloudWatch alarms.

moto's CloudFormation skips ``AWS::CloudWatch::Alarm``; the deploy step creates the template's alarms in
moto's CloudWatch (``PutMetricAlarm``) and this evaluator reads them back (``DescribeAlarms``) and
evaluates them from the datapoints the runtime observes (`MetricStore`): for each of the last
``EvaluationPeriods`` windows of ``Period`` seconds ending now, the alarm's statistic is compared with its
threshold; ``DatapointsToAlarm`` breaching windows make ALARM, and ``TreatMissingData`` decides what
windows without data mean. Metric-math alarms are evaluated when their expression is plain arithmetic
over their metrics (``m1 / m2 * 100``, ``FILL(m1, 0)``).

A state change is written to moto (``SetAlarmState``, so ``DescribeAlarms`` shows it), to
``.local/alarms.json``, and published to the alarm's SNS actions in CloudWatch's notification format.
"""

from __future__ import annotations

import ast
import datetime as _dt
import functools
import json
import logging
import operator
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_emulator import aws
from local_emulator.metrics import MetricStore, compute_statistic, dims

log = logging.getLogger(__name__)

OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


@dataclass
class AlarmState:
    """The local state of one alarm."""

    name: str
    state: str = INSUFFICIENT
    reason: str = "Unchecked: initial alarm creation"
    evaluated: bool = True
    last_value: float | None = None
    changed_at: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON form for the admin endpoint and ``.local/alarms.json``."""
        return {
            "name": self.name,
            "state": self.state,
            "reason": self.reason,
            "evaluated_locally": self.evaluated,
            "last_value": self.last_value,
            "changed_at": self.changed_at,
            "history": self.history[-20:],
        }


class AlarmEvaluator:
    """Evaluates the alarms deployed in moto against a `MetricStore`."""

    def __init__(
        self,
        cloudwatch: Any,
        sns: Any,
        store: MetricStore,
        *,
        clock: Callable[[], float] = time.time,
        state_file: Path | None = None,
        alarm_names: list[str] | None = None,
    ) -> None:
        self._cloudwatch = cloudwatch
        self._sns = sns
        self._store = store
        self._clock = clock
        self._state_file = state_file
        self._lock = threading.Lock()
        self.definitions = self._load(alarm_names)
        self.states = {
            name: AlarmState(name, evaluated=_evaluable(d)) for name, d in self.definitions.items()
        }
        if self._state_file is not None:
            self._write()

    def _load(self, names: list[str] | None) -> dict[str, dict[str, Any]]:
        alarms: dict[str, dict[str, Any]] = {}
        for page in self._cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
            for alarm in page.get("MetricAlarms", []):
                if names is None or alarm["AlarmName"] in names:
                    alarms[alarm["AlarmName"]] = alarm
        return alarms

    def sqs_queues_watched(self) -> set[str]:
        """Names of the SQS queues whose depth some alarm watches (the runtime samples those)."""
        queues = set()
        for alarm in self.definitions.values():
            for metric in _metrics_of(alarm):
                if metric["Namespace"] == "AWS/SQS":
                    queue = dict(metric["Dimensions"]).get("QueueName")
                    if queue:
                        queues.add(queue)
        return queues

    def evaluate(self) -> list[AlarmState]:
        """Evaluate every alarm now; returns the alarms whose state changed."""
        changed = []
        with self._lock:
            for name, alarm in self.definitions.items():
                state = self.states[name]
                if not state.evaluated:
                    continue
                try:
                    new_state, reason, value = self._evaluate(alarm, state.state)
                except Exception as error:  # one broken alarm must not stop the others
                    log.warning("cannot evaluate alarm %s: %s", name, error)
                    state.evaluated = False
                    continue
                state.last_value = value
                if new_state != state.state:
                    old = state.state
                    state.state, state.reason = new_state, reason
                    state.changed_at = _iso(self._clock())
                    state.history.append(
                        {"at": state.changed_at, "from": old, "to": new_state, "reason": reason}
                    )
                    changed.append(state)
                    self._notify(alarm, old, state)
            if changed and self._state_file is not None:
                self._write()
        return changed

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every alarm's state, as JSON-ready dicts."""
        with self._lock:
            return {name: state.to_json() for name, state in self.states.items()}

    # --- evaluation -----------------------------------------------------------------------------
    def _evaluate(self, alarm: dict[str, Any], current: str) -> tuple[str, str, float | None]:
        period = float(alarm.get("Period") or _math_period(alarm) or 60)
        periods = int(alarm.get("EvaluationPeriods") or 1)
        needed = int(alarm.get("DatapointsToAlarm") or periods)
        threshold = float(alarm["Threshold"])
        compare = _COMPARE[alarm["ComparisonOperator"]]
        missing = alarm.get("TreatMissingData") or "missing"
        now = self._clock()
        values = [self._window_value(alarm, now - (i + 1) * period, now - i * period) for i in range(periods)]
        breaching = sum(1 for v in values if v is not None and compare(v, threshold))
        present = [v for v in values if v is not None]
        absent = len(values) - len(present)
        latest = present[0] if present else None
        if missing == "breaching":
            breaching += absent
        if breaching >= needed:
            reason = (
                f"Threshold Crossed: {breaching} out of the last {periods} datapoints "
                f"[{_fmt(values)}] were {_operator_words(alarm)} the threshold ({threshold})."
            )
            return ALARM, reason, latest
        if present or missing == "notBreaching":
            reason = (
                f"Threshold Crossed: no datapoints breaching the threshold ({threshold}): [{_fmt(values)}]."
            )
            return OK, reason, latest
        if missing == "ignore":
            return current, "missing data ignored", latest
        return INSUFFICIENT, "Insufficient Data: no datapoints in the evaluation periods.", latest

    def _window_value(self, alarm: dict[str, Any], start: float, end: float) -> float | None:
        if alarm.get("Metrics"):
            return self._math_value(alarm["Metrics"], start, end)
        stat = alarm.get("Statistic") or alarm.get("ExtendedStatistic")
        assert stat is not None, "only alarms with a statistic are evaluated (_evaluable)"
        return self._store.statistic(
            alarm["Namespace"], alarm["MetricName"], dims(alarm.get("Dimensions")), stat, start, end
        )

    def _math_value(self, queries: list[dict[str, Any]], start: float, end: float) -> float | None:
        values: dict[str, float | None] = {}
        result_expression = None
        for query in queries:
            if "MetricStat" in query:
                stat = query["MetricStat"]
                metric = stat["Metric"]
                values[query["Id"]] = compute_statistic(
                    self._store.values(
                        metric["Namespace"], metric["MetricName"], dims(metric.get("Dimensions")), start, end
                    ),
                    stat["Stat"],
                )
            if query.get("ReturnData", True) and query.get("Expression"):
                result_expression = query["Expression"]
        if result_expression is None:
            returned = [q["Id"] for q in queries if q.get("ReturnData", True) and "MetricStat" in q]
            return values.get(returned[0]) if returned else None
        return metric_math(result_expression, values)

    # --- notifications ----------------------------------------------------------------------------
    def _notify(self, alarm: dict[str, Any], old: str, state: AlarmState) -> None:
        try:
            self._cloudwatch.set_alarm_state(
                AlarmName=state.name, StateValue=state.state, StateReason=state.reason[:1023]
            )
        except Exception as error:  # moto's copy is informative; the local state is authoritative
            log.debug("SetAlarmState failed for %s: %s", state.name, error)
        if not alarm.get("ActionsEnabled", True):
            return
        actions = {
            ALARM: alarm.get("AlarmActions"),
            OK: alarm.get("OKActions"),
            INSUFFICIENT: alarm.get("InsufficientDataActions"),
        }[state.state] or []
        message = {
            "AlarmName": state.name,
            "AlarmDescription": alarm.get("AlarmDescription"),
            "AWSAccountId": aws.ACCOUNT_ID,
            "NewStateValue": state.state,
            "NewStateReason": state.reason,
            "StateChangeTime": state.changed_at,
            "Region": "US East (N. Virginia)",
            "AlarmArn": alarm.get("AlarmArn"),
            "OldStateValue": old,
            "Trigger": {
                "MetricName": alarm.get("MetricName"),
                "Namespace": alarm.get("Namespace"),
                "StatisticType": "Statistic" if alarm.get("Statistic") else "ExtendedStatistic",
                "Statistic": (alarm.get("Statistic") or alarm.get("ExtendedStatistic") or "").upper(),
                "Unit": alarm.get("Unit"),
                "Dimensions": [
                    {"value": d["Value"], "name": d["Name"]} for d in alarm.get("Dimensions") or []
                ],
                "Period": alarm.get("Period"),
                "EvaluationPeriods": alarm.get("EvaluationPeriods"),
                "ComparisonOperator": alarm.get("ComparisonOperator"),
                "Threshold": alarm.get("Threshold"),
                "TreatMissingData": alarm.get("TreatMissingData", "missing"),
            },
        }
        subject = f'{state.state}: "{state.name}" in US East (N. Virginia)'[:100]
        for arn in actions:
            if ":sns:" not in arn:
                continue
            try:
                self._sns.publish(TopicArn=arn, Subject=subject, Message=json.dumps(message))
            except Exception as error:
                log.warning("publishing alarm %s to %s failed: %s", state.name, arn, error)

    def _write(self) -> None:
        assert self._state_file is not None
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        scratch = self._state_file.with_suffix(".tmp")
        scratch.write_text(json.dumps({n: s.to_json() for n, s in self.states.items()}, indent=2))
        scratch.replace(self._state_file)


def _metrics_of(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    if alarm.get("Metrics"):
        found = []
        for query in alarm["Metrics"]:
            if "MetricStat" in query:
                metric = query["MetricStat"]["Metric"]
                found.append(
                    {
                        "Namespace": metric["Namespace"],
                        "Dimensions": [(d["Name"], d["Value"]) for d in metric.get("Dimensions") or []],
                    }
                )
        return found
    return [
        {
            "Namespace": alarm.get("Namespace", ""),
            "Dimensions": [(d["Name"], d["Value"]) for d in alarm.get("Dimensions") or []],
        }
    ]


def _evaluable(alarm: dict[str, Any]) -> bool:
    if alarm.get("ComparisonOperator") not in _COMPARE or alarm.get("Threshold") is None:
        return False  # anomaly detection bands are not emulated
    if alarm.get("Metrics"):
        expressions = [q["Expression"] for q in alarm["Metrics"] if q.get("Expression")]
        try:
            for expression in expressions:
                metric_math(expression, {q["Id"]: 1.0 for q in alarm["Metrics"]})
        except (ValueError, SyntaxError):
            return False
        return True
    return bool(alarm.get("MetricName") and (alarm.get("Statistic") or alarm.get("ExtendedStatistic")))


def _math_period(alarm: dict[str, Any]) -> int | None:
    for query in alarm.get("Metrics") or []:
        if "MetricStat" in query:
            return int(query["MetricStat"]["Period"])
    return None


# ast.parse shares its state between threads before CPython 3.11.8 (gh-106905): two threads parsing at
# once can fail with "SystemError: AST constructor recursion depth mismatch". The monitor and the
# console's request threads evaluate the same few expressions: each is parsed once, under a lock.
_PARSE_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1024)
def _parsed(expression: str) -> ast.Expression:
    with _PARSE_LOCK:
        return ast.parse(expression, mode="eval")


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def metric_math(expression: str, values: dict[str, float | None]) -> float | None:
    """Evaluate +, -, *, /, unary minus, numbers, metric ids and FILL(id, n); None when data is missing."""

    def walk(node: ast.AST) -> float | None:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise ValueError(f"unknown metric id {node.id}")
            return values[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = walk(node.operand)
            return None if inner is None else -inner
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = walk(node.left), walk(node.right)
            if left is None or right is None:
                return None
            if isinstance(node.op, ast.Div) and right == 0:
                return None
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "FILL":
            inner, fill = walk(node.args[0]), walk(node.args[1])
            return fill if inner is None else inner
        raise ValueError(f"unsupported metric math: {ast.dump(node)}")

    return walk(_parsed(expression))


def _fmt(values: list[float | None]) -> str:
    return ", ".join("missing" if v is None else f"{v:g}" for v in values)


def _operator_words(alarm: dict[str, Any]) -> str:
    return {
        "GreaterThanOrEqualToThreshold": "greater than or equal to",
        "GreaterThanThreshold": "greater than",
        "LessThanThreshold": "less than",
        "LessThanOrEqualToThreshold": "less than or equal to",
    }[alarm["ComparisonOperator"]]


def _iso(epoch_s: float) -> str:
    return _dt.datetime.fromtimestamp(epoch_s, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
