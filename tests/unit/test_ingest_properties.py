"""Property tests of POST /v1/events through the handler with a fake stream that fails at random.

Every index is answered exactly once; every valid event is stored exactly once or reported retryable;
invalid events are rejected with field and rule and never stored; PutRecords is called once when nothing
fails and otherwise retried with the failed entries only; nothing a client sends produces a 5xx
other than the stream's 503.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest import handler as ingest_handler
from streamrec_core.schema import decode_record

from local_emulator.worker_main import LambdaContext
from tests.unit.event_strategies import MUTATIONS, json_values, valid_events
from tests.unit.ingest_fakes import FakeClock, FakeKinesis, ingest_config, proxy_event

EVENT_ID_POOL = st.sampled_from([f"pool-{i}" for i in range(6)])  # small pool: duplicates happen


def _is_json(event: dict[str, Any]) -> bool:
    try:
        json.dumps(event, allow_nan=False)
    except ValueError:
        return False  # NaN or infinity: not JSON, so no client can send it (see the malformed-JSON tests)
    return True


@st.composite
def _mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    event = draw(valid_events(now=None))
    field, mutate = draw(st.sampled_from(MUTATIONS))
    if field == "item_id":
        event.setdefault("item_id", "i-1")
    mutate(event, draw)
    return event


invalid_events = _mutated_events().filter(_is_json)


@st.composite
def batches(draw: st.DrawFn) -> list[tuple[bool, dict[str, Any]]]:
    """(is_valid, event) pairs; valid events sometimes share event_ids."""
    size = draw(st.integers(1, 25))
    items = []
    for _ in range(size):
        if draw(st.integers(0, 3)) == 0:
            items.append((False, draw(invalid_events)))
        else:
            ids = EVENT_ID_POOL if draw(st.booleans()) else None
            items.append((True, draw(valid_events(now=None, event_ids=ids))))
    return items


# Per PutRecords call: which positions of that call fail (a set drawn against the call's size).
failure_scripts = st.lists(st.lists(st.integers(0, 24), max_size=25).map(frozenset), max_size=6)


def scripted(script: list[frozenset[int]]) -> list[Any]:
    def step_for(failing: frozenset[int]) -> Any:
        return lambda entries: [
            {"ErrorCode": "ProvisionedThroughputExceededException"} if i in failing else None
            for i in range(len(entries))
        ]

    return [step_for(f) for f in script]


@pytest.fixture
def stream() -> Iterator[FakeKinesis]:
    fake = FakeKinesis()
    yield fake
    ingest_handler.reset()


def post(fake: FakeKinesis, body: Any, script: list[frozenset[int]], budget: float = 5.0) -> tuple[int, dict]:
    fake.calls.clear()
    fake.stored.clear()
    fake.script = scripted(script)
    clock = FakeClock()
    ingest_handler.configure(
        ingest_config(put_retry_budget_seconds=budget), fake, sleep=clock.sleep, clock=clock, rand=lambda: 0.5
    )
    response = ingest_handler.handler(proxy_event(body), LambdaContext("ingest"))
    return response["statusCode"], json.loads(response["body"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=batches(), script=failure_scripts, budget=st.sampled_from([0.0, 0.3, 5.0]))
def test_every_index_is_answered_once_and_every_valid_event_stored_once_or_reported(
    stream: FakeKinesis, batch: list[tuple[bool, dict[str, Any]]], script: list[frozenset[int]], budget: float
) -> None:
    # Given a batch of valid and invalid events and a stream failing entries at random
    events = [event for _, event in batch]
    # When it is posted
    status, body = post(stream, {"events": events}, script, budget)

    # Then every index is in exactly one list
    answered = [e["index"] for key in ("accepted", "rejected", "failed") for e in body[key]]
    assert sorted(answered) == list(range(len(batch)))
    # and invalid events are exactly the rejected ones, each with field and rule, and never stored
    rejected = {e["index"] for e in body["rejected"]}
    assert rejected == {i for i, (valid, _) in enumerate(batch) if not valid}
    assert all(err["field"] and err["rule"] for e in body["rejected"] for err in e["errors"])
    # and each stored event (a user's event id) is stored exactly once; accepted ones are stored,
    # failed ones are not
    stored = [(r["user_id"], r["event_id"]) for r in map(decode_record, (r["Data"] for r in stream.stored))]
    assert len(stored) == len(set(stored))

    def identities(entries: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {(events[e["index"]]["user_id"], e["event_id"]) for e in entries}

    assert identities(body["accepted"]) == set(stored)
    assert not identities(body["failed"]) & set(stored)
    # and the client's event_ids come back unchanged
    for entry in body["accepted"] + body["failed"]:
        given_id = events[entry["index"]].get("event_id")
        assert given_id is None or entry["event_id"] == given_id
    # and stored records are keyed by user
    assert all(r["PartitionKey"] == decode_record(r["Data"])["user_id"] for r in stream.stored)
    # and the status follows from the lists
    counts = body["counts"]
    assert counts["accepted"] + counts["rejected"] + counts["failed"] == counts["received"] == len(batch)
    if counts["accepted"]:
        assert status == 200
    elif counts["failed"]:
        assert status == 503 and body["error"]["code"] == "stream_unavailable"
    else:
        assert status == 400 and body["error"]["code"] == "validation_failed"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=batches())
def test_one_putrecords_call_when_nothing_fails(
    stream: FakeKinesis, batch: list[tuple[bool, dict[str, Any]]]
) -> None:
    status, body = post(stream, {"events": [e for _, e in batch]}, [])
    distinct_valid = body["counts"]["accepted"] - body["counts"]["duplicates"]
    assert len(stream.calls) == (1 if distinct_valid else 0)
    assert len(stream.stored) == distinct_valid
    assert body["failed"] == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=batches(), script=failure_scripts)
def test_retries_carry_only_the_entries_that_failed(
    stream: FakeKinesis, batch: list[tuple[bool, dict[str, Any]]], script: list[frozenset[int]]
) -> None:
    post(stream, {"events": [e for _, e in batch]}, script)
    # Then the stream is called when there is a valid event ...
    calls = stream.calls
    assert bool(calls) == any(valid for valid, _ in batch)
    # ... each call after the first carries exactly what the one before it failed (the stream stores
    # everything once the script runs out), and the last call left nothing failed: within the 5 s
    # budget, a writer that stops retrying early, or retries what was stored, fails here
    steps = (script + [frozenset()] * len(calls))[: len(calls)]
    failed_by_call = [
        [r["Data"] for i, r in enumerate(call["Records"]) if i in failing]
        for call, failing in zip(calls, steps, strict=True)
    ]
    carried = [[r["Data"] for r in call["Records"]] for call in calls[1:]]
    if calls:
        assert carried + [[]] == failed_by_call


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
        json_values.map(json.dumps),
        st.lists(json_values, max_size=5).map(lambda v: json.dumps({"events": v})),
    )
)
def test_nothing_a_client_sends_gets_a_5xx_from_the_handler(stream: FakeKinesis, body: str) -> None:
    status, answer = post(stream, body, [])
    assert 200 <= status < 500
    if status >= 400:
        assert answer["error"]["code"] and answer["error"]["message"]
