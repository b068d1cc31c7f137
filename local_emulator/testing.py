"""Helpers for driving an `EsmPoller` in tests: a controllable clock and a scripted fake function.

    clock = FakeClock(1_700_000_000.0)
    fn = ScriptedFunction()                      # succeeds by default
    fn.respond(lambda event: ({"batchItemFailures": [...]}, None))   # next call only
    poller = EsmPoller(kinesis, config, invoke=fn, send_on_failure=fn.on_failure.append, clock=clock)

`handler_invoker(handler)` turns an in-process Lambda handler into an `invoke` callable with Lambda's
error semantics, for driving real handlers (e.g. the process function) through the poller.

`ScriptedFunction` records every event it receives (`fn.calls`, `fn.sequence_numbers()`), so tests can
assert what Lambda would have delivered.
"""

from __future__ import annotations

import base64
import json
from collections import deque
from collections.abc import Callable
from typing import Any

from local_emulator.worker_main import LambdaContext

Responder = Callable[[dict[str, Any]], tuple[Any, str | None]]


class FakeClock:
    """A clock for `EsmPoller(clock=...)` that only moves when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`."""
        self.now += seconds


class ScriptedFunction:
    """A fake Lambda function: returns scripted (payload, function_error) pairs, then `default`."""

    def __init__(self, default: Responder | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.on_failure: list[dict[str, Any]] = []
        self._script: deque[Responder] = deque()
        self._default: Responder = default or (lambda event: (None, None))

    def respond(self, *responders: Responder) -> ScriptedFunction:
        """Queue responders for the next calls, one per call, in order."""
        self._script.extend(responders)
        return self

    def __call__(self, event: dict[str, Any]) -> tuple[Any, str | None]:
        self.calls.append(event)
        responder = self._script.popleft() if self._script else self._default
        return responder(event)

    def sequence_numbers(self, call: int) -> list[int]:
        """Sequence numbers (as integers) of the records delivered in call number `call`."""
        return [int(r["kinesis"]["sequenceNumber"]) for r in self.calls[call]["Records"]]

    def all_sequence_numbers(self) -> list[list[int]]:
        """Sequence numbers of every call, in call order."""
        return [self.sequence_numbers(i) for i in range(len(self.calls))]

    def payloads(self, call: int) -> list[bytes]:
        """Decoded record data of call number `call`."""
        return [base64.b64decode(r["kinesis"]["data"]) for r in self.calls[call]["Records"]]


def function_error(message: str = "boom") -> Responder:
    """A responder for an unhandled function error (what an exception in the handler produces)."""
    return lambda event: ({"errorType": "RuntimeError", "errorMessage": message}, "Unhandled")


def fail_from(sequence_number: int | str) -> Responder:
    """A responder reporting one batch item failure at `sequence_number`."""
    return lambda event: ({"batchItemFailures": [{"itemIdentifier": str(sequence_number)}]}, None)


FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:process"
ON_FAILURE_ARN = "arn:aws:sqs:us-east-1:123456789012:on-failure"


def create_stream(kinesis: Any, name: str = "events", shards: int = 1) -> str:
    """Create an ACTIVE stream with `shards` shards and return its ARN."""
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    return kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamARN"]


def put(kinesis: Any, stream: str, partition_key: str, data: bytes | str) -> int:
    """Put one record; returns its sequence number as an integer."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    response = kinesis.put_record(StreamName=stream, PartitionKey=partition_key, Data=data)
    return int(response["SequenceNumber"])


def handler_invoker(
    handler: Callable[[dict[str, Any], Any], Any], function_name: str = "process", timeout_s: float = 60.0
) -> Callable[[dict[str, Any]], tuple[Any, str | None]]:
    """Wrap an in-process handler as an `EsmPoller` invoke callable with Lambda's semantics.

    The payload is round-tripped through JSON like Lambda's response; an exception becomes an
    ``Unhandled`` function error with ``{errorType, errorMessage}``, never an exception of the poller.
    """

    def invoke(event: dict[str, Any]) -> tuple[Any, str | None]:
        context = LambdaContext(function_name, timeout_s=timeout_s)
        try:
            result = handler(json.loads(json.dumps(event)), context)
        except Exception as error:  # the handler's exception is the function error
            return {"errorType": type(error).__name__, "errorMessage": str(error)}, "Unhandled"
        try:
            return json.loads(json.dumps(result)), None
        except (TypeError, ValueError) as error:
            return {"errorType": "Runtime.MarshalError", "errorMessage": str(error)}, "Unhandled"

    return invoke
