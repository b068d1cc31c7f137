"""Redrive: apply what the pipeline failed to apply, once the cause is fixed (`make redrive`).

Two queues hold what the process function could not apply:
- the dead-letter queue (DLQ): single records it refused (undecodable, invalid, oversized), each with
  its payload and the reason; replayed from the payload;
- the on-failure queue: AWS's metadata of batches the event source mapping gave up on (retries or
  record age exhausted); re-read from the stream by sequence number.

Both go through the process function's own `BatchProcessor` in redrive mode, so replaying a record twice
applies it once. Layers: `cli` (arguments, target, output) -> `replay` (logic) -> `queue`, `stream`,
`functions` (SQS, Kinesis, Lambda); `messages` parses the two message kinds.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Tools import the shared code exactly as the functions do, with lambdas/ on the path.
_LAMBDAS = str(Path(__file__).resolve().parent.parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.insert(0, _LAMBDAS)

from tools.redrive.cli import main  # noqa: E402

__all__ = ["main"]
