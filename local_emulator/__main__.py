"""Command line: ``python -m local_emulator up [--profile dev] [--port 0]``.

``up`` synthesizes the app (cached), starts moto's server, deploys the template, starts the local runtime,
prints the base URL and API keys, writes ``.local/endpoint.json`` and stays in the foreground until Ctrl-C:
the bare emulator, empty. ``make up`` runs ``python -m tools.up`` instead, which adds the demo's storefront
and fills the pipeline with the demo shop's events.
``synth`` only synthesizes (into the cache) and prints the assembly directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from local_emulator import foreground
from local_emulator.assembly import synth
from local_emulator.pipeline import REPO_ROOT


def _up(args: argparse.Namespace) -> int:
    pipeline = foreground.start(args)
    foreground.run_until_stopped(pipeline, lambda stop: foreground.print_endpoints(pipeline))
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
    foreground.add_arguments(up)
    up.set_defaults(run=_up)
    synth_cmd = commands.add_parser("synth", help="synthesize the app into the emulator's cache")
    synth_cmd.add_argument("--profile", default="dev")
    synth_cmd.add_argument("--force", action="store_true", help="ignore the cache")
    synth_cmd.add_argument("--app-dir", default=str(REPO_ROOT), help=argparse.SUPPRESS)
    synth_cmd.set_defaults(run=_synth)
    args = parser.parse_args(argv)
    foreground.configure_logging(args.verbose)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
