"""The import map of the package: what each package may import, no cycle, and the docs' map
saying the same. Imports are read from the source, so a lazy import inside a function counts."""

import ast
import re
from pathlib import Path

import pytest

import selfalign

ROOT = Path(selfalign.__file__).parent
DOCS_MAP = ROOT.parent / "docs" / "development" / "setup.md"
BASICS = "selfalign"  # errors, records, atomic, stable_hash, quiet, reject_tally, hub_card,
# yaml_lines, schema_check, settings_schema, option_groups, word_diff
CLI = "selfalign.cli"  # assembles every package's click commands: the one module that may import
# anything. A package's command modules (`commands.py`, `*_commands.py`) are the click layer of
# that package and of its subpackages (their groups nest the same way): they may import what any
# package of that tree may, and no more, so a command cannot reach above its own package.

# package → the packages its modules may import (besides its own modules and the basics).
MAY_IMPORT = {
    BASICS: set(),
    "selfalign.store": set(),
    "selfalign.prompts": set(),
    "selfalign.engine": set(),
    "selfalign.checks": {"selfalign.prompts"},
    "selfalign.constitution": {"selfalign.prompts", "selfalign.checks"},
    "selfalign.stages": {"selfalign.constitution", "selfalign.engine", "selfalign.checks"},
    "selfalign.generate": {"selfalign.checks", "selfalign.store", "selfalign.prompts", "selfalign.engine",
                           "selfalign.constitution", "selfalign.stages"},
    "selfalign.author": {"selfalign.checks", "selfalign.prompts", "selfalign.engine", "selfalign.constitution",
                         "selfalign.stages", "selfalign.generate"},
    "selfalign.generate.ray": {"selfalign.generate", "selfalign.store", "selfalign.engine"},
    "selfalign.train": {"selfalign.checks", "selfalign.store", "selfalign.engine"},
    "selfalign.eval": {"selfalign.checks", "selfalign.prompts", "selfalign.engine", "selfalign.constitution",
                       "selfalign.stages"},
    "selfalign.eval.judge": {"selfalign.checks", "selfalign.eval", "selfalign.store", "selfalign.prompts",
                             "selfalign.engine", "selfalign.constitution", "selfalign.stages"},
    "selfalign.train.rl": {"selfalign.checks", "selfalign.train", "selfalign.store", "selfalign.prompts",
                           "selfalign.engine", "selfalign.constitution", "selfalign.stages",
                           "selfalign.eval"},
    "selfalign.label": {"selfalign.checks", "selfalign.store", "selfalign.eval", "selfalign.eval.judge",
                        "selfalign.constitution", "selfalign.stages"},
}


def module_files(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """The selfalign modules `path` imports; `from pkg import sub` is the module pkg.sub."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            candidates = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules
                          else node.module for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}: relative import; selfalign imports by full name")
        else:
            continue
        for name in candidates:
            while name not in modules and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in modules:
                names.add(name)
    return names


def package_of(module: str, modules: dict[str, Path]) -> str:
    if modules[module].name == "__init__.py":
        return module
    return module.rsplit(".", 1)[0]


def is_command_module(module: str) -> bool:
    return module.rsplit(".", 1)[-1].endswith("commands")


def commands_may_import(package: str) -> set[str]:
    """What the command modules of `package` may import: the package, its subpackages, and what
    any of them may import."""
    tree = [p for p in MAY_IMPORT if p == package or p.startswith(f"{package}.")]
    return set(tree).union(*(MAY_IMPORT[p] for p in tree))


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = module_files(root)
    return {name: imported_modules(path, modules) - {name} for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def forbidden_imports(graph: dict[str, set[str]], modules: dict[str, Path]) -> list[str]:
    wrong = []
    for module, imported in sorted(graph.items()):
        if module == CLI:
            continue
        here = package_of(module, modules)
        assert here in MAY_IMPORT, f"package {here} is missing from MAY_IMPORT and the docs' map"
        allowed = commands_may_import(here) if is_command_module(module) else MAY_IMPORT[here]
        for name in sorted(imported):
            there = package_of(name, modules)
            if there not in (here, BASICS) and there not in allowed:
                wrong.append(f"{module} imports {name}")
    return wrong


def test_no_module_imports_a_package_it_may_not():
    modules = module_files()
    assert len(modules) > 100
    assert forbidden_imports(import_graph(), modules) == []


def test_there_is_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_allowed_imports_themselves_form_no_circle():
    assert cycles({package: set(allowed) for package, allowed in MAY_IMPORT.items()}) == []


def test_the_docs_map_names_each_package_and_what_it_may_import():
    """docs/development/setup.md has a table row per package: `name` | owns | may import."""
    rows = {}
    for line in DOCS_MAP.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`selfalign"):
            rows[cells[0].strip("`/")] = set(re.findall(r"`([a-z_.]+)/?`", cells[2]))
    assert rows == MAY_IMPORT


# -- the checks can fail -------------------------------------------------------------------------

def write_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "selfalign"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_lazy_import_inside_a_function_is_seen(tmp_path):
    root = write_package(tmp_path, {"__init__.py": "", "engine/__init__.py": "",
                                    "engine/base.py": "def f():\n    from selfalign.stages.judge import OPTIONS\n",
                                    "stages/__init__.py": "", "stages/judge.py": "OPTIONS = 1\n"})
    modules = module_files(root)
    graph = import_graph(root)
    assert graph["selfalign.engine.base"] == {"selfalign.stages.judge"}
    assert forbidden_imports(graph, modules) == [
        "selfalign.engine.base imports selfalign.stages.judge"]


def test_a_command_module_may_not_import_above_its_package_even_inside_a_function(tmp_path):
    root = write_package(tmp_path, {
        "__init__.py": "", "cli.py": "from selfalign.label import app\n",
        "checks/__init__.py": "",
        "checks/commands.py": "def score():\n    from selfalign.constitution.loader import load\n",
        "constitution/__init__.py": "", "constitution/loader.py": "def load():\n    pass\n",
        "train/__init__.py": "", "train/rl/__init__.py": "", "train/rl/run.py": "",
        "train/commands.py": "def rl():\n    from selfalign.train.rl import run\n",
        "label/__init__.py": "", "label/app.py": "",
        "label/commands.py": "from selfalign.constitution import loader\n",
        "label/export_commands.py": "from selfalign.train import commands\n"})
    assert forbidden_imports(import_graph(root), module_files(root)) == [
        "selfalign.checks.commands imports selfalign.constitution.loader",
        "selfalign.label.export_commands imports selfalign.train.commands"]


def test_a_cycle_through_a_package_init_is_found(tmp_path):
    root = write_package(tmp_path, {"__init__.py": "", "store/__init__.py": "from selfalign.store import b\n",
                                    "store/a.py": "", "store/b.py": "import selfalign.store\n"})
    assert cycles(import_graph(root)) == [["selfalign.store", "selfalign.store.b"]]
