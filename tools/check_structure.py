"""Report the structural limits of issue 12 over ``src/``: modules over 500 lines, functions over
80 lines, functions with more than 10 parameters (except the typer commands in ``cli/``, whose
parameters *are* the command's option list), and imports of ``spinv.training`` / ``spinv.cli``
from the lower layers (``nn``, ``learned``, ``operators``, ``variational``, ``data``).

Usage: ``python tools/check_structure.py [--strict]`` (``--strict``: exit 1 on any finding).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "spinv"
MAX_MODULE_LINES, MAX_FUNCTION_LINES, MAX_PARAMETERS = 500, 80, 10
LOWER_LAYERS = ("nn", "learned", "operators", "variational", "data")
FORBIDDEN = ("spinv.training", "spinv.cli")


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    a = node.args
    names = [*a.posonlyargs, *a.args, *a.kwonlyargs]
    return len([n for n in names if n.arg not in ("self", "cls")])


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def findings(root: Path = ROOT) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        text = path.read_text()
        n_lines = text.count("\n") + 1
        if n_lines > MAX_MODULE_LINES:
            out.append(f"{rel}: module has {n_lines} lines (> {MAX_MODULE_LINES})")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    out.append(f"{rel}:{node.lineno}: {node.name} has {length} lines "
                               f"(> {MAX_FUNCTION_LINES})")
                if _parameters(node) > MAX_PARAMETERS and rel.parts[1] != "cli":
                    out.append(f"{rel}:{node.lineno}: {node.name} has {_parameters(node)} "
                               f"parameters (> {MAX_PARAMETERS})")
        layer = rel.parts[1] if len(rel.parts) > 2 else ""
        if layer in LOWER_LAYERS:
            for lineno, module in _imports(tree):
                if module.startswith(FORBIDDEN):
                    out.append(f"{rel}:{lineno}: the {layer}/ layer imports {module}")
    return out


def main(argv: list[str]) -> int:
    found = findings()
    print("\n".join(found) if found else "no findings")
    print(f"{len(found)} finding(s)")
    return 1 if ("--strict" in argv and found) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
