"""Many producers at once against the running pipeline's API: the gateway sheds load the way API Gateway
does (429 from the usage plan's throttle, 503 with Retry-After when the function is at capacity) and
never resets, drops or leaves hanging a connection it accepted."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import pytest

from tools.replay import format_timestamp

CLIENTS = 50
# What a producer waits at most (streamrec_client's default timeout); the gateway must answer sooner.
CLIENT_TIMEOUT_S = 10.0


def _post(base_url: str, key: str, body: bytes) -> tuple[int, dict[str, str], bytes] | BaseException:
    url = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(url.netloc, timeout=CLIENT_TIMEOUT_S)
    try:
        connection.request(
            "POST",
            f"{url.path}/v1/events",
            body=body,
            headers={"x-api-key": key, "content-type": "application/json"},
        )
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    except BaseException as error:  # resets and timeouts are what this test looks for
        return error
    finally:
        connection.close()


def _batch(unique_id: str, client: int, n: int) -> bytes:
    events = [
        {
            "event_id": f"{unique_id}-{client}-{n}-{i}",
            "event_type": "view",
            "user_id": f"{unique_id}-{client % 5}",
            "item_id": f"{unique_id}-item-{i}",
            "timestamp": format_timestamp(time.time() - 5),
        }
        for i in range(5)
    ]
    return json.dumps({"events": events}).encode()


def _check_shed_load_shape(answers: list[Any]) -> list[int]:
    """Every answer is a 2xx, a 429 or a 503 with Retry-After, in the shared error shape; returns statuses."""
    failures = [a for a in answers if isinstance(a, BaseException)]
    assert not failures, f"{len(failures)} requests got no answer: {failures[:3]}"
    for status, headers, body in answers:
        assert 200 <= status < 300 or status in (429, 503), (status, body)
        if status >= 300:
            assert json.loads(body)["error"]["code"] in (
                "throttled",
                "service_unavailable",
                "stream_unavailable",
            )
        if status == 503:
            assert int(headers["retry-after"]) >= 1
    return [status for status, _, _ in answers]


def test_fifty_producers_at_once_get_answers_not_resets(local_pipeline, unique_id):
    # Given 50 producers posting small batches at the same moment, twice each
    key = local_pipeline.api_keys["producer"]
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        futures = [
            pool.submit(_post, local_pipeline.base_url, key, _batch(unique_id, client, n))
            for n in range(2)
            for client in range(CLIENTS)
        ]
        answers = [f.result() for f in futures]
    # Then each got an answer it can act on: stored, or told to back off
    statuses = _check_shed_load_shape(answers)
    assert 200 in statuses


@pytest.mark.embedded_only(
    "occupies the embedded emulator's ingest workers, which run in the test process only"
)
def test_producers_get_503_with_retry_after_while_every_ingest_worker_is_busy(local_pipeline, unique_id):
    runtime = local_pipeline.pipeline.runtime
    ingest = runtime.functions[local_pipeline.pipeline.function_name("Ingest")]
    # Given every ingest worker busy (held here the way long invocations would hold them)
    held = [ingest._acquire(None) for _ in range(ingest.spec.max_concurrency)]
    key = local_pipeline.api_keys["producer"]
    try:
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            futures = [
                pool.submit(_post, local_pipeline.base_url, key, _batch(unique_id, client, 0))
                for client in range(CLIENTS)
            ]
            # Then every producer is answered while the workers are still busy (none waits for them),
            answers = [f.result() for f in as_completed(futures, timeout=CLIENT_TIMEOUT_S * 3)]
    finally:
        for worker in held:
            ingest._release(worker, usable=True)
    # with 503 and Retry-After (or 429 once the usage plan's burst is spent), so they back off and resend
    statuses = _check_shed_load_shape(answers)
    assert 503 in statuses and not [s for s in statuses if 200 <= s < 300]
