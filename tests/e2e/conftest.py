"""Fixtures for the end-to-end tests: the whole pipeline, started once per test session, driven over HTTP.

    def test_something(local_pipeline, unique_id):
        response = local_pipeline.post_events([{"event_type": "view", "user_id": unique_id, "item_id": "i1"}])
        assert response.status == 200
        local_pipeline.wait_until_idle()
        recs = local_pipeline.recommendations(unique_id, k=5).json()

Targets, chosen with the environment variable ``STREAMREC_TARGET``:

- ``embedded`` (default): `LocalPipeline.start(profile=$STREAMREC_PROFILE or "dev")`: moto's server, the
  synthesized template deployed into it, and the local runtime, once per pytest process (xdist worker).
  Logs go to ``.local/e2e/<worker>/logs``.
- ``localstack`` (or any other value): the pipeline is already running elsewhere; its coordinates are
  read from the JSON file ``$STREAMREC_ENDPOINT_FILE`` (default ``localstack/endpoint.json``), which has
  the same shape as the embedded emulator's ``.local/endpoint.json``::

      {"base_url": "http://localhost:4566/_aws/execute-api/<id>/local",
       "api_keys": {"producer": "...", "reader": "..."},
       "aws_endpoint": "http://localhost:4566", "region": "us-east-1",
       "outputs": {"StreamName": "...", "UsersTableName": "...", ...}}

  (``moto_endpoint`` is accepted for ``aws_endpoint``, so ``STREAMREC_TARGET=endpoint
  STREAMREC_ENDPOINT_FILE=.local/endpoint.json`` runs the suite against a pipeline left up by ``make up``.)
  Such targets cannot report idleness: `wait_until_idle` waits ``$STREAMREC_SETTLE_SECONDS`` (default 5)
  and tests that need a condition should poll with `eventually`.

Tests that cannot run on a target say so with a mark and are skipped there, with the reason, before any
fixture reaches the target: ``@pytest.mark.embedded_only(reason)`` (they drive the embedded emulator in
this process: its alarm evaluator, its function workers) and ``@pytest.mark.not_on_localstack(reason)``
(they check behaviour LocalStack does not implement; see localstack/README.md).

The e2e tests of a process share one pipeline, so each test uses its own ids (`unique_id`) rather than
expecting empty tables.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

import pytest
from streamrec_core import constants, routes

from local_emulator import aws
from local_emulator.pipeline import REPO_ROOT, LocalPipeline

T = TypeVar("T")
EMBEDDED = "embedded"
LOCALSTACK = "localstack"
TARGET_ENV = "STREAMREC_TARGET"
PROFILE_ENV = "STREAMREC_PROFILE"
ENDPOINT_FILE_ENV = "STREAMREC_ENDPOINT_FILE"
SETTLE_ENV = "STREAMREC_SETTLE_SECONDS"
DEFAULT_ENDPOINT_FILE = REPO_ROOT / "localstack" / "endpoint.json"


@dataclass
class Response:
    """An HTTP response from the pipeline's API."""

    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class PipelineTarget:
    """The pipeline under test, as HTTP endpoints plus AWS clients (moto or LocalStack)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        api_keys: dict[str, str],
        outputs: dict[str, str],
        aws_endpoint: str,
        region: str,
        pipeline: LocalPipeline | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.api_keys = api_keys
        self.outputs = outputs
        self.aws_endpoint = aws_endpoint
        self.region = region
        self.pipeline = pipeline

    # --- HTTP -------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 30.0,
    ) -> Response:
        """Send a request to ``base_url + path``; `key` is an API key role ("producer"/"reader") or a value.

        `body` may be bytes, str, or anything JSON-serializable (sent as application/json).
        """
        data: bytes | None
        all_headers = dict(headers or {})
        if body is None or isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode("utf-8")
        else:
            data = json.dumps(body).encode("utf-8")
            all_headers.setdefault("content-type", "application/json")
        if key is not None:
            all_headers[constants.API_KEY_HEADER] = self.api_keys.get(key, key)
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return Response(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, error.headers, error.read())

    def post_events(self, events: Any, *, key: str | None = "producer") -> Response:
        """POST /v1/events: a list of events is sent as ``{"events": [...]}``, anything else as is."""
        body = {"events": events} if isinstance(events, list) else events
        return self.request(routes.EVENTS.method, routes.EVENTS.url(""), key=key, body=body)

    def recommendations(
        self, user_id: str, *, k: int | None = None, key: str | None = "reader", **query: Any
    ) -> Response:
        """GET /v1/users/{user_id}/recommendations with `k` and any other parameters of the route."""
        route = routes.RECOMMENDATIONS
        return self.request(route.method, route.url("", user_id=user_id, k=k, **query), key=key)

    def similar(self, item_id: str, *, k: int | None = None, key: str | None = "reader") -> Response:
        """GET /v1/items/{item_id}/similar."""
        return self.request(routes.SIMILAR.method, routes.SIMILAR.url("", item_id=item_id, k=k), key=key)

    def health(self, *, key: str | None = None) -> Response:
        """GET /v1/health."""
        return self.request(routes.HEALTH.method, routes.HEALTH.url(""), key=key)

    # --- AWS side -----------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A boto3 client for the target's AWS (moto's server or LocalStack)."""
        return aws.client(service, self.aws_endpoint, self.region)

    def wait_until_idle(self, timeout_s: float = 60.0) -> None:
        """Embedded: block until every shard is drained and no function runs. Elsewhere: settle time."""
        if self.pipeline is not None:
            self.pipeline.wait_until_idle(timeout_s)
        else:
            time.sleep(float(os.environ.get(SETTLE_ENV, "5")))


def eventually(check: Callable[[], T], *, timeout_s: float = 30.0, interval_s: float = 0.2) -> T:
    """Call `check` until it returns a truthy value (returned) or `timeout_s` passes (AssertionError)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s (last result: {result!r})")
        time.sleep(interval_s)


def _remote_target(name: str) -> PipelineTarget:
    path = Path(os.environ.get(ENDPOINT_FILE_ENV, str(DEFAULT_ENDPOINT_FILE)))
    if not path.exists():
        raise pytest.UsageError(
            f"{TARGET_ENV}={name}: endpoint file {path} not found; start the target first "
            f"(see localstack/README.md) or set {ENDPOINT_FILE_ENV}"
        )
    document = json.loads(path.read_text())
    return PipelineTarget(
        name=name,
        base_url=document["base_url"],
        api_keys=document["api_keys"],
        outputs=document.get("outputs", {}),
        aws_endpoint=document.get("aws_endpoint") or document.get("moto_endpoint") or "http://localhost:4566",
        region=document.get("region", aws.REGION),
    )


def target_name() -> str:
    """The target the suite runs against: ``$STREAMREC_TARGET``, default embedded."""
    return os.environ.get(TARGET_ENV, EMBEDDED).strip().lower()


# Marks that keep a test off targets that cannot run it: mark name -> whether a target lacks it.
TARGET_MARKS: dict[str, Callable[[str], bool]] = {
    "embedded_only": lambda target: target != EMBEDDED,
    "not_on_localstack": lambda target: target == LOCALSTACK,
}


def skip_reason(marks: Iterable[pytest.Mark], target: str) -> str | None:
    """Why a test with these marks cannot run on `target` (the first applicable mark's reason), or None."""
    for mark in marks:
        lacks = TARGET_MARKS.get(mark.name)
        if lacks is not None and lacks(target):
            return f"{TARGET_ENV}={target}: {mark.args[0]}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip, with the reason, the tests the chosen target cannot run (before their fixtures reach it)."""
    target = target_name()
    for item in items:
        reason = skip_reason(item.iter_markers(), target)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def local_pipeline() -> Iterator[PipelineTarget]:
    """The pipeline under test, started once for the whole session (see the module docstring)."""
    target = target_name()
    if target != EMBEDDED:
        yield _remote_target(target)
        return
    profile = os.environ.get(PROFILE_ENV, "dev")
    # One pipeline per pytest process: with pytest 9.2 and xdist 3.8, xdist_group marks are ignored
    # (xdist sets item._nodeid, pytest 9 reads item._id), so e2e tests may run on several workers.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with LocalPipeline.start(profile=profile, workdir=REPO_ROOT / ".local" / "e2e" / worker) as pipeline:
        yield PipelineTarget(
            name=EMBEDDED,
            base_url=pipeline.base_url,
            api_keys=pipeline.api_keys,
            outputs=pipeline.outputs,
            aws_endpoint=pipeline.moto_endpoint,
            region=pipeline.region,
            pipeline=pipeline,
        )


@pytest.fixture
def unique_id() -> str:
    """An id no other test uses (user ids, item ids, event ids), so tests sharing a pipeline stay apart."""
    return f"e2e-{uuid.uuid4().hex[:12]}"
