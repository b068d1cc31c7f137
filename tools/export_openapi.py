"""Write the generated API documents: docs/openapi.json and docs/event.schema.json.

    python -m tools.export_openapi          # (re)write both files
    python -m tools.export_openapi --check  # exit 1 when a committed file differs from the code

Both are generated from lambdas/streamrec_core (schema.py, openapi.py); never edit them by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from streamrec_core.openapi import build_openapi
from streamrec_core.schema import json_schema

REPO_ROOT = Path(__file__).resolve().parent.parent

DOCS = REPO_ROOT / "docs"
OPENAPI_PATH = DOCS / "openapi.json"
EVENT_SCHEMA_PATH = DOCS / "event.schema.json"


def render(document: dict[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, trailing newline (diff-friendly)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated() -> dict[Path, str]:
    return {OPENAPI_PATH: render(build_openapi()), EVENT_SCHEMA_PATH: render(json_schema())}


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail when the committed files are stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generated().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {_shown(path)}")
    if stale:
        names = ", ".join(_shown(p) for p in stale)
        print(f"stale: {names}; run `make openapi` (python -m tools.export_openapi)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
