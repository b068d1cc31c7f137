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

from tools.redrive.cli import main

__all__ = ["main"]
