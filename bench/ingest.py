"""Figure 5 alone: ingest events/s and PutRecords calls per request on the local emulator.

python -m bench.ingest [--events N] [--ingest-batch 500] [--quick]     (see bench.pipeline_bench)
"""

from bench import pipeline_bench

if __name__ == "__main__":
    raise SystemExit(pipeline_bench.main(parts=("ingest",), name="ingest"))
