"""The house rules of issue 12 hold for the whole of src/: modules <= 500 lines, functions <= 80
lines and <= 10 parameters (typer commands excepted), no import of spinv.training or spinv.cli
from nn/, learned/, operators/, variational/, data/ (tools/check_structure.py)."""

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "check_structure.py"


def test_src_meets_the_structural_limits():
    spec = importlib.util.spec_from_file_location("check_structure", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.findings() == []
