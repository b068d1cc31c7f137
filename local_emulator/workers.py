"""Local Lambda functions: long-lived worker processes, one "container" each, fed over pipes.

`LocalFunction.from_deployed(...)` reads a function as moto holds it (handler, runtime settings,
environment, timeout, memory) and takes its code from the deployed asset in moto's S3, extracted under
``.local/code/``. `invoke(event)` returns ``(payload, function_error)`` like Lambda's Invoke API:
``function_error`` is ``None``, or ``"Unhandled"`` with an ``{errorType, errorMessage}`` payload when the
handler raised, timed out, or its process died. A failed invocation never crashes the runtime; a worker
that timed out or died is replaced by a fresh one (a cold start), like a Lambda container.
"""

from __future__ import annotations

import io
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from local_emulator import aws

log = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).resolve().parent / "worker_main.py"
# Seconds a worker may take to start and import its handler (a cold start).
INIT_TIMEOUT_S = 60.0
# Host variables a worker keeps; everything else comes from the function's own configuration.
_HOST_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "TZ")


@dataclass
class FunctionSpec:
    """What a worker needs to run a function."""

    name: str
    arn: str
    handler: str
    code_dir: Path
    environment: dict[str, str]
    timeout_s: float = 3.0
    memory_mb: int = 128
    role: str = ""
    max_concurrency: int = 2
    log_path: Path | None = None


@dataclass
class Invocation:
    """One completed invocation, for metrics (duration, error) and EMF documents it printed."""

    function_name: str
    duration_ms: float
    function_error: str | None
    emf: list[dict[str, Any]] = field(default_factory=list)


class _Worker:
    """One worker process running one invocation at a time."""

    def __init__(self, spec: FunctionSpec, endpoint: str, region: str) -> None:
        self.spec = spec
        env = {k: os.environ[k] for k in _HOST_VARIABLES if k in os.environ}
        env.update(aws.credentials_env(endpoint, region))
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{uuid.uuid4().hex}",
                "AWS_EXECUTION_ENV": "AWS_Lambda_python_local",
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "_HANDLER": spec.handler,
                "STREAMREC_LOCAL_FUNCTION_ARN": spec.arn,
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                # No X-Ray daemon locally: the Tracer would only log connection errors.
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
        )
        env.update(spec.environment)
        self._log: IO[str] | None = None
        stderr: Any = subprocess.DEVNULL
        if spec.log_path is not None:
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(spec.log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            stderr = self._log
        self.process = subprocess.Popen(
            [sys.executable, "-u", str(WORKER_SCRIPT), str(spec.code_dir), spec.handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            cwd=str(spec.code_dir),
        )
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"worker-{spec.name}", daemon=True)
        self._reader.start()
        self._next_id = 0
        self.ready = False

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                self._answers.put(json.loads(line))
            except ValueError:
                log.warning("worker of %s wrote a non-protocol line: %r", self.spec.name, line[:200])
        self._answers.put(None)  # EOF: the process died

    def wait_ready(self) -> None:
        """Block until the worker imported its handler (or failed to); raises if the process died."""
        if self.ready:
            return
        message = self._answers.get(timeout=INIT_TIMEOUT_S)
        if message is None:
            raise RuntimeError(f"worker of {self.spec.name} exited during init; see {self.spec.log_path}")
        if message.get("init_error"):
            log.warning("init error in %s: %s", self.spec.name, message["init_error"])
        self.ready = True

    def invoke(self, event: Any, request_id: str) -> tuple[Any, str | None, list[dict[str, Any]], bool]:
        """Run one invocation; returns (payload, function_error, emf, worker_still_usable)."""
        self.wait_ready()
        self._next_id += 1
        deadline = time.time() + self.spec.timeout_s
        request = {
            "id": self._next_id,
            "event": event,
            "request_id": request_id,
            "deadline_ms": int(deadline * 1000),
        }
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return (
                _runtime_error("Runtime.ExitError", "worker process is gone", request_id),
                "Unhandled",
                [],
                False,
            )
        # A little grace beyond the timeout for the pipe round trip.
        try:
            answer = self._answers.get(timeout=max(0.1, deadline - time.time()) + 0.5)
        except queue.Empty:
            message = f"Task timed out after {self.spec.timeout_s:.2f} seconds"
            return _runtime_error("Sandbox.Timedout", message, request_id), "Unhandled", [], False
        if answer is None:
            try:
                code = self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
            message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
            return _runtime_error("Runtime.ExitError", message, request_id), "Unhandled", [], False
        payload = answer.get("payload")
        if isinstance(payload, dict) and answer.get("error") and "requestId" in payload:
            payload["requestId"] = request_id
        return payload, answer.get("error"), answer.get("emf") or [], True

    def close(self) -> None:
        """Stop the process (closing stdin ends its loop; kill if it does not)."""
        try:
            if self.process.stdin:
                self.process.stdin.close()
            self.process.wait(timeout=3)
        except (subprocess.TimeoutExpired, OSError):
            self.process.kill()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                log.warning("worker of %s did not exit", self.spec.name)
        if self._log is not None:
            self._log.close()
            self._log = None


class Throttled(Exception):
    """No worker became free in time: Lambda's TooManyRequestsException (the function is at its
    concurrency) for a synchronous invocation."""


def _runtime_error(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message, "requestId": request_id}


class LocalFunction:
    """A deployed function run locally by up to `max_concurrency` worker processes."""

    def __init__(
        self,
        spec: FunctionSpec,
        endpoint: str,
        region: str = aws.REGION,
        on_invocation: Callable[[Invocation], None] | None = None,
    ) -> None:
        self.spec = spec
        self._endpoint = endpoint
        self._region = region
        self._on_invocation = on_invocation
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._condition = threading.Condition()
        self._in_flight = 0
        self._closed = False

    @property
    def name(self) -> str:
        """The function's name."""
        return self.spec.name

    @property
    def in_flight(self) -> int:
        """Invocations currently running."""
        return self._in_flight

    def busy_worker_pids(self) -> list[int]:
        """Process ids of the workers running an invocation right now (tests kill one mid-invocation)."""
        with self._condition:
            idle = {id(worker) for worker in self._idle}
            return [worker.process.pid for worker in self._all if id(worker) not in idle]

    def warm(self) -> None:
        """Start one worker and wait for its init, so the first invocation is not a cold start."""
        with self._condition:
            if self._all:
                return
            worker = self._spawn()
            self._idle.append(worker)
        worker.wait_ready()

    def _spawn(self) -> _Worker:
        worker = _Worker(self.spec, self._endpoint, self._region)
        self._all.append(worker)
        return worker

    def _acquire(self, wait_s: float | None) -> _Worker:
        deadline = None if wait_s is None else time.monotonic() + wait_s
        with self._condition:
            while True:
                if self._closed:
                    raise RuntimeError(f"function {self.name} is stopped")
                if self._idle:
                    worker = self._idle.pop()
                    break
                if len(self._all) < self.spec.max_concurrency:
                    worker = self._spawn()
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise Throttled(
                        f"function {self.name} is at its concurrency ({self.spec.max_concurrency})"
                    )
                self._condition.wait(remaining)
            self._in_flight += 1
            return worker

    def _release(self, worker: _Worker, usable: bool) -> None:
        with self._condition:
            self._in_flight -= 1
            if usable and not self._closed:
                self._idle.append(worker)
            else:
                self._all.remove(worker)
                threading.Thread(target=worker.close, daemon=True).start()
            self._condition.notify()

    def invoke(self, event: Any, *, wait_s: float | None = None) -> tuple[Any, str | None]:
        """Invoke synchronously (RequestResponse): returns (payload, function_error).

        With `wait_s`, raises `Throttled` when no worker is free within that many seconds (the event
        source mapping poller waits as long as it takes: it retries throttles anyway).
        """
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        worker = self._acquire(wait_s)
        usable = False
        try:
            payload, error, emf, usable = worker.invoke(event, request_id)
        except Exception as failure:  # never let a broken worker take the runtime down
            log.exception("invocation of %s failed in the runtime", self.name)
            payload, error, emf = _runtime_error("Runtime.Unknown", str(failure), request_id), "Unhandled", []
        finally:
            self._release(worker, usable)
        if self._on_invocation is not None:
            duration = (time.perf_counter() - started) * 1000.0
            self._on_invocation(Invocation(self.name, duration, error, emf))
        return payload, error

    def close(self) -> None:
        """Stop every worker."""
        with self._condition:
            self._closed = True
            workers, self._all, self._idle = list(self._all), [], []
            self._condition.notify_all()
        for worker in workers:
            worker.close()


def extract_code(
    code_root: Path,
    *,
    s3: Any = None,
    bucket: str | None = None,
    key: str | None = None,
    zip_file: str | None = None,
    name: str,
) -> Path:
    """Materialize a function's deployed code under `code_root` and return the directory.

    S3 assets are cached by object key (an asset hash), so restarts reuse the extracted tree.
    """
    if zip_file is not None:
        target = code_root / f"inline-{name}"
        target.mkdir(parents=True, exist_ok=True)
        (target / "index.py").write_text(zip_file)
        return target
    if not bucket or not key:
        raise ValueError(f"function {name} has no code location")
    target = code_root / Path(key).stem
    if target.exists():
        return target
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    scratch = code_root / f".{target.name}.{uuid.uuid4().hex}"
    scratch.mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        archive.extractall(scratch)
    try:
        scratch.rename(target)
    except OSError:  # another process extracted the same asset first
        shutil.rmtree(scratch, ignore_errors=True)
    return target
