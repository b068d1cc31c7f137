"""The process function's settings, tables and dead-letter queue, as redrive needs them (Lambda API).

The settings (tables, TTLs, lateness, trending slots, dead-letter queue) are read from the environment
of the deployed function (GetFunctionConfiguration), so reprocessing uses exactly what the function
uses. Which function: an on-failure message names it; a dead-letter message names its stream, and the
function is the one reading that stream (ListEventSourceMappings) whose dead-letter queue is the queue
being replayed. `function_name` overrides both.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from process.config import ProcessConfig
from process.dead_letter import SqsDeadLetters
from streamrec_core.env import ConfigError
from streamrec_core.feature_store import FeatureStore

from tools.redrive.messages import DeadLetterMessage, FailedBatch, MessageProblem


class ProcessFunctions:
    """Looks up process functions' settings once each and hands out their feature stores."""

    def __init__(
        self, lambda_client: Any, dynamodb: Any, sqs: Any, *, function_name: str | None = None
    ) -> None:
        self.lambda_client = lambda_client
        self.dynamodb = dynamodb
        self.sqs = sqs
        self.function_name = function_name
        self._configs: dict[str, ProcessConfig] = {}
        self._readers: dict[tuple[str, str], str] = {}  # (stream ARN, DLQ name) -> function
        self._stores: dict[tuple[str, str], FeatureStore] = {}

    def for_batch(self, batch: FailedBatch) -> ProcessConfig:
        name = self.function_name or batch.function_arn
        if not name:
            raise MessageProblem("requestContext.functionArn: missing; pass --function-name")
        return self._config(name)

    def for_dead_letter(self, letter: DeadLetterMessage, queue_url: str) -> ProcessConfig:
        if self.function_name:
            return self._config(self.function_name)
        if not letter.event_source_arn:
            raise MessageProblem("event_source_arn: empty, so the function is unknown; pass --function-name")
        key = (letter.event_source_arn, _queue_name(queue_url))
        if key not in self._readers:
            self._readers[key] = self._reader_of(*key)
        return self._config(self._readers[key])

    def store(self, config: ProcessConfig) -> FeatureStore:
        key = (config.users_table, config.items_table)
        if key not in self._stores:
            self._stores[key] = FeatureStore(self.dynamodb, config.users_table, config.items_table)
        return self._stores[key]

    def dead_letters(self, config: ProcessConfig) -> SqsDeadLetters:
        return SqsDeadLetters(self.sqs, config.dead_letter_queue_url)

    def _reader_of(self, stream_arn: str, queue_name: str) -> str:
        """The function that reads `stream_arn` and dead-letters into the queue named `queue_name`."""
        pages = self.lambda_client.get_paginator("list_event_source_mappings").paginate(
            EventSourceArn=stream_arn
        )
        for page in pages:
            for mapping in page.get("EventSourceMappings", []):
                function = mapping["FunctionArn"]
                try:
                    config = self._config(function)
                except MessageProblem:
                    continue  # another consumer of the stream, not a process function
                if _queue_name(config.dead_letter_queue_url) == queue_name:
                    return function
        raise MessageProblem(
            f"no function reads {stream_arn} with dead-letter queue {queue_name}; pass --function-name"
        )

    def _config(self, name: str) -> ProcessConfig:
        if name not in self._configs:
            try:
                configuration = self.lambda_client.get_function_configuration(FunctionName=name)
                env = (configuration.get("Environment") or {}).get("Variables") or {}
                self._configs[name] = ProcessConfig.from_env(env)
            except ClientError as error:
                raise MessageProblem(f"function {name}: {error}") from None
            except ConfigError as error:
                raise MessageProblem(f"function {name} is not a process function: {error}") from None
        return self._configs[name]


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]
