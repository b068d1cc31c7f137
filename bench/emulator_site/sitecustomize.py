"""Loaded by Python at start-up when this folder is on PYTHONPATH (``bench.pipeline_bench --moto-fix``).

In the local emulator's moto server process only, replace moto's whole-table rollback copies in
TransactWriteItems with per-item backups (`bench.moto_transactions`) and serialize transactions, so the
emulator's timings reflect the pipeline rather than moto copying tables. Every other process is left
alone. See BENCHMARKS.md for why (cost grows with table size; concurrent transactions crash moto).
"""

import sys
import threading
from pathlib import Path

if "local_emulator.moto_server" in getattr(sys, "orig_argv", ()):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
    from moto.dynamodb.models import DynamoDBBackend

    from bench.moto_transactions import fast_transactions

    _patch = fast_transactions()  # kept: a collected generator would undo the patch
    _patch.__enter__()  # for the life of the process
    _lock = threading.Lock()
    _fast = DynamoDBBackend.transact_write_items

    def _serialized(self, transact_items):  # type: ignore[no-untyped-def]
        with _lock:
            return _fast(self, transact_items)

    DynamoDBBackend.transact_write_items = _serialized
