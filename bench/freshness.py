"""Figure 4 alone: freshness (event accepted -> visible in recommendations) on the local emulator.

python -m bench.freshness [--window 1] [--probes 40] [--quick]     (see bench.pipeline_bench)
"""

from bench import pipeline_bench

if __name__ == "__main__":
    raise SystemExit(pipeline_bench.main(parts=("freshness",), name="freshness"))
