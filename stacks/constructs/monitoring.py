"""Alarms (each with its real dimensions and an SNS action) and one dashboard for the whole pipeline.

Thresholds come from `settings.alarms`. AWS service metrics come from the `metric*` helpers of the
construct that owns the resource (function, queue, stream, table, API stage), which set the namespace and
dimensions by construction; the statistic is always given here, since the helpers' defaults differ (the
stream's are Average, the stage's Count is SampleCount). Custom metrics are the functions' EMF metrics,
named in `streamrec_core.constants`, with the Powertools default dimension `service`, built by `_emf`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from streamrec_core import constants as c

from stacks.settings import Settings

SERVICE_DIMENSION = "service"  # Powertools Metrics adds it to every EMF metric


@dataclass(frozen=True)
class Monitored:
    """What the monitoring construct watches; built by the stack from the other constructs."""

    stream: kinesis.IStream
    process: lambda_.IFunction
    aggregate: lambda_.IFunction  # items branch
    experiments: lambda_.IFunction  # experiments branch
    ingest: lambda_.IFunction
    serve: lambda_.IFunction
    dead_letter_queue: sqs.IQueue
    on_failure_queue: sqs.IQueue
    users: dynamodb.ITable
    items: dynamodb.ITable
    api_stage: apigw.StageBase  # the API's deployment stage (dimensions ApiName and Stage)


class Monitoring(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, watched: Monitored
    ) -> None:
        super().__init__(scope, construct_id)
        a = settings.alarms
        self._period = a.period
        self._settings = settings
        self._stack_name = Stack.of(self).stack_name

        self.key = kms.Key(
            self,
            "TopicKey",
            description="streamrec alarm topic",
            enable_key_rotation=True,
            removal_policy=settings.removal_policy,
        )
        # CloudWatch publishes alarm notifications to the encrypted topic with this key.
        self.key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.topic = sns.Topic(self, "AlarmTopic", master_key=self.key, enforce_ssl=True)
        if a.email:
            self.topic.add_subscription(subs.EmailSubscription(a.email))
        self._action = cw_actions.SnsAction(self.topic)
        self.alarms: dict[str, cw.Alarm] = {}

        w = watched
        p = a.period

        # --- processing: freshness, errors, throttles ---
        self.iterator_age = w.process.metric("IteratorAge", statistic="Maximum", period=p)
        self._alarm(
            c.ALARM_ITERATOR_AGE,
            self.iterator_age,
            a.iterator_age.to_milliseconds(),  # IteratorAge is reported in milliseconds
            "Oldest record the process function has read is older than the freshness goal",
        )
        self._alarm(
            c.ALARM_PROCESS_ERRORS,
            w.process.metric_errors(statistic="Sum", period=p),
            a.process_errors,
            "Process function invocations failed (batches are retried, then bisected)",
        )
        self._alarm(
            c.ALARM_PROCESS_THROTTLES,
            w.process.metric_throttles(statistic="Sum", period=p),
            a.process_throttles,
            "Process function was throttled (concurrency limit)",
        )
        # --- aggregate branches: one mapping each, so lag and errors per branch ---
        for fn, service, age_name, age, errors_name, errors, unresolved_name, label in (
            (
                w.aggregate,
                c.AGGREGATE_SERVICE,
                c.ALARM_AGGREGATE_ITERATOR_AGE,
                a.aggregate_iterator_age,
                c.ALARM_AGGREGATE_ERRORS,
                a.aggregate_errors,
                c.ALARM_AGGREGATE_UNRESOLVED,
                "items",
            ),
            (
                w.experiments,
                c.EXPERIMENTS_SERVICE,
                c.ALARM_EXPERIMENTS_ITERATOR_AGE,
                a.experiments_iterator_age,
                c.ALARM_EXPERIMENTS_ERRORS,
                a.experiments_errors,
                c.ALARM_EXPERIMENTS_UNRESOLVED,
                "experiments",
            ),
        ):
            self._alarm(
                age_name,
                fn.metric("IteratorAge", statistic="Maximum", period=p),
                age.to_milliseconds(),
                f"The {label} branch lags: its oldest record read is older than the threshold, which stays "
                "below the outbox retention so the lag can be caught up before records become unresolvable",
            )
            self._alarm(
                errors_name,
                fn.metric_errors(statistic="Sum", period=p),
                errors,
                f"The {label} branch's invocations failed (batches are retried, bisected, then sent to the "
                "on-failure queue)",
            )
            self._alarm(
                unresolved_name,
                self._emf(c.METRIC_AGGREGATE_UNRESOLVED, service),
                a.aggregate_unresolved,
                f"The {label} branch met records whose outbox entry had expired: it lagged past the outbox "
                "retention, so their aggregates are missing (data quality)",
            )
        # --- queues ---
        for name, queue, threshold, what in (
            (c.ALARM_DLQ_DEPTH, w.dead_letter_queue, a.dlq_depth, "Poison records are waiting in the DLQ"),
            (
                c.ALARM_ON_FAILURE_DEPTH,
                w.on_failure_queue,
                a.on_failure_depth,
                "Batches exhausted retries or record age; redrive them",
            ),
        ):
            self._alarm(
                name,
                queue.metric_approximate_number_of_messages_visible(statistic="Maximum", period=p),
                threshold,
                what,
            )
        # --- ingest and stream ---
        self._alarm(
            c.ALARM_INGEST_REJECTION_RATE,
            self._rate(
                c.METRIC_EVENTS_REJECTED, c.METRIC_EVENTS_ACCEPTED, c.INGEST_SERVICE, label="rejection rate"
            ),
            a.ingest_rejection_rate,
            "Share of events rejected by validation at the door",
        )
        self._alarm(
            c.ALARM_KINESIS_WRITE_THROTTLES,
            w.stream.metric_write_provisioned_throughput_exceeded(statistic="Sum", period=p),
            a.kinesis_write_throttles,
            "Writes to the stream were throttled; raise shards or switch to on-demand",
        )
        self._alarm(
            c.ALARM_PUT_RECORDS_FAILURES,
            w.stream.metric_put_records_failed_records(statistic="Sum", period=p),
            a.put_records_failures,
            "PutRecords entries failed (ingest retries them within its budget)",
        )
        # --- tables: ReadThrottleEvents/WriteThrottleEvents carry TableName alone (ThrottledRequests
        # also needs Operation, so an alarm on TableName alone would never get data) ---
        for table, read_name, write_name in (
            (w.users, c.ALARM_USERS_READ_THROTTLES, c.ALARM_USERS_WRITE_THROTTLES),
            (w.items, c.ALARM_ITEMS_READ_THROTTLES, c.ALARM_ITEMS_WRITE_THROTTLES),
        ):
            self._alarm(
                read_name,
                table.metric("ReadThrottleEvents", statistic="Sum", period=p),
                a.dynamodb_throttles,
                "DynamoDB throttled reads of a feature table",
            )
            self._alarm(
                write_name,
                table.metric("WriteThrottleEvents", statistic="Sum", period=p),
                a.dynamodb_throttles,
                "DynamoDB throttled writes to a feature table",
            )
        # --- API and serving ---
        # 5XXError is 0 or 1 per request, so its Average is the 5xx rate.
        self._alarm(
            c.ALARM_API_5XX_RATE,
            w.api_stage.metric_server_error(statistic="Average", period=p),
            a.api_5xx_rate,
            "Share of API requests answered with a 5xx",
        )
        self._alarm(
            c.ALARM_API_P99_LATENCY,
            w.api_stage.metric_latency(statistic="p99", period=p),
            a.api_p99_latency.to_milliseconds(),
            "API p99 latency above target",
        )
        self._alarm(
            c.ALARM_SERVE_FALLBACK_RATE,
            self._ratio(
                c.METRIC_FALLBACKS, c.METRIC_RECOMMENDATIONS_SERVED, c.SERVE_SERVICE, "fallback rate"
            ),
            a.serve_fallback_rate,
            "Share of recommendation responses that fell back to trending",
        )

        self.dashboard = self._dashboard(w)

    # --- helpers ---------------------------------------------------------------------------------

    def _emf(
        self, name: str, service: str, statistic: str = "Sum", dimensions: dict[str, str] | None = None
    ) -> cw.Metric:
        """A function's EMF metric: Powertools adds `service` to every one; `dimensions` adds the rest."""
        return cw.Metric(
            namespace=c.METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={SERVICE_DIMENSION: service, **(dimensions or {})},
            statistic=statistic,
            period=self._period,
        )

    def _rate(self, part: str, rest: str, service: str, *, label: str) -> cw.MathExpression:
        """part / (part + rest). FILL keeps a 100 % rejection visible when `rest` has no data at all."""
        p, r = part.lower(), rest.lower()
        return cw.MathExpression(
            expression=f"FILL({p}, 0) / (FILL({p}, 0) + FILL({r}, 0))",
            using_metrics={p: self._emf(part, service), r: self._emf(rest, service)},
            label=label,
            period=self._period,
        )

    def _ratio(self, part: str, total: str, service: str, label: str) -> cw.MathExpression:
        """part / total, where `total` already counts `part` (fallbacks are among the responses served)."""
        p, t = part.lower(), total.lower()
        return cw.MathExpression(
            expression=f"FILL({p}, 0) / {t}",
            using_metrics={p: self._emf(part, service), t: self._emf(total, service)},
            label=label,
            period=self._period,
        )

    def _alarm(self, suffix: str, metric: cw.IMetric, threshold: float, description: str) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            "".join(p.capitalize() for p in suffix.split("-")) + "Alarm",
            alarm_name=f"{self._stack_name}-{suffix}",
            alarm_description=f"{description}. Runbook: docs/runbook.md#{suffix}",
            metric=metric,
            threshold=threshold,
            evaluation_periods=self._settings.alarms.evaluation_periods,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # No traffic is not an incident; every alarm here measures something that happened.
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[suffix] = alarm
        return alarm

    def _variant_metric(
        self, name: str, service: str, experiment_id: str, variant: str, label: str
    ) -> cw.Metric:
        dims = {c.METRIC_DIMENSION_EXPERIMENT: experiment_id, c.METRIC_DIMENSION_VARIANT: variant}
        return self._emf(name, service, dimensions=dims).with_(label=label)

    def _experiment_widgets(self, graph: Any) -> list[cw.IWidget]:
        """Per configured experiment: counts per variant, and CTR / conversion per variant.

        Serve counts impressions and the experiments branch counts attributed clicks and purchases, each
        with the dimensions service, experiment and variant; the variants come from settings, so every
        series is named exactly (no SEARCH).
        """
        widgets: list[cw.IWidget] = []
        for experiment in self._settings.experiments:
            counts: list[cw.IMetric] = []
            rates: list[cw.IMetric] = []
            for i, variant in enumerate(experiment.variants):
                exp, name = experiment.id, variant.name
                impressions = self._variant_metric(
                    c.METRIC_VARIANT_IMPRESSIONS, c.SERVE_SERVICE, exp, name, f"{name} impressions"
                )
                clicks = self._variant_metric(
                    c.METRIC_VARIANT_CLICKS, c.EXPERIMENTS_SERVICE, exp, name, f"{name} clicks"
                )
                purchases = self._variant_metric(
                    c.METRIC_VARIANT_PURCHASES, c.EXPERIMENTS_SERVICE, exp, name, f"{name} purchases"
                )
                counts += [impressions, clicks, purchases]
                for kind, prefix, numerator in (("ctr", "c", clicks), ("conversion", "p", purchases)):
                    rates.append(
                        cw.MathExpression(
                            expression=f"FILL({prefix}{i}, 0) / i{i}",
                            using_metrics={f"{prefix}{i}": numerator, f"i{i}": impressions},
                            label=f"{name} {kind}",
                            period=self._period,
                        )
                    )
            widgets.append(graph(f"{experiment.id}: impressions, clicks, purchases per variant", counts))
            widgets.append(graph(f"{experiment.id}: CTR and conversion per variant", rates))
        if not widgets:
            widgets.append(
                cw.TextWidget(markdown="No experiments configured in settings.", width=24, height=2)
            )
        return widgets

    def _branch_widgets(self, w: Monitored, graph: Any) -> list[cw.IWidget]:
        """Lag, invocations and errors of both branches; what each branch did with its records."""
        period = self._period
        branches = (
            ("items", w.aggregate, c.AGGREGATE_SERVICE),
            ("experiments", w.experiments, c.EXPERIMENTS_SERVICE),
        )

        def each(make: Any) -> list[cw.IMetric]:
            return [make(label, fn, service) for label, fn, service in branches]

        def emf(name: str, label: str, service: str) -> cw.IMetric:
            return self._emf(name, service).with_(label=f"{label} {name}")

        return [
            graph(
                "Branch iterator age (ms): lag behind the stream",
                each(
                    lambda label, fn, _s: fn.metric(
                        "IteratorAge", statistic="Maximum", period=period, label=f"{label} iterator age"
                    )
                ),
            ),
            graph(
                "Branch invocations, errors, throttles",
                each(
                    lambda label, fn, _s: fn.metric_invocations(period=period, label=f"{label} invocations")
                ),
                each(lambda label, fn, _s: fn.metric_errors(period=period, label=f"{label} errors"))
                + each(lambda label, fn, _s: fn.metric_throttles(period=period, label=f"{label} throttles")),
            ),
            graph(
                "Branch duration (ms)",
                each(
                    lambda label, fn, _s: fn.metric_duration(
                        statistic="p99", period=period, label=f"{label} duration p99"
                    )
                ),
            ),
            graph(
                "Items branch: records, effects, not ready, unresolved, given up",
                [
                    emf(name, "items", c.AGGREGATE_SERVICE)
                    for name in (
                        c.METRIC_RECORDS_PROCESSED,
                        c.METRIC_AGGREGATE_EFFECTS,
                        c.METRIC_AGGREGATE_NOT_READY,
                        c.METRIC_AGGREGATE_UNRESOLVED,
                        c.METRIC_AGGREGATE_GIVEN_UP,
                    )
                ],
                [
                    emf(name, "items", c.AGGREGATE_SERVICE)
                    for name in (
                        c.METRIC_TRENDING_MERGES,
                        c.METRIC_FEATURE_WRITES,
                        c.METRIC_FEATURE_WRITE_CONFLICTS,
                        c.METRIC_FEATURE_WRITE_THROTTLES,
                    )
                ],
            ),
            graph(
                "Experiments branch: records, effects, not ready, unresolved, given up",
                [
                    emf(name, "experiments", c.EXPERIMENTS_SERVICE)
                    for name in (
                        c.METRIC_RECORDS_PROCESSED,
                        c.METRIC_AGGREGATE_EFFECTS,
                        c.METRIC_AGGREGATE_NOT_READY,
                        c.METRIC_AGGREGATE_UNRESOLVED,
                        c.METRIC_AGGREGATE_GIVEN_UP,
                    )
                ],
                [
                    emf(name, "experiments", c.EXPERIMENTS_SERVICE)
                    for name in (
                        c.METRIC_FEATURE_WRITES,
                        c.METRIC_FEATURE_WRITE_CONFLICTS,
                        c.METRIC_FEATURE_WRITE_THROTTLES,
                    )
                ],
            ),
        ]

    def _dashboard(self, w: Monitored) -> cw.Dashboard:
        p = self._period
        stage, stream = w.api_stage, w.stream

        def graph(
            title: str, left: list[cw.IMetric], right: list[cw.IMetric] | None = None
        ) -> cw.GraphWidget:
            return cw.GraphWidget(title=title, left=left, right=right or [], width=8, height=6)

        def header(text: str) -> cw.TextWidget:
            return cw.TextWidget(markdown=f"## {text}", width=24, height=1)

        board = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{self._stack_name}-pipeline",
            default_interval=Duration.hours(3),
        )
        # Alarms referenced by name (a formatted ARN), not Fn::GetAtt: moto's CloudFormation skips
        # AWS::CloudWatch::Alarm, and a GetAtt on a skipped resource fails the whole local deploy.
        by_name = [
            cw.Alarm.from_alarm_name(self, f"Status{i}", f"{self._stack_name}-{suffix}")
            for i, suffix in enumerate(self.alarms)
        ]
        board.add_widgets(cw.AlarmStatusWidget(title="Alarms", alarms=by_name, width=24, height=4))
        board.add_widgets(header("Ingest"))
        board.add_widgets(
            graph(
                "API requests and errors",
                [stage.metric_count(statistic="Sum", period=p)],
                [
                    stage.metric_client_error(statistic="Sum", period=p),
                    stage.metric_server_error(statistic="Sum", period=p),
                ],
            ),
            graph(
                "Events accepted / rejected / failed",
                [
                    self._emf(c.METRIC_EVENTS_ACCEPTED, c.INGEST_SERVICE),
                    self._emf(c.METRIC_EVENTS_REJECTED, c.INGEST_SERVICE),
                    self._emf(c.METRIC_EVENTS_FAILED, c.INGEST_SERVICE),
                ],
                [self._emf(c.METRIC_EVENTS_RETRIED, c.INGEST_SERVICE)],
            ),
            graph(
                "API latency (ms)",
                [
                    stage.metric_latency(statistic="p50", period=p),
                    stage.metric_latency(statistic="p99", period=p),
                ],
            ),
        )
        board.add_widgets(header("Stream"))
        board.add_widgets(
            graph(
                "Incoming records",
                [stream.metric_incoming_records(statistic="Sum", period=p)],
                [stream.metric_incoming_bytes(statistic="Sum", period=p)],
            ),
            graph(
                "Write throttles and failed PutRecords entries",
                [
                    stream.metric_write_provisioned_throughput_exceeded(statistic="Sum", period=p),
                    stream.metric_put_records_failed_records(statistic="Sum", period=p),
                ],
            ),
            graph("Iterator age (ms): freshness", [self.iterator_age]),
        )
        board.add_widgets(header("Processing"))
        board.add_widgets(
            graph(
                "Process invocations, errors, throttles",
                [w.process.metric_invocations(statistic="Sum", period=p)],
                [
                    w.process.metric_errors(statistic="Sum", period=p),
                    w.process.metric_throttles(statistic="Sum", period=p),
                ],
            ),
            graph(
                "Records processed / duplicates / late",
                [
                    self._emf(c.METRIC_RECORDS_PROCESSED, c.PROCESS_SERVICE),
                    self._emf(c.METRIC_DUPLICATES_SKIPPED, c.PROCESS_SERVICE),
                    self._emf(c.METRIC_LATE_EVENTS, c.PROCESS_SERVICE),
                ],
                [
                    self._emf(c.METRIC_FEATURE_WRITES, c.PROCESS_SERVICE),
                    self._emf(c.METRIC_BATCH_ITEM_FAILURES, c.PROCESS_SERVICE),
                ],
            ),
            graph(
                "Process duration (ms)",
                [
                    w.process.metric_duration(statistic="p50", period=p),
                    w.process.metric_duration(statistic="p99", period=p),
                ],
            ),
        )
        board.add_widgets(header("Aggregate branches"))
        board.add_widgets(*self._branch_widgets(w, graph))
        board.add_widgets(header("Dead letters"))
        board.add_widgets(
            graph(
                "Queue depth",
                [
                    q.metric_approximate_number_of_messages_visible(statistic="Maximum", period=p)
                    for q in (w.dead_letter_queue, w.on_failure_queue)
                ],
            ),
            graph("DLQ sends", [self._emf(c.METRIC_DLQ_SENDS, c.PROCESS_SERVICE)]),
        )
        board.add_widgets(header("Feature tables"))
        table_widgets = []
        for label, table in (("users", w.users), ("items", w.items)):
            table_widgets.append(
                graph(
                    f"{label} table: consumed capacity and throttles",
                    [
                        table.metric_consumed_read_capacity_units(statistic="Sum", period=p),
                        table.metric_consumed_write_capacity_units(statistic="Sum", period=p),
                    ],
                    [
                        table.metric("ReadThrottleEvents", statistic="Sum", period=p),
                        table.metric("WriteThrottleEvents", statistic="Sum", period=p),
                    ],
                )
            )
        board.add_widgets(*table_widgets)
        board.add_widgets(header("Serving"))
        board.add_widgets(
            graph(
                "Recommendations served / fallbacks",
                [
                    self._emf(c.METRIC_RECOMMENDATIONS_SERVED, c.SERVE_SERVICE),
                    self._emf(c.METRIC_FALLBACKS, c.SERVE_SERVICE),
                ],
            ),
            graph(
                "Recommendation latency (ms)",
                [
                    self._emf(c.METRIC_RECOMMENDATION_LATENCY, c.SERVE_SERVICE, "p50"),
                    self._emf(c.METRIC_RECOMMENDATION_LATENCY, c.SERVE_SERVICE, "p99"),
                ],
            ),
            graph(
                "Serve and ingest errors",
                [fn.metric_errors(statistic="Sum", period=p) for fn in (w.serve, w.ingest)],
                [fn.metric_throttles(statistic="Sum", period=p) for fn in (w.serve, w.ingest)],
            ),
        )
        board.add_widgets(header("Experiments"))
        board.add_widgets(*self._experiment_widgets(graph))
        return board
