"""The repository's shape, as issue 16 set it: layers without cycles, small files, every class abstract
or final, experiments as data, and what a user needs to install and run it."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import blackprop

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "blackprop"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p) for p in SRC.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Every blackprop module ``path`` imports, at any depth (lazy imports in functions count too)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("blackprop"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("blackprop"):
                target = node.module
            else:
                continue
            for alias in node.names:  # `from pkg import submodule` imports the submodule; else the module
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target)
    return {m for m in found if m in MODULES and m != name}


def test_no_import_cycle_between_modules():
    """No module imports, directly or through others (packages' __init__ included), one that imports it."""
    graph = {_module_name(p): _imports(p) for p in SRC.rglob("*.py")}
    assert sum(map(len, graph.values())) > 100, "the import graph was not read"
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_no_source_file_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"split these files (over 400 lines): {long}"


def test_every_class_is_abstract_or_final():
    """Variants are parameters or wrappers, not subclass chains. Exception types stay open: users catch
    them by their base class."""
    open_classes = []
    for info in pkgutil.walk_packages(blackprop.__path__, "blackprop."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if not inspect.isclass(obj) or obj.__module__ != module.__name__ or issubclass(obj, BaseException):
                continue
            if not (inspect.isabstract(obj) or getattr(obj, "__final__", False)):
                open_classes.append(f"{module.__name__}.{name}")
    assert not open_classes, f"mark these @typing.final, or make them abstract: {open_classes}"


def test_experiments_are_data():
    studies = [p.parent.name for p in (ROOT / "experiments").glob("*/spec.toml")]
    assert len(studies) >= 5, studies
    scripts = [str(p) for folder in ("results", "experiments") for p in (ROOT / folder).rglob("*.sh")]
    assert not scripts, f"shell scripts where studies belong: {scripts}"


def test_install_and_readme_for_users():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    readme = (ROOT / "README.md").read_text().splitlines()
    assert len(readme) <= 250, len(readme)
    ci = (ROOT / ".ci" / "run").read_text()
    assert not re.search(r"(^|[\s=\"'])/(work|home|root|Users)/", ci), "a machine-specific path in .ci/run"
    assert "make test" in ci and "make test" in "\n".join(readme)


def test_operator_archive_is_pinned_with_its_checksum():
    from blackprop.data import symbols

    assert symbols.ARCHIVE_URL == ("https://github.com/jdmacleod/handwritten-calculator/raw/"
                                   "fffcb836f45ddac77e313cdec93e17cd4ba857ca/mdas_symbol_dataset/mdas_symbols_v1.zip")
    assert symbols.ARCHIVE_SHA256 == "c779edb082fbe932e02ba129d4a0f7eee5e539873f988b587284d46a947d8791"
