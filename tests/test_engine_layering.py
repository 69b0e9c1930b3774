"""The engine is the bottom layer: nothing in selfalign/engine/ imports the stages (or anything
that uses an engine). Read from the source, so a lazy import inside a function counts too."""

import ast
from pathlib import Path

import selfalign.engine

ENGINE_DIR = Path(selfalign.engine.__file__).parent
UPPER_LAYERS = ("selfalign.stages", "selfalign.generate", "selfalign.eval", "selfalign.train",
                "selfalign.prompts", "selfalign.constitution", "selfalign.cli")


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or "")
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom):  # relative: resolve against selfalign.engine
            names.append("selfalign.engine." + (node.module or ""))
    return names


def test_engine_modules_import_no_upper_layer():
    modules = sorted(ENGINE_DIR.glob("*.py"))
    assert len(modules) >= 6  # __init__, base, default_model and the three backends
    offending = {path.name: name for path in modules for name in imported_modules(path)
                 if name.startswith(UPPER_LAYERS)}
    assert offending == {}


def test_the_check_sees_a_lazy_import_inside_a_function(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from selfalign.stages.judge import OPTIONS\n")
    assert "selfalign.stages.judge" in imported_modules(sample)
