"""Benchmarks: each prints its figures with the machine and the command (see BENCHMARKS.md).

Run one with ``python -m bench.<name> --help``; ``python -m bench.run_all`` (``make bench``) runs them all.
Importing the package puts ``lambdas/`` on ``sys.path``, as Lambda has it, so the benchmarks import the
function code (``process``, ``serve``, ``streamrec_core``) exactly as the functions do.
"""

import sys
from pathlib import Path

_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.insert(0, _LAMBDAS)
