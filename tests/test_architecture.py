"""The one-way house (docs/architecture.md): no pydarknet module imports from a floor above its own.

Every `import`/`from ... import` of every module counts, including those inside functions
and under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "pydarknet"

# Lowest first; a module belongs to the floor of its longest matching prefix.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("pydarknet.errors", "pydarknet.cfg", "pydarknet.tree", "pydarknet.image", "pydarknet.progress")),
    ("graph", ("pydarknet.layers", "pydarknet.network")),
    ("weights", ("pydarknet.weights",)),
    ("uses", ("pydarknet.infer", "pydarknet.anchors", "pydarknet.data", "pydarknet.train", "pydarknet.eval",
              "pydarknet.convert")),
    ("commands", ("pydarknet.commands", "pydarknet.cli", "pydarknet.__main__", "pydarknet.api", "pydarknet.darknet",
                  "pydarknet")),
]


def floor_of(module: str) -> int:
    """The floor number of a dotted module name (the package `pydarknet` itself is the top)."""
    best, floor = "", None
    for number, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            within = module == prefix or (prefix != "pydarknet" and module.startswith(prefix + "."))  # the package: only itself
            if within and len(prefix) > len(best):
                best, floor = prefix, number
    assert floor is not None, f"{module}: on no floor; add it to FLOORS and docs/architecture.md"
    return floor


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


def imports(module: str, source: str) -> set[str]:
    """The pydarknet modules that `module` (the text `source`; a package is named as its `__init__`'s
    package) imports, relative imports resolved.  `from P import m` of a submodule m counts as
    importing P.m only; of a name defined in P's `__init__`, as importing P."""
    package = module.split(".") if ROOT.joinpath(*module.split(".")).is_dir() else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            name = ".".join(filter(None, [base, node.module]))
            submodules = {f"{name}.{alias.name}" for alias in node.names if _is_module(f"{name}.{alias.name}")}
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(name)
    return {name for name in found if name == "pydarknet" or name.startswith("pydarknet.")}


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """`importer -> imported (floor -> floor)` for every import that climbs."""
    return sorted(f"{src} -> {dst} ({FLOORS[floor_of(src)][0]} -> {FLOORS[floor_of(dst)][0]})"
                  for src, targets in edges.items() for dst in targets if floor_of(dst) > floor_of(src))


def test_no_module_imports_from_a_floor_above():
    edges = {module_name(path): imports(module_name(path), path.read_text()) for path in PACKAGE.rglob("*.py")}
    assert len(edges) > 50
    assert upward_imports(edges) == []


def test_the_check_sees_a_climbing_import():
    """The checker itself: the graph importing the trainer (what network.py once did) is reported."""
    assert upward_imports({"pydarknet.network": {"pydarknet.train.step"}}) == [
        "pydarknet.network -> pydarknet.train.step (graph -> uses)"]
    assert upward_imports({"pydarknet.layers.region": {"pydarknet.tree", "pydarknet.cfg.files"}}) == []
    assert imports("pydarknet.network", "from pydarknet.infer import detect\nfrom . import weights\nimport pydarknet.train.step") == {
        "pydarknet.infer.detect", "pydarknet.weights", "pydarknet.train.step"}
    assert imports("pydarknet.layers.region", "from pydarknet import DarknetError\nfrom .. import tree") == {"pydarknet", "pydarknet.tree"}
    assert imports("pydarknet.layers", "from . import region") == {"pydarknet.layers.region"}  # a package's __init__
    assert floor_of("pydarknet") == len(FLOORS) - 1


@pytest.mark.parametrize("module", ["pydarknet.cfg", "pydarknet.network", "pydarknet.weights"])
def test_importing_a_floor_loads_nothing_above_it(module):
    """At run time too: importing a module (which runs pydarknet/__init__.py first) loads no module of a higher floor."""
    code = f"import sys, {module}; print(' '.join(m for m in sys.modules if m.startswith('pydarknet')))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert module in loaded
    assert [m for m in loaded if floor_of(m) > floor_of(module) and m != "pydarknet"] == []


def test_moved_modules_still_import_with_a_deprecation_warning():
    """Scripts written before the inference modules moved into pydarknet.infer keep working, warned."""
    moved = {"detect": "detect", "inference": "engine", "prefetch": "prefetch", "draw": "draw", "winograd": "winograd",
             "classify": "classify", "hierarchy": "hierarchy"}  # pydarknet.<old> is now pydarknet.infer.<new>
    table = {f"pydarknet.{old}": f"pydarknet.infer.{new}" for old, new in moved.items()}
    code = f"MOVED = {table!r}" + """
import importlib, warnings
from pydarknet import MOVED_MODULES
assert MOVED_MODULES == MOVED, MOVED_MODULES
for old, new in MOVED_MODULES.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert [str(w.message) for w in caught if w.category is DeprecationWarning] == [f"{old} is now {new}"], caught
    moved = importlib.import_module(new)
    names = [n for n in vars(moved) if not n.startswith("_")]
    assert names and all(getattr(module, n) is getattr(moved, n) for n in names), old
from pydarknet.detect import detect_batch
from pydarknet.infer.detect import detect_batch as moved
assert detect_batch is moved
from pydarknet.inference import *
assert InferenceModel.__module__ == "pydarknet.infer.engine"
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
