"""Which top-level packages may import which: the emulator and the functions never reach up into the
tools, benchmarks or tests that use them (a function-level import counts too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.imports import imported_packages

REPO_ROOT = Path(__file__).resolve().parents[2]
# Folder -> the top-level packages its code must not import.
FORBIDDEN = {
    "local_emulator": {"tools", "bench", "tests"},
    "lambdas": {"local_emulator", "tools", "bench", "tests", "stacks", "streamrec_client"},
    "streamrec_client": {"local_emulator", "tools", "bench", "tests", "stacks"},
    "stacks": {"local_emulator", "tools", "bench", "tests"},
}


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_the_layers_above(folder: str) -> None:
    files = sorted((REPO_ROOT / folder).rglob("*.py"))
    assert files, folder
    offending = {
        str(path.relative_to(REPO_ROOT)): sorted(imported_packages(path) & FORBIDDEN[folder])
        for path in files
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_imports_are_found_in_a_module_of_more_than_256_constants(tmp_path: Path) -> None:
    """Past 256 constants or names an instruction's argument needs an EXTENDED_ARG before it."""
    module = tmp_path / "big.py"
    constants = "".join(f"v{n} = {n}\n" for n in range(300))
    module.write_text(constants + "from tools.storefront import Storefront\nimport bench.scale\n")
    assert imported_packages(module) == {"tools", "bench"}
    (tmp_path / "small.py").write_text("from . import sibling\nfrom .pkg import x\nimport os\n")
    assert imported_packages(tmp_path / "small.py") == {"os"}  # relative imports are not packages
