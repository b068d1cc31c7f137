"""moto's server as the local AWS control and data plane, run in its own process.

`MotoServer().start()` launches ``python -m local_emulator.moto_server`` on 127.0.0.1 at a free port and
returns its endpoint. The child applies `moto_patches` (AWS-faithful resharding, no Docker push to
Lambda, Kinesis and DynamoDB safe for concurrent requests) and `service_metrics` (the Kinesis and
DynamoDB metrics AWS would publish, read by the runtime over HTTP), prints ``READY <port>`` once
listening, and exits when its stdin closes, so it never outlives the process that started it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # moto itself is imported in the server process only
    from moto.backends import SERVICE_NAMES

log = logging.getLogger(__name__)

READY_PREFIX = "READY "


class MotoServer:
    """A moto server subprocess bound to 127.0.0.1."""

    def __init__(self, *, port: int = 0, log_path: Path | None = None) -> None:
        self._port = port
        self._log_path = log_path
        self._process: subprocess.Popen[str] | None = None
        self._log_file: IO[str] | None = None
        self.endpoint = ""

    def start(self, timeout_s: float = 60.0) -> str:
        """Start the server and return its endpoint URL, e.g. ``http://127.0.0.1:41234``."""
        if self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self._log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ)
        env.pop("AWS_ENDPOINT_URL", None)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "local_emulator.moto_server", "--port", str(self._port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file or subprocess.DEVNULL,
            text=True,
            cwd=str(Path(__file__).resolve().parent.parent),
            env=env,
        )
        port = self._wait_ready(timeout_s)
        self.endpoint = f"http://127.0.0.1:{port}"
        return self.endpoint

    def _wait_ready(self, timeout_s: float) -> int:
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        line = result[0] if result else ""
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"moto server did not start (got {line!r}); see {self._log_path}")
        return int(line[len(READY_PREFIX) :].strip())

    def stop(self) -> None:
        """Stop the server (closing its stdin asks it to exit; it is killed if it does not)."""
        process, self._process = self._process, None
        if process is not None:
            try:
                if process.stdin:
                    process.stdin.close()
                process.wait(timeout=5)
            except (subprocess.TimeoutExpired, OSError):
                process.kill()
                process.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _serve(port: int) -> None:
    # Ctrl-C reaches the whole process group; the parent stops us by closing stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from local_emulator import moto_http, moto_patches, moto_speed, service_metrics

    moto_patches.apply()
    moto_speed.apply()
    service_metrics.apply()
    # One line per request would flood the log; errors still get through.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_http.serve("127.0.0.1", port)
    bound_port = server.server_address[1]
    sys.stdout.write(f"{READY_PREFIX}{bound_port}\n")
    sys.stdout.flush()
    # moto imports a service's models on its first request (CloudFormation imports them all): seconds
    # of work that would otherwise land on the deploy. Do it now, while the caller synthesizes.
    threading.Thread(target=_warm_up, daemon=True).start()
    # Block until the parent closes our stdin (or dies), then stop.
    sys.stdin.read()
    server.shutdown()


WARM_SERVICES: tuple[SERVICE_NAMES, ...] = (
    "s3",
    "ssm",
    "cloudformation",
    "iam",
    "kms",
    "kinesis",
    "dynamodb",
    "sqs",
    "sns",
    "lambda",
    "apigateway",
    "cloudwatch",
    "logs",
)


def _warm_up() -> None:
    try:
        import moto.cloudformation.parsing  # noqa: F401 - imports every service's models
        from moto.backends import get_backend

        from local_emulator import aws

        for service in WARM_SERVICES:
            get_backend(service)[aws.ACCOUNT_ID][aws.REGION]
    except Exception as error:  # warming is an optimization only
        logging.getLogger(__name__).warning("moto warm-up failed: %s", error)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the server subprocess."""
    parser = argparse.ArgumentParser(description="moto server for the streamrec local emulator")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    _serve(args.port)


if __name__ == "__main__":
    main()
