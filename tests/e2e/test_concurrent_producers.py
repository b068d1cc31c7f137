"""Concurrent producers on the local pipeline: every event the API accepted reaches the stream
and is applied to the users table exactly once, and nothing else is, also when function workers are
killed mid-way (an ingest worker while producers post, a process worker while the stream drains)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from local_emulator.metrics import dims
from local_emulator.workers import LocalFunction
from streamrec_client.client import StreamrecClient, urllib_transport
from tests.e2e.conftest import eventually
from tests.e2e.exactly_once import Sent, exactly_once_problems
from tools.replay import format_timestamp

PRODUCERS = 8
REQUESTS_PER_PRODUCER = 2
EVENTS_PER_REQUEST = 250
# Each producer has its own users, 100 events each: more than the 64 event ids a user row keeps, so the
# check (tests/e2e/exactly_once.py) proves their counts and their latest 64 events id by id.
USERS_PER_PRODUCER = 5
ITEMS = 40
EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")
PRODUCE_TIMEOUT_S = 180.0
DRAIN_TIMEOUT_S = 300.0


def _batches(run_id: str, producer: int) -> list[list[dict]]:
    """One producer's requests: its own users, client-chosen event ids, event times in the last minute."""
    start = time.time() - 60
    events = [
        {
            "event_id": f"{run_id}-p{producer}-{n}",
            "event_type": EVENT_TYPES[n % len(EVENT_TYPES)],
            "user_id": f"{run_id}-p{producer}-u{n % USERS_PER_PRODUCER}",
            "item_id": f"{run_id}-i{n % ITEMS}",
            "category": "load",
            "timestamp": format_timestamp(start + n / 100),
        }
        for n in range(REQUESTS_PER_PRODUCER * EVENTS_PER_REQUEST)
    ]
    return [events[i : i + EVENTS_PER_REQUEST] for i in range(0, len(events), EVENTS_PER_REQUEST)]


def _producer(target, batches: list[list[dict]], sent: Sent, errors: list[str]) -> threading.Thread:
    """A thread sending `batches` with the producer client (resends retryable failures, same event ids)."""

    def counting_transport(url, headers, body, timeout):
        sent.sent(event["event_id"] for event in json.loads(body)["events"])
        return urllib_transport(url, headers, body, timeout)

    client = StreamrecClient(
        target.base_url, target.api_keys["producer"], transport=counting_transport, max_attempts=8, timeout=60
    )

    def run() -> None:
        for batch in batches:
            by_id = {event["event_id"]: event for event in batch}
            try:
                result = client.send(batch)
            except Exception as error:  # a usage error (StreamrecError): report it, do not die silently
                errors.append(repr(error))
                continue
            for event_id in result.accepted:
                sent.accept(by_id[event_id])
            errors.extend(f"rejected {r.event['event_id']}: {r.errors}" for r in result.rejected)
            errors.extend(f"not stored {f.event['event_id']}: {f.reason}" for f in result.failed)

    return threading.Thread(target=run, name="producer", daemon=True)


def _start_producers(target, run_id: str, sent: Sent, errors: list[str]) -> list[threading.Thread]:
    threads = [_producer(target, _batches(run_id, n), sent, errors) for n in range(PRODUCERS)]
    for thread in threads:
        thread.start()
    return threads


def _join(threads: list[threading.Thread], deadline: float) -> None:
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), (
        f"producers still sending after {PRODUCE_TIMEOUT_S} s"
    )


def _problems_once_drained(target, sent: Sent) -> list[str]:
    target.wait_until_idle(timeout_s=DRAIN_TIMEOUT_S)
    if target.pipeline is None:  # a remote target cannot report idleness: poll until the check passes
        try:
            eventually(
                lambda: not exactly_once_problems(target, sent), timeout_s=DRAIN_TIMEOUT_S, interval_s=2
            )
        except AssertionError:
            pass  # reported below, with every problem
    return exactly_once_problems(target, sent)


def _kill_a_busy_worker(function: LocalFunction) -> float:
    """SIGKILL a worker process of `function` while it runs an invocation; returns when (epoch seconds)."""
    deadline = time.monotonic() + PRODUCE_TIMEOUT_S
    while time.monotonic() < deadline:
        busy = function.busy_worker_pids()
        if busy:
            os.kill(busy[0], signal.SIGKILL)
            return time.time()
        time.sleep(0.005)
    raise AssertionError(f"no worker of {function.name} was busy to be killed")


def _errors_since(pipeline, function: LocalFunction, since: float) -> float:
    """Failed invocations of `function` since `since`, as the runtime's Lambda `Errors` metric counts them."""
    dimensions = dims({"FunctionName": function.name})
    return (
        pipeline.runtime.metrics.statistic("AWS/Lambda", "Errors", dimensions, "Sum", since - 1, time.time())
        or 0
    )


def test_concurrent_producers_every_accepted_event_is_applied_exactly_once(local_pipeline, unique_id):
    """Given 8 producers posting at once (2 x 250 events each, their own users), when the pipeline has
    drained, then each accepted event is in the stream once and applied once, and nothing else is."""
    local_pipeline.wait_until_idle(timeout_s=DRAIN_TIMEOUT_S)  # earlier tests' work is not ours to wait for
    sent, errors = Sent(), list[str]()

    _join(_start_producers(local_pipeline, unique_id, sent, errors), time.monotonic() + PRODUCE_TIMEOUT_S)

    assert errors == []
    assert len(sent.accepted) == PRODUCERS * REQUESTS_PER_PRODUCER * EVENTS_PER_REQUEST
    assert _problems_once_drained(local_pipeline, sent) == []


@pytest.mark.embedded_only(
    "kills the embedded emulator's function workers, which run in the test process only"
)
def test_concurrent_producers_with_workers_killed_mid_way_still_apply_each_event_exactly_once(
    local_pipeline, unique_id
):
    """The same load, with an ingest worker SIGKILLed while producers post (its request fails and the
    producer resends it with the same event ids) and a process worker SIGKILLed while the stream drains
    (the batch is retried): the answer is the same, every accepted event applied exactly once."""
    pipeline = local_pipeline.pipeline
    ingest = pipeline.runtime.functions[pipeline.function_name("Ingest")]
    process = pipeline.runtime.functions[pipeline.function_name("ProcessingProcess")]
    local_pipeline.wait_until_idle(timeout_s=DRAIN_TIMEOUT_S)
    sent, errors = Sent(), list[str]()

    # When producers post, an ingest worker is killed while it handles one of their requests, and a
    # process worker while it applies their events (earlier work was drained: whatever runs now is theirs)
    producers = _start_producers(local_pipeline, unique_id, sent, errors)
    _kill_a_busy_worker(ingest)
    killed_at = _kill_a_busy_worker(process)
    _join(producers, time.monotonic() + PRODUCE_TIMEOUT_S)

    # Then every event was accepted in the end (resends included) and each is applied exactly once
    assert errors == []
    assert len(sent.accepted) == PRODUCERS * REQUESTS_PER_PRODUCER * EVENTS_PER_REQUEST
    assert _problems_once_drained(local_pipeline, sent) == []
    # And the kills did cost something: a request was resent, and a process invocation failed (retried)
    assert max(sent.sends.values()) > 1
    assert _errors_since(pipeline, process, killed_at) >= 1
