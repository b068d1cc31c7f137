"""The local runtime: runs what was deployed into moto and provides what moto cannot.

`Runtime.start(...)` reads the deployment back from moto's APIs and starts:
- a `LocalFunction` (worker processes) per deployed Lambda function, code from its deployed asset;
- an `ApiGateway` HTTP server per REST API (Lambda proxy integrations, API keys, usage plans);
- an `EsmPoller` thread per Kinesis event source mapping (settings from ListEventSourceMappings),
  sending exhausted batches to the mapping's on-failure destination (SQS or SNS) in moto;
- a monitor thread recording AWS-service metrics (Lambda, SQS depth, API Gateway) and the functions' EMF
  into a `MetricStore`, and evaluating the deployed alarms with `AlarmEvaluator`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from local_emulator import aws, service_metrics
from local_emulator.alarms import AlarmEvaluator
from local_emulator.console import (
    DEFAULT_MINUTES,
    Console,
    Section,
    parse_dashboard,
    parse_minutes,
    parse_period,
)
from local_emulator.deploy import DeployedStack
from local_emulator.esm import BatchOutcome, EsmConfig, EsmPoller
from local_emulator.gateway import ApiGateway, RestApiModel
from local_emulator.http_server import Answer, json_answer
from local_emulator.metrics import MetricStore, ingest_emf
from local_emulator.workers import FunctionSpec, Invocation, LocalFunction, Throttled, extract_code

log = logging.getLogger(__name__)
# A handler of /_local/<prefix>/...: (verb, rest of the path, query string, body, headers by lower-cased
# name) -> the answer.
LocalRoute = Callable[[str, str, str, bytes, Mapping[str, str]], Answer]
# The runtime's own /_local/ routes: reads, answered to GET (and HEAD) only.
_READ_ONLY_ROUTES = ("alarms", "status", "console", "console.json")


@dataclass
class RuntimeOptions:
    """Knobs of the local runtime (none changes AWS semantics)."""

    workdir: Path
    api_port: int = 0
    # Seconds between polls of a shard with nothing new (AWS polls idle shards about once a second;
    # shorter here so that freshness measurements reflect the pipeline, not the poll interval).
    poll_interval_s: float = 0.1
    # Seconds between alarm evaluations and SQS depth samples.
    monitor_interval_s: float = 1.0
    max_concurrency_per_function: int = 2
    # Seconds an API request waits for a free worker of its function before it is answered like a
    # throttled Lambda invocation (API Gateway's INTEGRATION_FAILURE response; the stack makes it 503
    # with Retry-After). AWS runs many more instances than these workers: the wait absorbs short bursts.
    api_invoke_wait_s: float = 2.0
    warm: bool = True


class _PollerThread:
    """Drives one `EsmPoller` in a background thread and reports quiet rounds for `wait_until_idle`."""

    def __init__(
        self,
        poller: EsmPoller,
        interval_s: float,
        name: str,
        refresh: Callable[[], EsmConfig] | None = None,
        refresh_interval_s: float = 2.0,
    ) -> None:
        self.poller = poller
        self._interval = interval_s
        self._refresh = refresh
        self._refresh_interval = refresh_interval_s
        self._last_refresh = time.monotonic()
        self._stop = threading.Event()
        self._condition = threading.Condition()
        self.rounds = 0
        self.last_quiet_round = -1
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._maybe_refresh()
            try:
                read_before = self.poller.records_read()
                invoked = self.poller.poll_once()
                quiet = invoked == 0 and self.poller.records_read() == read_before
            except Exception as error:  # keep polling: moto may be briefly busy
                log.exception("poller %s failed a round", self._thread.name)
                self.error = error
                self._stop.wait(self._interval)
                continue
            with self._condition:
                self.rounds += 1
                if quiet and self.poller.is_idle():
                    self.last_quiet_round = self.rounds
                self._condition.notify_all()
            if quiet:
                self._stop.wait(self._interval)

    def _maybe_refresh(self) -> None:
        """Pick up UpdateEventSourceMapping changes (enable/disable, batch size, retries...)."""
        if self._refresh is None or time.monotonic() - self._last_refresh < self._refresh_interval:
            return
        self._last_refresh = time.monotonic()
        try:
            self.poller.reconfigure(self._refresh())
        except Exception as error:  # keep the current settings if moto cannot answer right now
            log.debug("refreshing mapping settings failed: %s", error)

    def wait_quiet_round_after(self, round_number: int, deadline: float) -> bool:
        """Wait for an idle, quiet round that started after `round_number`; False on timeout."""
        with self._condition:
            while self.last_quiet_round <= round_number + 1:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
            return True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class Runtime:
    """Everything that runs locally for a set of deployed stacks."""

    def __init__(self, endpoint: str, stacks: list[DeployedStack], options: RuntimeOptions) -> None:
        self.endpoint = endpoint
        self.stacks = stacks
        self.options = options
        self.region = aws.REGION
        self.functions: dict[str, LocalFunction] = {}
        self.gateways: dict[str, ApiGateway] = {}
        self.pollers: list[_PollerThread] = []
        self.metrics = MetricStore(mirror=aws.client("cloudwatch", endpoint))
        self.alarms: AlarmEvaluator | None = None
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._watched_queues: dict[str, str] = {}
        self._executors: list[ThreadPoolExecutor] = []
        self._local_routes: dict[str, LocalRoute] = {}
        self._console_sections: dict[str, Section] = {}
        self._metered_through = 0  # the last batch of the moto server's meter recorded
        self._metering_lock = threading.Lock()
        self.console = Console([], self.metrics, alarms=dict, status=dict, queue_depths=dict)

    # --- start / stop -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start functions, API gateways, pollers and the monitor."""
        self._start_functions()
        self._start_gateways()
        self._start_pollers()
        self._start_monitor()
        self._start_console()

    def stop(self) -> None:
        """Stop everything this runtime started."""
        self._stop.set()
        for poller in self.pollers:
            poller.stop()
        for executor in self._executors:
            executor.shutdown(wait=True)
        for gateway in self.gateways.values():
            gateway.stop()
        if self._monitor is not None:
            self._monitor.join(timeout=10)
        for function in self.functions.values():
            function.close()

    def _start_functions(self) -> None:
        lambda_client = aws.client("lambda", self.endpoint)
        s3 = aws.client("s3", self.endpoint)
        code_root = self.options.workdir / "code"
        code_root.mkdir(parents=True, exist_ok=True)
        for stack in self.stacks:
            for name, code in stack.functions.items():
                config = lambda_client.get_function(FunctionName=name)["Configuration"]
                code_dir = extract_code(
                    code_root, s3=s3, bucket=code.bucket, key=code.key, zip_file=code.zip_file, name=name
                )
                concurrency = self.options.max_concurrency_per_function
                reserved = lambda_client.get_function_concurrency(FunctionName=name).get(
                    "ReservedConcurrentExecutions"
                )
                if reserved:
                    concurrency = min(concurrency, int(reserved))
                spec = FunctionSpec(
                    name=name,
                    arn=config["FunctionArn"],
                    handler=config["Handler"],
                    code_dir=code_dir,
                    environment=dict((config.get("Environment") or {}).get("Variables") or {}),
                    timeout_s=float(config.get("Timeout") or 3),
                    memory_mb=int(config.get("MemorySize") or 128),
                    role=config.get("Role", ""),
                    max_concurrency=max(1, concurrency),
                    log_path=self.options.workdir / "logs" / f"{name}.log",
                )
                self.functions[name] = LocalFunction(spec, self.endpoint, self.region, self._on_invocation)
        if self.options.warm:
            # Cold starts in parallel: each worker imports boto3 and Powertools.
            threads = [threading.Thread(target=f.warm) for f in self.functions.values()]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

    def _start_gateways(self) -> None:
        apigateway = aws.client("apigateway", self.endpoint)
        api_ids = {
            physical
            for stack in self.stacks
            for logical, physical in stack.physical_ids.items()
            if stack.template["Resources"].get(logical, {}).get("Type") == "AWS::ApiGateway::RestApi"
        }
        for index, api_id in enumerate(sorted(api_ids)):
            model = RestApiModel.load(apigateway, api_id)
            port = self.options.api_port + index if self.options.api_port else 0
            gateway = ApiGateway(
                model,
                self.invoke,
                port=port,
                admin=self._admin,
                on_request=self._request_metrics(model),
                invoke_wait_s=self.options.api_invoke_wait_s,
            )
            gateway.start()
            self.gateways[api_id] = gateway

    def _start_pollers(self) -> None:
        lambda_client = aws.client("lambda", self.endpoint)
        names = {f.spec.arn: name for name, f in self.functions.items()}
        mappings = lambda_client.get_paginator("list_event_source_mappings")
        for page in mappings.paginate():
            for mapping in page["EventSourceMappings"]:
                if ":kinesis:" not in mapping.get("EventSourceArn", ""):
                    continue
                function_name = names.get(mapping["FunctionArn"])
                if function_name is None:
                    continue
                config = EsmConfig.from_api(mapping)
                function = self.functions[function_name]
                poller = EsmPoller(
                    aws.client("kinesis", self.endpoint),
                    config,
                    invoke=function.invoke,
                    send_on_failure=self._on_failure_sender(config.on_failure_destination),
                    invoke_identity_arn=function.spec.role,
                    on_batch=self._batch_metrics(function_name),
                    shard_refresh_interval_s=1.0,
                    executor=self._executor(function.spec.max_concurrency),
                )
                thread = _PollerThread(
                    poller,
                    self.options.poll_interval_s,
                    f"esm-{config.uuid[:8]}",
                    refresh=self._mapping_reader(config.uuid),
                )
                thread.start()
                self.pollers.append(thread)

    def _mapping_reader(self, uuid: str) -> Callable[[], EsmConfig]:
        lambda_client = aws.client("lambda", self.endpoint)
        return lambda: EsmConfig.from_api(lambda_client.get_event_source_mapping(UUID=uuid))

    def _executor(self, workers: int) -> ThreadPoolExecutor:
        executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="esm-invoke")
        self._executors.append(executor)
        return executor

    def _start_monitor(self) -> None:
        names = [name for stack in self.stacks for name in stack.alarms]
        self.alarms = AlarmEvaluator(
            aws.client("cloudwatch", self.endpoint),
            aws.client("sns", self.endpoint),
            self.metrics,
            state_file=self.options.workdir / "alarms.json",
            alarm_names=names,
        )
        sqs = aws.client("sqs", self.endpoint)
        for queue in self.alarms.sqs_queues_watched():
            try:
                self._watched_queues[queue] = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            except Exception as error:
                log.warning("queue %s watched by an alarm not found: %s", queue, error)
        self._monitor = threading.Thread(target=self._monitor_loop, name="monitor", daemon=True)
        self._monitor.start()

    # --- invocations and destinations -------------------------------------------------------------
    def invoke(
        self, function_name: str, event: Any, *, wait_s: float | None = None
    ) -> tuple[Any, str | None]:
        """Invoke a deployed function synchronously: (payload, function_error).

        Raises `workers.Throttled` when `wait_s` is given and no worker of the function frees in time.
        """
        function = self.functions.get(function_name)
        if function is None:
            return {"errorType": "ResourceNotFoundException", "errorMessage": function_name}, "Unhandled"
        try:
            return function.invoke(event, wait_s=wait_s)
        except Throttled:
            self.metrics.put("AWS/Lambda", "Throttles", {"FunctionName": function_name}, 1, "Count")
            raise

    def _on_failure_sender(self, destination: str | None) -> Callable[[dict[str, Any]], None] | None:
        if not destination:
            return None
        if ":sqs:" in destination:
            name, owner = destination.split(":")[5], destination.split(":")[4]
            sqs = aws.client("sqs", self.endpoint)
            url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=owner)["QueueUrl"]
            return lambda message: sqs.send_message(QueueUrl=url, MessageBody=json.dumps(message))
        if ":sns:" in destination:
            sns = aws.client("sns", self.endpoint)
            return lambda message: sns.publish(TopicArn=destination, Message=json.dumps(message))
        log.warning("on-failure destination %s is not emulated", destination)
        return None

    # --- metrics ------------------------------------------------------------------------------------
    def _on_invocation(self, invocation: Invocation) -> None:
        dims = {"FunctionName": invocation.function_name}
        self.metrics.put("AWS/Lambda", "Invocations", dims, 1, "Count")
        self.metrics.put("AWS/Lambda", "Errors", dims, 1 if invocation.function_error else 0, "Count")
        self.metrics.put("AWS/Lambda", "Throttles", dims, 0, "Count")
        self.metrics.put("AWS/Lambda", "Duration", dims, invocation.duration_ms, "Milliseconds")
        for document in invocation.emf:
            ingest_emf(self.metrics, document)

    def _batch_metrics(self, function_name: str) -> Callable[[BatchOutcome], None]:
        def record(outcome: BatchOutcome) -> None:
            self.metrics.put(
                "AWS/Lambda",
                "IteratorAge",
                {"FunctionName": function_name},
                outcome.iterator_age_ms,
                "Milliseconds",
            )

        return record

    def _request_metrics(self, model: RestApiModel) -> Callable[[str, int, float], None]:
        def record(path: str, status: int, latency_ms: float) -> None:
            stage = path.lstrip("/").split("/", 1)[0]
            for dimensions in ({"ApiName": model.name}, {"ApiName": model.name, "Stage": stage}):
                self.metrics.put("AWS/ApiGateway", "Count", dimensions, 1, "Count")
                self.metrics.put("AWS/ApiGateway", "4XXError", dimensions, int(400 <= status < 500), "Count")
                self.metrics.put("AWS/ApiGateway", "5XXError", dimensions, int(status >= 500), "Count")
                self.metrics.put("AWS/ApiGateway", "Latency", dimensions, latency_ms, "Milliseconds")

        return record

    def _monitor_loop(self) -> None:
        sqs = aws.client("sqs", self.endpoint)
        while not self._stop.wait(self.options.monitor_interval_s):
            try:
                self.sample(sqs)
            except Exception:  # a failed tick is logged; the next one runs (alarms must not stop)
                log.exception("monitor tick failed")

    def sample(self, sqs: Any = None) -> None:
        """One monitor tick: sample queue depths and backlog age, take the Kinesis and DynamoDB metrics
        the moto server metered, evaluate alarms, mirror metrics."""
        self._collect_service_metrics()
        for name, depth in self.queue_depths(sqs).items():
            if depth is not None:
                self.metrics.put(
                    "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": name}, depth, "Count"
                )
        for thread in self.pollers:
            age = thread.poller.oldest_pending_age_ms()
            if age is not None:
                name = thread.poller.config.function_arn.split(":")[6]
                self.metrics.put("AWS/Lambda", "IteratorAge", {"FunctionName": name}, age, "Milliseconds")
        if self.alarms is not None:
            for state in self.alarms.evaluate():
                level = logging.WARNING if state.state == "ALARM" else logging.INFO
                log.log(level, "alarm %s is now %s: %s", state.name, state.state, state.reason)
        self.metrics.flush_mirror()

    def _collect_service_metrics(self) -> None:
        """Record the moto server's metered datapoints; the next read acknowledges them (one lost
        answer is read again, nothing is recorded twice: `service_metrics.Meter`). One read at a time:
        two at once would both get the batches neither had acknowledged."""
        with self._metering_lock:
            self._read_service_metrics()

    def _read_service_metrics(self) -> None:
        url = f"{self.endpoint}{service_metrics.ROUTE}?acknowledged={self._metered_through}"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                document = json.loads(answer.read())
            through, datapoints = int(document["through"]), list(document["datapoints"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("Kinesis and DynamoDB metrics unavailable this tick: %s", error)
            return
        self._metered_through = through
        for point in datapoints:
            self.metrics.put(
                point["namespace"],
                point["name"],
                point["dimensions"],
                point["value"],
                point["unit"],
                timestamp=point["timestamp"],
            )

    # --- local routes (/_local/...) ----------------------------------------------------------------
    def add_local_route(self, prefix: str, handler: LocalRoute) -> None:
        """Serve ``/_local/<prefix>...`` with `handler(verb, rest of the path, query, body, headers)`."""
        self._local_routes[prefix] = handler

    def add_console_section(self, name: str, section: Section) -> None:
        """Draw `section` on the console, apart from the dashboard (local only); `name` replaces."""
        self._console_sections[name] = section

    def _admin(self, verb: str, path: str, query: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        name = path.rstrip("/")
        if name in _READ_ONLY_ROUTES and verb not in ("GET", "HEAD"):
            return json_answer({"message": f"{verb} is not allowed on /_local/{name}: use GET"}, 405)
        if name == "alarms":
            return json_answer(self.alarms.snapshot() if self.alarms else {})
        if name == "status":
            return json_answer(self.status())
        if name == "console":
            return 200, [("Content-Type", "text/html; charset=utf-8")], self.console.page()
        if name == "console.json":
            params = parse_qs(query)
            try:
                window = parse_minutes(params.get("minutes", [str(DEFAULT_MINUTES)])[0])
                period = parse_period(params.get("period", [""])[0])
            except ValueError as error:
                return json_answer({"message": str(error)}, 400)
            return json_answer(self.console.document(window, period=period))
        for prefix, handler in self._local_routes.items():
            if name == prefix or name.startswith(prefix + "/"):
                return handler(verb, name[len(prefix) :].lstrip("/"), query, body, headers)
        paths = [*_READ_ONLY_ROUTES, *self._local_routes]
        return json_answer({"paths": [f"/_local/{p}" for p in paths]}, 404)

    def status(self) -> dict[str, Any]:
        """The pollers' progress per event source mapping and the functions' running invocations."""
        return {
            "pollers": [
                {
                    "mapping": t.poller.config.uuid,
                    "function": t.poller.config.function_arn.split(":")[6],
                    "stream": t.poller.config.stream_name,
                    "enabled": t.poller.config.enabled,
                    "checkpoints": t.poller.checkpoints(),
                    "shards": len(t.poller.checkpoints()),
                    "buffered": t.poller.buffered_records(),
                    "invocations": t.poller.invocations,
                    "iterator_age_ms": t.poller.oldest_pending_age_ms(),
                    "last_error": None if t.error is None else str(t.error),
                }
                for t in self.pollers
            ],
            "functions": {n: f.in_flight for n, f in self.functions.items()},
        }

    def queue_depths(self, sqs: Any = None) -> dict[str, int | None]:
        """Messages waiting in each queue an alarm watches (the dead-letter and on-failure queues); None
        for one whose depth could not be read."""
        sqs = sqs or aws.client("sqs", self.endpoint)
        depths: dict[str, int | None] = {}
        for name, url in sorted(self._watched_queues.items()):
            try:
                attributes = sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]
                depths[name] = int(attributes.get("ApproximateNumberOfMessages", 0))
            except Exception as error:
                log.debug("depth of %s unavailable: %s", name, error)
                depths[name] = None
        return depths

    def _start_console(self) -> None:
        cloudwatch = aws.client("cloudwatch", self.endpoint)
        widgets = []
        for stack in self.stacks:
            for logical, resource in stack.template["Resources"].items():
                if resource.get("Type") != "AWS::CloudWatch::Dashboard":
                    continue
                name = stack.physical_ids.get(logical)
                try:
                    body = cloudwatch.get_dashboard(DashboardName=name or logical)["DashboardBody"]
                except Exception as error:  # the console then shows the rest (alarms, mappings, queues)
                    log.warning("dashboard %s not readable from moto: %s", name or logical, error)
                    continue
                widgets.extend(parse_dashboard(body))
        self.console = Console(
            widgets,
            self.metrics,
            alarms=lambda: self.alarms.snapshot() if self.alarms else {},
            status=self.status,
            queue_depths=self.queue_depths,
            sections=lambda: list(self._console_sections.values()),
        )

    # --- idleness -------------------------------------------------------------------------------------
    def wait_until_idle(self, timeout_s: float = 60.0) -> None:
        """Block until every shard is drained, no batch waits for a retry and no function is running.

        Raises TimeoutError if that does not happen within `timeout_s`.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            marks = [t.rounds for t in self.pollers]
            for thread, mark in zip(self.pollers, marks, strict=True):
                if not thread.wait_quiet_round_after(mark, deadline):
                    raise TimeoutError(f"stream processing still busy after {timeout_s} s")
            busy = any(f.in_flight for f in self.functions.values())
            still_idle = all(t.poller.is_idle() for t in self.pollers)
            if not busy and still_idle:
                # A function that finished meanwhile may have written records: one more round proves it.
                settled = [t.rounds for t in self.pollers]
                if all(
                    t.wait_quiet_round_after(m, deadline) for t, m in zip(self.pollers, settled, strict=True)
                ) and not any(f.in_flight for f in self.functions.values()):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"local pipeline still busy after {timeout_s} s")
            time.sleep(0.02)
