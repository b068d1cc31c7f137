"""The packages a source file imports, read from its bytecode.

Not with `ast.parse`: before CPython 3.11.8 it shares state between threads (gh-106905), and the e2e
pipeline's threads run in the same test process (the alarms' metric math, tracebacks), so a parse here
could fail with "SystemError: AST constructor recursion depth mismatch". `compile` builds no AST objects.
"""

from __future__ import annotations

import dis
import types
from pathlib import Path

# Bytecode entries between LOAD_CONST and IMPORT_NAME that are not operations of their own: an
# EXTENDED_ARG precedes an instruction whose argument is above 255 (a module of more than 256 constants).
_NOT_OPERATIONS = frozenset({"EXTENDED_ARG", "CACHE", "NOP"})


def imported_packages(path: Path) -> set[str]:
    """The top-level package of every absolute import in `path`, wherever the statement is (functions,
    classes, conditionals included)."""
    names: set[str] = set()
    codes = [compile(path.read_text(encoding="utf-8"), str(path), "exec")]
    while codes:
        code = codes.pop()
        constants: list[object] = []  # IMPORT_NAME follows LOAD_CONST level, LOAD_CONST fromlist
        for instruction in dis.get_instructions(code):
            if instruction.opname in _NOT_OPERATIONS:
                continue
            if instruction.opname == "LOAD_CONST":
                constants.append(instruction.argval)
            elif instruction.opname == "IMPORT_NAME":
                if len(constants) >= 2 and constants[-2] == 0 and instruction.argval:
                    names.add(str(instruction.argval).split(".")[0])
                constants.clear()
            else:
                constants.clear()
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return names
