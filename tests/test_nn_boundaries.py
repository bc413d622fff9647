"""pathviz.nn holds torch modules and their training loops only: no module under pathviz/nn imports
the cohort-level layers (pathviz.risk, nor the cohort, genomics, jobs or store wrappers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

NN = Path(__file__).resolve().parents[1] / "pathviz" / "nn"
FORBIDDEN = ("pathviz.risk", "pathviz.cohort", "pathviz.genomics", "pathviz.jobs", "pathviz.store")


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` / ``from ... import`` statement in ``path`` names (anywhere in the
    file, including function bodies), relative imports resolved against ``pathviz.nn``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = ["pathviz", "nn"][: 2 - (node.level - 1)] if node.level <= 2 else []
                base = ".".join(parts + ([base] if base else []))
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}
    return names


def test_helper_sees_nested_and_relative_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from pathviz.risk.coxnet import x\nfrom ..risk import y\nimport pathviz.risk\n")
    assert {"pathviz.risk.coxnet", "pathviz.risk", "pathviz.risk.y"} <= imported_modules(f)


@pytest.mark.parametrize("path", sorted(NN.glob("*.py")), ids=lambda p: p.name)
def test_nn_does_not_import_cohort_level_code(path):
    bad = sorted(m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert not bad, f"{path.name} imports {bad}"


def test_nn_exports_torch_modules_only():
    import inspect

    import torch

    import pathviz.nn as nn

    for name in nn.__all__:
        obj = getattr(nn, name)
        if inspect.isclass(obj):
            assert issubclass(obj, torch.nn.Module) or name in ("TrainConfig", "TrainResult"), name
    assert not hasattr(nn, "CoxPASNetModel")
