"""`python -m tools.redrive` (`make redrive`): replay the dead-letter queue and the on-failure queue.

    make redrive DRY_RUN=1                   # what a run would do, changing nothing (--dry-run)
    make redrive                             # both queues of the local pipeline (`make up`)
    make redrive SOURCE=dlq                  # only dead letters, after fixing why they were refused
    python -m tools.redrive --stack-name Streamrec-prod --region eu-west-1 --source on-failure

Where: a running `make up` (its `.local/endpoint.json`: moto's endpoint, region and the stack outputs)
with dummy credentials, so no AWS setup is needed; `--endpoint-file` / `--endpoint-url` name another
local endpoint (LocalStack). Otherwise AWS with the default credential chain, the queues from the
stack's outputs (`--stack-name`) or given (`--dlq-url`, `--on-failure-url`).

Progress goes to stderr, then one line per message kept (why); the summary is JSON on stdout.
Exit 0: every message handled (deleted). 1: some messages kept (they are visible in their queue again at
once; run again after fixing the cause). 2: the run could not start or go on (no target, no credentials,
endpoint unreachable, no such queue, Ctrl-C); messages it held are visible again.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from streamrec_core.constants import OUTPUT_DLQ_URL, OUTPUT_ON_FAILURE_QUEUE_URL

from local_emulator import aws as local_aws
from tools.progress import Progress
from tools.redrive.functions import StreamFunctions
from tools.redrive.queue import QueueSession
from tools.redrive.replay import DLQ, ON_FAILURE, SOURCES, Redriver, SourceSummary
from tools.redrive.stream import read_range

DEFAULT_ENDPOINT_FILE = Path(__file__).resolve().parent.parent.parent / ".local" / "endpoint.json"
QUEUE_OUTPUTS = {DLQ: OUTPUT_DLQ_URL, ON_FAILURE: OUTPUT_ON_FAILURE_QUEUE_URL}
EXIT_OK, EXIT_KEPT, EXIT_ERROR = 0, 1, 2


class RunError(Exception):
    """The run cannot start or go on; the text says what to do."""


@dataclass(frozen=True)
class Target:
    """Where the pipeline runs: a local endpoint (dummy credentials) or AWS (default credential chain)."""

    name: str
    endpoint: str | None
    region: str | None
    queues: dict[str, str]
    session: Any = None  # boto3 session for AWS

    def client(self, service: str) -> Any:
        if self.endpoint is not None:
            return local_aws.client(service, self.endpoint, self.region or local_aws.REGION)
        return self.session.client(service)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.redrive",
        description="Replay the dead-letter queue (from each record's payload) and the on-failure queue "
        "(re-read from the stream) through the process function's logic; idempotent.",
    )
    parser.add_argument(
        "--source",
        choices=("all", *SOURCES),
        default="all",
        help="which queue to replay (default: all = dlq, then on-failure)",
    )
    parser.add_argument("--dry-run", action="store_true", help="report what a run would do; change nothing")
    parser.add_argument("--max-messages", type=int, default=None, help="at most this many messages per queue")
    parser.add_argument(
        "--endpoint-file",
        type=Path,
        help=f"a local pipeline's endpoint.json (default: {DEFAULT_ENDPOINT_FILE})",
    )
    parser.add_argument("--endpoint-url", help="a local AWS endpoint (moto, LocalStack); dummy credentials")
    parser.add_argument("--region", help="AWS region")
    parser.add_argument("--stack-name", help="AWS: read the queue URLs from this stack's outputs")
    parser.add_argument("--dlq-url", help="the dead-letter queue (default: the stack output)")
    parser.add_argument("--on-failure-url", help="the on-failure queue (default: the stack output)")
    parser.add_argument("--function-name", help="process function whose settings to use (default: looked up)")
    return parser


def resolve_target(args: argparse.Namespace, default_file: Path = DEFAULT_ENDPOINT_FILE) -> Target:
    given = {s: url for s, url in ((DLQ, args.dlq_url), (ON_FAILURE, args.on_failure_url)) if url}
    endpoint_file = args.endpoint_file
    if endpoint_file is None and args.endpoint_url is None and not (args.stack_name or given):
        if not default_file.exists():
            raise RunError(
                f"no target: {default_file} not found (`make up` starts the local pipeline and writes it); "
                "for AWS pass --stack-name (e.g. Streamrec-dev) or --dlq-url / --on-failure-url"
            )
        endpoint_file = default_file
    if endpoint_file is not None:
        target = _local_from_file(endpoint_file, args)
    elif args.endpoint_url is not None:
        target = Target(f"local endpoint {args.endpoint_url}", args.endpoint_url, args.region, {})
    else:
        session = boto3.session.Session(region_name=args.region)
        if session.get_credentials() is None:
            raise RunError(
                "no AWS credentials found (environment, profile or role); configure them for AWS, "
                "or start the local pipeline with `make up`, which needs none"
            )
        target = Target(f"AWS {session.region_name}", None, session.region_name, {}, session)
    queues = {**target.queues, **given}
    if args.stack_name:
        queues = {**_stack_queues(target, args.stack_name), **queues}
    return Target(target.name, target.endpoint, target.region, queues, target.session)


def _local_from_file(path: Path, args: argparse.Namespace) -> Target:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path} not found: start the local pipeline with `make up`") from None
    except ValueError:
        raise RunError(f"{path}: not JSON") from None
    endpoint = args.endpoint_url or document.get("moto_endpoint") or document.get("aws_endpoint")
    if not endpoint:
        raise RunError(f"{path}: no moto_endpoint")
    outputs = document.get("outputs") or {}
    queues = {source: outputs[name] for source, name in QUEUE_OUTPUTS.items() if outputs.get(name)}
    region = args.region or document.get("region") or local_aws.REGION
    return Target(f"local pipeline {endpoint} ({path})", endpoint, region, queues)


def _stack_queues(target: Target, stack_name: str) -> dict[str, str]:
    try:
        (stack,) = target.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        raise RunError(f"stack {stack_name}: {error}") from None
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
    return {source: outputs[name] for source, name in QUEUE_OUTPUTS.items() if outputs.get(name)}


def run(args: argparse.Namespace, target: Target, summaries: dict[str, SourceSummary]) -> None:
    """Replay each requested queue into its summary."""
    sqs = target.client("sqs")
    sessions: dict[str, QueueSession] = {}
    total = 0
    for source in summaries:
        url = target.queues.get(source)
        if not url:
            raise RunError(f"no {source} queue: pass --{'dlq' if source == DLQ else 'on-failure'}-url")
        sessions[source] = QueueSession(sqs, url)
        try:
            count = sessions[source].approximate_count()
        except ClientError as error:
            raise RunError(f"{source} queue {url}: {error}") from None
        total += count if args.max_messages is None else min(count, args.max_messages)
    functions = StreamFunctions(
        target.client("lambda"), target.client("dynamodb"), sqs, function_name=args.function_name
    )
    progress = Progress(total, label="redrive (dry run)" if args.dry_run else "redrive")
    redriver = Redriver(
        functions, partial(read_range, target.client("kinesis")), dry_run=args.dry_run, progress=progress
    )
    try:
        for source, summary in summaries.items():
            with sessions[source] as queue:
                redriver.run(source, queue, summary, args.max_messages)
            if queue.unreleased:
                print(
                    f"redrive: {len(queue.unreleased)} {source} messages could not be made visible again; "
                    "they reappear when their visibility timeout ends",
                    file=sys.stderr,
                )
    finally:
        progress.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sources = SOURCES if args.source == "all" else (args.source,)
    summaries = {source: SourceSummary() for source in sources}
    target: Target | None = None
    error: str | None = None
    try:
        target = resolve_target(args)
        run(args, target, summaries)
    except RunError as failure:
        error = str(failure)
    except KeyboardInterrupt:
        error = "interrupted; the messages it held are visible again"
    except (BotoCoreError, ClientError) as failure:
        where = target.name if target is not None else "AWS"
        hint = "; is `make up` still running?" if target is not None and target.endpoint else ""
        error = f"cannot work with {where}: {failure}{hint}"
    report(args, target, summaries, error)
    if error is not None:
        return EXIT_ERROR
    return EXIT_KEPT if any(s.kept for s in summaries.values()) else EXIT_OK


def report(
    args: argparse.Namespace, target: Target | None, summaries: dict[str, SourceSummary], error: str | None
) -> None:
    """Problems and a one-line summary on stderr, the full summary as JSON on stdout."""
    kept = "would keep" if args.dry_run else "kept"
    for summary in summaries.values():
        for problem in summary.problems:
            print(f"{kept}: {problem}", file=sys.stderr)
    if error is not None:
        print(f"redrive: error: {error}", file=sys.stderr)
    handled = "would handle" if args.dry_run else "handled"
    parts = [
        f"{source}: {s.messages} messages, {s.handled} {handled}, {s.kept} {kept}"
        for source, s in summaries.items()
    ]
    print("redrive: " + "; ".join(parts), file=sys.stderr)
    document = {
        "dry_run": args.dry_run,
        "target": target.name if target is not None else None,
        "error": error,
        **{source: summary.as_dict() for source, summary in summaries.items()},
    }
    print(json.dumps(document, indent=2))
