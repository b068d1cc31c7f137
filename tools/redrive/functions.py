"""The stream's consumer functions as redrive needs them: settings, tables, dead-letter queue (Lambda API).

The settings are read from the environment of the deployed function (GetFunctionConfiguration), so
reprocessing uses exactly what the function uses. Which function: an on-failure message names it (the
hot path's `process` or one of the aggregate branches, told apart by their handler); a dead-letter
message names its stream, and the function is the process function reading that stream
(ListEventSourceMappings) whose dead-letter queue is the queue being replayed. Records redrive applies
to user rows also need the item branch's settings (its tables): the `items` function on the same stream.
`function_name` overrides the lookup of the function a message belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from aggregate import handler as aggregate_handler
from aggregate.config import AggregateConfig
from botocore.exceptions import ClientError
from process import handler as process_handler
from process.config import ProcessConfig
from process.dead_letter import SqsDeadLetters
from streamrec_core.env import ConfigError
from streamrec_core.features.dynamodb import DynamoStore

from tools.redrive.messages import DeadLetterMessage, FailedBatch, MessageProblem

# The handler each consumer of the stream runs (`<folder>.handler.<function>`).
PROCESS: Final = f"process.handler.{process_handler.handler.__name__}"
ITEMS: Final = f"aggregate.handler.{aggregate_handler.items.__name__}"
EXPERIMENTS: Final = f"aggregate.handler.{aggregate_handler.experiments.__name__}"


@dataclass(frozen=True)
class Consumer:
    """One function reading the stream: which handler, and its settings."""

    name: str
    handler: str
    config: ProcessConfig | AggregateConfig


class StreamFunctions:
    """Looks up the consumers' settings once each and hands out their feature stores."""

    def __init__(
        self, lambda_client: Any, dynamodb: Any, sqs: Any, *, function_name: str | None = None
    ) -> None:
        self.lambda_client = lambda_client
        self.dynamodb = dynamodb
        self.sqs = sqs
        self.function_name = function_name
        self._consumers: dict[str, Consumer] = {}
        self._readers: dict[tuple[str, str], str] = {}  # (stream ARN, DLQ name) -> process function
        self._items: dict[str, AggregateConfig | None] = {}  # stream ARN -> the items branch's settings
        self._stores: dict[tuple[str, str], DynamoStore] = {}

    def for_batch(self, batch: FailedBatch) -> Consumer:
        name = self.function_name or batch.function_arn
        if not name:
            raise MessageProblem("requestContext.functionArn: missing; pass --function-name")
        return self._consumer(name)

    def for_dead_letter(self, letter: DeadLetterMessage, queue_url: str) -> ProcessConfig:
        if self.function_name:
            consumer = self._consumer(self.function_name)
            if not isinstance(consumer.config, ProcessConfig):
                raise MessageProblem(f"function {self.function_name} does not dead-letter: not {PROCESS}")
            return consumer.config
        if not letter.event_source_arn:
            raise MessageProblem("event_source_arn: empty, so the function is unknown; pass --function-name")
        key = (letter.event_source_arn, _queue_name(queue_url))
        if key not in self._readers:
            self._readers[key] = self._reader_of(*key)
        config = self._consumer(self._readers[key]).config
        assert isinstance(config, ProcessConfig)
        return config

    def items_of(self, stream_arn: str) -> AggregateConfig | None:
        """The item branch's settings on `stream_arn` (None: the stack has no item branch)."""
        if stream_arn not in self._items:
            found = [c for c in self._consumers_of(stream_arn) if c.handler == ITEMS]
            config = found[0].config if found else None
            self._items[stream_arn] = config if isinstance(config, AggregateConfig) else None
        return self._items[stream_arn]

    def store(self, users_table: str, items_table: str = "") -> DynamoStore:
        key = (users_table, items_table)
        if key not in self._stores:
            self._stores[key] = DynamoStore(self.dynamodb, users_table, items_table)
        return self._stores[key]

    def dead_letters(self, config: ProcessConfig) -> SqsDeadLetters:
        return SqsDeadLetters(self.sqs, config.dead_letter_queue_url)

    def _consumers_of(self, stream_arn: str) -> list[Consumer]:
        pages = self.lambda_client.get_paginator("list_event_source_mappings").paginate(
            EventSourceArn=stream_arn
        )
        consumers = []
        for page in pages:
            for mapping in page.get("EventSourceMappings", []):
                try:
                    consumers.append(self._consumer(mapping["FunctionArn"]))
                except MessageProblem:
                    continue  # not one of ours
        return consumers

    def _reader_of(self, stream_arn: str, queue_name: str) -> str:
        """The process function that reads `stream_arn` and dead-letters into the queue `queue_name`."""
        for consumer in self._consumers_of(stream_arn):
            config = consumer.config
            if isinstance(config, ProcessConfig) and _queue_name(config.dead_letter_queue_url) == queue_name:
                return consumer.name
        raise MessageProblem(
            f"no function reads {stream_arn} with dead-letter queue {queue_name}; pass --function-name"
        )

    def _consumer(self, name: str) -> Consumer:
        if name not in self._consumers:
            try:
                configuration = self.lambda_client.get_function_configuration(FunctionName=name)
            except ClientError as error:
                raise MessageProblem(f"function {name}: {error}") from None
            env = (configuration.get("Environment") or {}).get("Variables") or {}
            handler = configuration.get("Handler", "")
            try:
                if handler == PROCESS:
                    config: ProcessConfig | AggregateConfig = ProcessConfig.from_env(env)
                elif handler in (ITEMS, EXPERIMENTS):
                    config = AggregateConfig.from_env(env)
                else:
                    raise MessageProblem(f"function {name} runs {handler!r}, not a consumer redrive knows")
            except ConfigError as error:
                raise MessageProblem(f"function {name}: {error}") from None
            self._consumers[name] = Consumer(name, handler, config)
        return self._consumers[name]


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]
