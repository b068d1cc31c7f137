"""Run every benchmark (``make bench``), then write bench/results.json and price it with the cost model.

Each benchmark runs in its own process (clean memory, its own core pinning) and writes its figures to
bench/results/<name>.json; this then rebuilds bench/results.json (the cost model's input) and prints the
monthly bill of the 100,000 events/s profile with the measured figures, and what each lever would save.

Usage:
    python -m bench.run_all             # everything (about 40 minutes on 2 busy cores)
    python -m bench.run_all --quick     # every benchmark's --quick mode (a few minutes; saves nothing)
    python -m bench.run_all --only process_throughput --only scaling
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench.common import COST_INPUT_FILE, REPO_ROOT, RESULTS_DIR, print_header

# (module, arguments): the order puts the quick, self-contained ones first.
BENCHMARKS: list[tuple[str, list[str]]] = [
    ("scale", []),
    ("process_throughput", []),
    ("process_memory", []),
    ("pipeline_bench", ["--window", "0"]),
    ("serve_routing", []),
]
COST_PROFILE = "large-100k"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", action="append", help="run only these benchmarks (module names)")
    args = parser.parse_args(argv)
    print_header("all benchmarks")
    failures = []
    for module, extra in BENCHMARKS:
        if args.only and module not in args.only:
            continue
        command = [sys.executable, "-m", f"bench.{module}", *extra] + (["--quick"] if args.quick else [])
        started = time.monotonic()
        print(
            f"\n$ python -m bench.{module} {' '.join(extra + (['--quick'] if args.quick else []))}",
            flush=True,
        )
        done = subprocess.run(command, cwd=REPO_ROOT)
        print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
        if done.returncode:
            failures.append(module)
    if not args.quick:
        from bench import results_file

        inputs = results_file.build()
        print(f"\n{COST_INPUT_FILE.relative_to(REPO_ROOT)}: {json.dumps(inputs)}")
        cost = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.cost_model",
                "--profile",
                COST_PROFILE,
                "--measured",
                str(COST_INPUT_FILE),
                "--levers",
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        print(cost.stdout or cost.stderr)
        priced = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.cost_model",
                "--profile",
                COST_PROFILE,
                "--measured",
                str(COST_INPUT_FILE),
                "--levers",
                "--json",
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        if priced.returncode == 0:
            (RESULTS_DIR / f"cost_{COST_PROFILE}.json").write_text(priced.stdout)
        else:
            failures.append("cost_model")
    if failures:
        print(f"failed: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
