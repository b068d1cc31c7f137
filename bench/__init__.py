"""Benchmarks: each prints its figures with the machine and the command (see BENCHMARKS.md).

Run one with ``python -m bench.<name> --help``; ``python -m bench.run_all`` (``make bench``) runs them all.
The benchmarks import the function code (``process``, ``serve``, ``streamrec_core``) by the names the
functions use; ``make venv`` installs them (editable, see pyproject.toml).
"""
