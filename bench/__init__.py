"""Benchmarks: each prints its figures with the machine and the command (see BENCHMARKS.md).

Run one with ``python -m bench.<name> --help``; ``python -m bench.run_all`` (``make bench``) runs them all.
"""
