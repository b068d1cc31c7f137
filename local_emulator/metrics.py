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
        # For the mirror: (metric, unit, epoch second) -> [SampleCount, Sum, Minimum, Maximum] since the
        # last flush (moto keeps each datum it is given: one per datapoint would grow it per request).
        self._outbox: dict[tuple[MetricKey, str, int], list[float]] = {}

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
                number = float(value)
                stats = self._outbox.get((key, unit, int(at)))
                if stats is None:
                    self._outbox[(key, unit, int(at))] = [1.0, number, number, number]
                else:
                    stats[0] += 1
                    stats[1] += number
                    stats[2] = min(stats[2], number)
                    stats[3] = max(stats[3], number)

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
        """Send the datapoints since the last flush to moto's CloudWatch (PutMetricData, 20 per call), as
        one statistic set per metric, unit and second (percentiles are not available from moto's copy)."""
        if self._mirror is None:
            return
        with self._lock:
            outbox, self._outbox = self._outbox, {}
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for (key, unit, second), (count, total, low, high) in outbox.items():
            by_namespace.setdefault(key.namespace, []).append(
                {
                    "MetricName": key.name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(key.dimensions)],
                    "Unit": unit,
                    "Timestamp": second,
                    "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high},
                }
            )
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), 20):
                try:
                    self._mirror.put_metric_data(Namespace=namespace, MetricData=data[start : start + 20])
                except Exception as error:  # the mirror is a convenience; alarms use the store
                    log.debug("PutMetricData to moto failed: %s", error)


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
