"""The README's first command, `make demo`, on a small input: CI covers the main job too."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_make_demo_replays_events_and_shows_fresh_recommendations(tmp_path: Path) -> None:
    # Given a fresh shell running the README's main command on 400 generated events
    result = subprocess.run(
        ["make", "--no-print-directory", "demo", "N=400", "PROBES=3", f"PYTHON={sys.executable}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    # Then it succeeds, every event is accepted and processed, and freshness was measured
    assert result.returncode == 0, output[-4000:]
    assert re.search(r"events: 400 sent, 400 accepted, 0 rejected, 0 failed", output), output[-4000:]
    assert re.search(r"freshness: p50 [0-9.]+ s, p95 [0-9.]+ s, .* over 3 probes \(0 timed out", output)
    # And recommendations are shown for known users and for a cold-start user
    assert len(re.findall(r"    user \S+ \(\d+ events, variant \S+\): \S+", output)) == 3, output[-4000:]
    assert "a new user (cold start, fallback=True): " in output
    # And it said where to watch: the local console and the storefront
    assert re.search(r"console: http://127\.0\.0\.1:\d+/_local/console ", output), output[:2000]
    assert re.search(r"storefront: http://127\.0\.0\.1:\d+/_local/storefront\n", output), output[:2000]
