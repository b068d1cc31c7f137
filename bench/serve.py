"""Serve over HTTP alone on the local emulator: latency p50/p99 and requests/s (see bench.pipeline_bench).

Serve's DynamoDB reads per recommendation (read units, round trips, the trending cache) are measured by
bench.scale at real-scale cardinality.

python -m bench.serve [--window 0] [--requests N] [--quick]
"""

from bench import pipeline_bench

if __name__ == "__main__":
    raise SystemExit(pipeline_bench.main(parts=("serve",), name="serve"))
