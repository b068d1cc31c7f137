"""Developer tools run as `python -m tools.<name>` (replay, demo, redrive, evaluation, exports)."""
