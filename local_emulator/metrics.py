"""An in-memory CloudWatch metric store fed by the local runtime, mirrored to moto's CloudWatch.

The runtime records what AWS services would publish (Lambda ``Invocations``/``Errors``/``Duration``/
``IteratorAge``, SQS ``ApproximateNumberOfMessagesVisible``, API Gateway ``Count``/``5XXError``/
``Latency``), the Kinesis and DynamoDB metrics the moto server meters (`service_metrics`) and the EMF
documents the functions print. Alarms are evaluated from this store (fast, with
an injectable clock); a copy goes to moto's ``PutMetricData`` so ``get-metric-statistics`` works locally.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Dimensions = frozenset[tuple[str, str]]
# Datapoints older than this are dropped (alarms look back at most a few periods).
RETENTION_S = 6 * 3600.0


def dims(mapping: dict[str, str] | Iterable[dict[str, str]] | None) -> Dimensions:
    """Normalize dimensions given as a dict or as CloudWatch's ``[{Name, Value}]`` list."""
    if not mapping:
        return frozenset()
    if isinstance(mapping, dict):
        return frozenset((str(k), str(v)) for k, v in mapping.items())
    return frozenset((d["Name"], str(d["Value"])) for d in mapping)


@dataclass(frozen=True)
class MetricKey:
    """A metric's identity in CloudWatch: namespace, name and the exact dimension set."""

    namespace: str
    name: str
    dimensions: Dimensions


class MetricStore:
    """Thread-safe datapoints per metric, with CloudWatch statistics over a time window."""

    def __init__(self, clock: Callable[[], float] = time.time, mirror: Any = None) -> None:
        self._clock = clock
        self._points: dict[MetricKey, tuple[list[float], list[float]]] = {}
        self._lock = threading.Lock()
        self._mirror = mirror
        self._outbox: list[dict[str, Any]] = []

    def put(
        self,
        namespace: str,
        name: str,
        dimensions: dict[str, str] | None,
        value: float,
        unit: str = "None",
        timestamp: float | None = None,
    ) -> None:
        """Record one datapoint (now, unless `timestamp` is given in epoch seconds)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        at = self._clock() if timestamp is None else timestamp
        key = MetricKey(namespace, name, dims(dimensions))
        with self._lock:
            times, values = self._points.setdefault(key, ([], []))
            index = bisect.bisect_right(times, at)
            times.insert(index, at)
            values.insert(index, float(value))
            cutoff = bisect.bisect_left(times, at - RETENTION_S)
            if cutoff:
                del times[:cutoff], values[:cutoff]
            if self._mirror is not None:
                self._outbox.append(
                    {
                        "Namespace": namespace,
                        "MetricName": name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(key.dimensions)],
                        "Value": float(value),
                        "Unit": unit,
                        "Timestamp": at,
                    }
                )

    def values(
        self, namespace: str, name: str, dimensions: Dimensions, start: float, end: float
    ) -> list[float]:
        """Datapoint values with start < timestamp <= end (a window ending now includes now)."""
        with self._lock:
            series = self._points.get(MetricKey(namespace, name, dimensions))
            if series is None:
                return []
            times, values = series
            return values[bisect.bisect_right(times, start) : bisect.bisect_right(times, end)]

    def statistic(
        self, namespace: str, name: str, dimensions: Dimensions, stat: str, start: float, end: float
    ) -> float | None:
        """A CloudWatch statistic (Average, Sum, Minimum, Maximum, SampleCount, pNN) or None if no data."""
        return compute_statistic(self.values(namespace, name, dimensions, start, end), stat)

    def known(self) -> list[MetricKey]:
        """Every metric that has datapoints."""
        with self._lock:
            return list(self._points)

    def flush_mirror(self) -> None:
        """Send buffered datapoints to moto's CloudWatch (PutMetricData, 20 per call), as one statistic
        set per metric and second (moto keeps each datum it is given: one per request would grow it by
        a datum per metric per request; percentiles are therefore not available from moto's copy)."""
        if self._mirror is None:
            return
        with self._lock:
            outbox, self._outbox = self._outbox, []
        batch = _statistic_sets(outbox)
        for start in range(0, len(batch), 20):
            chunk = batch[start : start + 20]
            by_namespace: dict[str, list[dict[str, Any]]] = {}
            for datum in chunk:
                entry = {k: v for k, v in datum.items() if k != "Namespace"}
                by_namespace.setdefault(datum["Namespace"], []).append(entry)
            for namespace, data in by_namespace.items():
                try:
                    self._mirror.put_metric_data(Namespace=namespace, MetricData=data)
                except Exception as error:  # the mirror is a convenience; alarms use the store
                    log.debug("PutMetricData to moto failed: %s", error)


def _statistic_sets(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PutMetricData entries with a Value each -> one StatisticValues entry per metric, unit and second."""
    sets: dict[tuple[Any, ...], dict[str, Any]] = {}
    for datum in data:
        second = int(datum["Timestamp"])
        dimensions = tuple((d["Name"], d["Value"]) for d in datum["Dimensions"])
        key = (datum["Namespace"], datum["MetricName"], dimensions, datum["Unit"], second)
        value = datum["Value"]
        entry = sets.get(key)
        if entry is None:
            sets[key] = {
                **{k: v for k, v in datum.items() if k != "Value"},
                "Timestamp": second,
                "StatisticValues": {"SampleCount": 1.0, "Sum": value, "Minimum": value, "Maximum": value},
            }
            continue
        stats = entry["StatisticValues"]
        stats["SampleCount"] += 1
        stats["Sum"] += value
        stats["Minimum"] = min(stats["Minimum"], value)
        stats["Maximum"] = max(stats["Maximum"], value)
    return list(sets.values())


def compute_statistic(values: list[float], stat: str) -> float | None:
    """Compute a CloudWatch statistic over raw values."""
    if not values:
        return None
    if stat == "Average":
        return sum(values) / len(values)
    if stat == "Sum":
        return sum(values)
    if stat == "Minimum":
        return min(values)
    if stat == "Maximum":
        return max(values)
    if stat == "SampleCount":
        return float(len(values))
    if stat.lower().startswith("p"):
        percentile = float(stat[1:])
        ordered = sorted(values)
        rank = max(0, math.ceil(percentile / 100.0 * len(ordered)) - 1)
        return ordered[rank]
    raise ValueError(f"unsupported statistic {stat}")


def ingest_emf(store: MetricStore, document: dict[str, Any]) -> None:
    """Record the metrics of one CloudWatch Embedded Metric Format document."""
    meta = document.get("_aws") or {}
    timestamp = meta.get("Timestamp")
    at = timestamp / 1000.0 if isinstance(timestamp, int | float) else None
    for directive in meta.get("CloudWatchMetrics") or []:
        namespace = directive.get("Namespace", "")
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = {name: str(document.get(name, "")) for name in dimension_set}
            for metric in directive.get("Metrics") or []:
                name = metric.get("Name")
                raw = document.get(name)
                samples = raw if isinstance(raw, list) else [raw]
                for sample in samples:
                    if isinstance(sample, int | float) and not isinstance(sample, bool):
                        store.put(namespace, name, dimensions, float(sample), metric.get("Unit", "None"), at)
