"""Command line: ``python -m local_emulator up [--profile dev] [--port 0]``.

``up`` synthesizes the app (cached), starts moto's server, deploys the template, starts the local runtime,
prints the base URL and API keys, writes ``.local/endpoint.json`` and stays in the foreground until Ctrl-C.
``synth`` only synthesizes (into the cache) and prints the assembly directory.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from local_emulator.assembly import synth
from local_emulator.pipeline import REPO_ROOT, LocalPipeline


def _up(args: argparse.Namespace) -> int:
    print(f"starting the local pipeline (profile {args.profile}) ...", flush=True)
    pipeline = LocalPipeline.start(
        profile=args.profile,
        app_dir=Path(args.app_dir),
        api_port=args.port,
        write_endpoint_file=True,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        timings = ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in pipeline.timings.items())
        print(f"up in {pipeline.timings['total_s']:.1f} s ({timings})")
        print(f"base URL      {pipeline.base_url}")
        for role, value in pipeline.api_keys.items():
            print(f"API key       {role:<9} {value}")
        print(f"local AWS     {pipeline.moto_endpoint}  (region {pipeline.region}, any credentials)")
        admin_url = pipeline.endpoint_document()["admin_url"]
        # The demo's storefront (tools/, imported here only: the emulator itself does not need it).
        from tools.storefront import DEMO_SHOP, ROUTE, Storefront

        if {"producer", "reader"} <= set(pipeline.api_keys):
            storefront = Storefront(pipeline.base_url, pipeline.api_keys, DEMO_SHOP.generate())
            storefront.install(pipeline.runtime)
            print(f"storefront    {admin_url}{ROUTE}  (catalog: the generated shop `make demo` replays)")
        print(f"console       {admin_url}console  (dashboard, alarms, mappings, queues)")
        print(f"alarms        {admin_url}alarms")
        print(f"endpoint file {pipeline.workdir / 'endpoint.json'}")
        print(f"logs          {pipeline.workdir / 'logs'}")
        if pipeline.api_keys.get("producer"):
            print(
                "try:          curl -s -X POST "
                f"-H 'x-api-key: {pipeline.api_keys['producer']}' -H 'content-type: application/json' "
                f'-d \'{{"event_type":"view","user_id":"u1","item_id":"i1"}}\' {pipeline.base_url}/v1/events'
            )
        print("Ctrl-C to stop.", flush=True)
        stop.wait()
    finally:
        print("stopping ...", flush=True)
        pipeline.stop()
        (pipeline.workdir / "endpoint.json").unlink(missing_ok=True)
    return 0


def _synth(args: argparse.Namespace) -> int:
    directory = synth(Path(args.app_dir), args.profile, context={"nag": False}, force=args.force)
    print(directory)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen command."""
    parser = argparse.ArgumentParser(prog="python -m local_emulator", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the whole pipeline locally and stay in the foreground")
    up.add_argument("--profile", default="dev", help="settings profile (CDK context env), default dev")
    up.add_argument("--port", type=int, default=0, help="API port (default: a free one)")
    up.add_argument("--app-dir", default=str(REPO_ROOT), help=argparse.SUPPRESS)
    up.set_defaults(run=_up)
    synth_cmd = commands.add_parser("synth", help="synthesize the app into the emulator's cache")
    synth_cmd.add_argument("--profile", default="dev")
    synth_cmd.add_argument("--force", action="store_true", help="ignore the cache")
    synth_cmd.add_argument("--app-dir", default=str(REPO_ROOT), help=argparse.SUPPRESS)
    synth_cmd.set_defaults(run=_synth)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # moto's CloudFormation warns once per skipped resource type; the deploy step handles those.
    logging.getLogger("py.warnings").setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
