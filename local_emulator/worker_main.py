"""The inside of one local Lambda "container": a long-lived process that runs one function's handler.

Started by `local_emulator.workers` as ``python worker_main.py <code_dir> <handler>`` with the function's
environment. Standard library only: the function's code directory comes first on ``sys.path``, exactly
like ``/var/task`` in Lambda, and nothing of the emulator is importable from the handler.

Protocol (JSON lines): the parent writes ``{"id", "event", "request_id", "deadline_ms"}`` on stdin; the
worker answers ``{"id", "payload", "error", "emf"}`` on the file descriptor that was stdout when it started.
Everything the handler prints (logs) goes to stderr instead; EMF metric lines (Powertools Metrics) are
also collected and returned with the answer so the runtime can publish them to CloudWatch.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
import traceback
import uuid
from typing import Any


class LambdaContext:
    """The context object Lambda's Python runtime passes to handlers.

    The one definition: the workers build it from their environment (`from_environment`); in-process
    invocations (`local_emulator.testing.handler_invoker`) and the tests build it from a function name.
    """

    def __init__(
        self,
        function_name: str,
        *,
        timeout_s: float = 60.0,
        deadline_ms: int | None = None,
        request_id: str | None = None,
        function_arn: str | None = None,
        memory_mb: int | str = 128,
        log_group_name: str | None = None,
        log_stream_name: str = "local",
        function_version: str = "$LATEST",
    ) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
            if function_arn is None
            else function_arn
        )
        # Lambda's runtime reads this from the environment, so it is a string there too.
        self.memory_limit_in_mb = str(memory_mb)
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}" if log_group_name is None else log_group_name
        self.log_stream_name = log_stream_name
        self.identity = None
        self.client_context = None
        self._deadline_ms = int(time.time() * 1000 + timeout_s * 1000) if deadline_ms is None else deadline_ms

    @classmethod
    def from_environment(cls, request_id: str, deadline_ms: int) -> LambdaContext:
        """The context of one invocation in a worker, from the function's environment."""
        env = os.environ
        return cls(
            env.get("AWS_LAMBDA_FUNCTION_NAME", ""),
            deadline_ms=deadline_ms,
            request_id=request_id,
            function_arn=env.get("STREAMREC_LOCAL_FUNCTION_ARN", ""),
            memory_mb=env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            log_group_name=env.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
            log_stream_name=env.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
            function_version=env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        )

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout."""
        return max(0, self._deadline_ms - int(time.time() * 1000))


class _Capture:
    """sys.stdout replacement: everything goes to stderr; EMF JSON lines are also collected."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self._pending = ""
        self.emf: list[dict[str, Any]] = []

    def write(self, text: str) -> int:
        self._target.write(text)
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self._collect(line)
        return len(text)

    def _collect(self, line: str) -> None:
        stripped = line.strip()
        if stripped.startswith("{") and '"_aws"' in stripped:
            try:
                document = json.loads(stripped)
            except ValueError:
                return
            if isinstance(document, dict) and "_aws" in document:
                self.emf.append(document)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return "utf-8"


# setuptools names the finder modules of an editable install `__editable___<project>_<version>_finder`.
_EDITABLE = "__editable__"


def _error(error_type: str, message: str, stack: list[str] | None = None) -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": stack or []}


def main() -> None:
    """Serve invocations until stdin closes."""
    # Ctrl-C reaches the whole process group; the parent stops us by closing stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code_dir, handler_spec = sys.argv[1], sys.argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [code_dir] + [p for p in sys.path if os.path.abspath(p or ".") != here]
    # Developers have the repository installed editable (`make venv`); its finders would let a function
    # import project code its asset lacks. A function sees its asset and the installed libraries only.
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith(_EDITABLE)]
    os.chdir(code_dir)

    # Keep the real stdout for the protocol; route fd 1 (and sys.stdout) to stderr for the handler.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    capture = _Capture(sys.stderr)
    sys.stdout = capture

    handler = None
    init_error: dict[str, Any] | None = None

    def load() -> None:
        nonlocal handler, init_error
        module_name, _, function_name = handler_spec.rpartition(".")
        try:
            module = importlib.import_module(module_name.replace("/", "."))
            handler = getattr(module, function_name)
            init_error = None
        except ImportError as error:
            init_error = _error(
                "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}"
            )
        except AttributeError:
            init_error = _error(
                "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
            )
        except Exception as error:  # an exception during init is reported on every invocation
            init_error = _error(type(error).__name__, str(error), traceback.format_exc().splitlines())

    load()
    protocol.write(json.dumps({"ready": True, "init_error": init_error}) + "\n")

    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        capture.emf = []
        if handler is None:
            load()
        answer: dict[str, Any]
        if handler is None:
            answer = {"payload": init_error, "error": "Unhandled"}
        else:
            context = LambdaContext.from_environment(request["request_id"], int(request["deadline_ms"]))
            try:
                result = handler(request["event"], context)
                try:
                    answer = {"payload": json.loads(json.dumps(result)), "error": None}
                except (TypeError, ValueError) as error:
                    answer = {"payload": _error("Runtime.MarshalError", str(error)), "error": "Unhandled"}
            except Exception as error:  # the handler's exception is the function error, as in Lambda
                stack = traceback.format_exc().splitlines()
                sys.stderr.write("\n".join(stack) + "\n")
                answer = {"payload": _error(type(error).__name__, str(error), stack), "error": "Unhandled"}
        sys.stderr.flush()
        answer["id"] = request["id"]
        answer["emf"] = capture.emf
        protocol.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
