"""docs/layout.md (the code map the README points to) names every top-level entry of the repository and the
functions' packages, and every path it names exists: moving or adding a folder without the map fails here."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# An entry of the map's code block: a path at the start of a line (top level) or indented by two.
ENTRY = re.compile(r"^(?:  )?([A-Za-z_.][\w.\-/]*)(?:\s{2,}\S.*)?$")
# Not part of the code map: git's own file.
UNMAPPED = {".gitignore"}


def _map_entries() -> list[str]:
    text = (REPO_ROOT / "docs" / "layout.md").read_text()
    block = text.split("```", 2)[1]
    entries = []
    parent = ""
    for line in block.splitlines():
        match = ENTRY.match(line)
        if not match:
            continue
        path = match.group(1)
        if line.startswith("  "):
            path = parent.rstrip("/") + "/" + path
        elif path.endswith("/"):
            parent = path
        entries.append(path.rstrip("/"))
    return entries


def _tracked_top_level() -> set[str]:
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return {f.split("/", 1)[0] for f in files} - UNMAPPED


def test_every_path_the_map_names_exists() -> None:
    entries = _map_entries()
    assert len(entries) > 20, entries  # the block was parsed
    missing = [e for e in entries if not (REPO_ROOT / e).exists()]
    assert not missing, f"docs/layout.md names paths that do not exist: {missing}"


def test_the_map_names_every_top_level_entry_and_every_function_package() -> None:
    named = {e.split("/", 1)[0] for e in _map_entries()}
    assert not _tracked_top_level() - named, "docs/layout.md does not name these top-level entries"
    packages = {p.name for p in (REPO_ROOT / "lambdas").iterdir() if (p / "__init__.py").exists()}
    mapped = {e.split("/")[1] for e in _map_entries() if e.startswith("lambdas/") and e.count("/") >= 1}
    assert packages <= mapped, f"docs/layout.md misses function packages: {packages - mapped}"
