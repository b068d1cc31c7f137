"""The pipeline in the foreground: what `python -m local_emulator up` and `make up` (tools/up.py) share.

`add_arguments` and `start` take the same options and print the same first line; `print_endpoints` says
how to reach the pipeline (base URL, API keys, local AWS, console, files, a curl line);
`run_until_stopped` runs the caller's set-up, then waits for Ctrl-C or SIGTERM and stops the pipeline,
removing the endpoint file it wrote.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from streamrec_core import routes

from local_emulator.pipeline import REPO_ROOT, LocalPipeline


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `start`."""
    parser.add_argument("--profile", default="dev", help="settings profile (CDK context env), default dev")
    parser.add_argument("--port", type=int, default=0, help="API port (default: a free one)")
    parser.add_argument("--app-dir", default=str(REPO_ROOT), help=argparse.SUPPRESS)


def configure_logging(verbose: bool) -> None:
    """WARNING (INFO when `verbose`) to stderr, without the deploy's expected warnings."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # moto's CloudFormation warns once per skipped resource type; the deploy step handles those.
    logging.getLogger("py.warnings").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")


def start(args: argparse.Namespace, out: TextIO = sys.stdout) -> LocalPipeline:
    """Start the pipeline `add_arguments`' options describe, writing ``.local/endpoint.json``."""
    print(f"starting the local pipeline (profile {args.profile}) ...", file=out, flush=True)
    try:
        return LocalPipeline.start(
            profile=args.profile, app_dir=Path(args.app_dir), api_port=args.port, write_endpoint_file=True
        )
    except KeyboardInterrupt:  # LocalPipeline.start stops what it had started before re-raising
        print("interrupted while starting: nothing is left running", file=out, flush=True)
        raise SystemExit(130) from None


def line(label: str, text: str) -> str:
    """One line of the endpoint list: the label in its column, then the text."""
    return f"{label:<13} {text}"


def print_endpoints(
    pipeline: LocalPipeline, pages: Sequence[tuple[str, str]] = (), out: TextIO = sys.stdout
) -> None:
    """Print how to reach `pipeline`; `pages` ((label, text): what a caller serves on it, e.g. the
    demo's storefront) come before the console's line."""

    def say(label: str, text: str) -> None:
        print(line(label, text), file=out)

    timings = ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in pipeline.timings.items())
    print(f"up in {pipeline.timings['total_s']:.1f} s ({timings})", file=out)
    say("base URL", pipeline.base_url)
    for role, value in pipeline.api_keys.items():
        say("API key", f"{role:<9} {value}")
    say("local AWS", f"{pipeline.moto_endpoint}  (region {pipeline.region}, any credentials)")
    for label, text in pages:
        say(label, text)
    admin_url = pipeline.endpoint_document()["admin_url"]
    say("console", f"{admin_url}console  (dashboard, alarms, mappings, queues)")
    say("alarms", f"{admin_url}alarms")
    say("endpoint file", str(pipeline.endpoint_file))
    say("logs", str(pipeline.workdir / "logs"))
    if pipeline.api_keys.get("producer"):
        say(
            "try:",
            f"curl -s -X POST -H 'x-api-key: {pipeline.api_keys['producer']}' "
            "-H 'content-type: application/json' "
            f'-d \'{{"event_type":"view","user_id":"u1","item_id":"i1"}}\' '
            + routes.EVENTS.url(pipeline.base_url),
        )
    out.flush()


def run_until_stopped(
    pipeline: LocalPipeline,
    setup: Callable[[threading.Event], Any] = lambda stop: None,
    out: TextIO = sys.stdout,
) -> None:
    """Run `setup(stop)`, then wait for Ctrl-C or SIGTERM; always stop the pipeline at the end.

    `stop` is set when a signal arrives, so what `setup` starts in the background can end quietly
    rather than report the pipeline's shutdown as its own failure. Signals are caught before `setup`
    runs: one that comes during it still stops the pipeline.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {number: signal.signal(number, on_signal) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        setup(stop)
        print("Ctrl-C to stop.", file=out, flush=True)
        stop.wait()
    finally:
        stop.set()
        print("stopping ...", file=out, flush=True)
        try:
            pipeline.stop()
            pipeline.endpoint_file.unlink(missing_ok=True)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
