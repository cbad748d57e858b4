"""The architecture as a rule the suite checks: a layer imports only the layers below it,
and no module imports another module's underscore names (``../shared/DESIGN.md``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "shuffle_kit"

# lowest first; modules of one row may import each other
LAYERS = [
    {"errors", "_lazy"},
    {"byte_sizes", "limits"},
    {"defaults", "partition_sizes", "lifecycle"},
    {"stores"},
    {"frames"},
    {"codecs"},
    {"io"},
    {"kernels"},
    {"shuffling"},
    {"partitioning"},
    {"dask"},
    {"testing", "partd"},
    {"cli", "__main__", "__init__"},
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _home(path: Path, package: Path = PACKAGE) -> str:
    """The top-level room of a module: ``io`` for shuffle_kit/io/readers.py."""
    parts = path.relative_to(package).with_suffix("").parts
    return parts[0] if len(parts) > 1 or parts[0] in RANK else "__init__"


def _imports(path: Path) -> list[tuple[Path, str]]:
    """(module imported, name) for every relative import of ``path``; ``from . import m``
    imports the module ``m``."""
    package = path.parent
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.ImportFrom) and node.level):
            continue
        base = package
        for _ in range(node.level - 1):
            base = base.parent
        target = base.joinpath(*node.module.split(".")) if node.module else base
        for alias in node.names:
            sub = target / alias.name
            if sub.is_dir() or sub.with_suffix(".py").exists():
                out.append((sub.with_suffix(".py") if not sub.is_dir() else sub / "__init__.py", alias.name))
            else:
                out.append((target.with_suffix(".py") if not target.is_dir() else target / "__init__.py", alias.name))
    return out


def _check_layers(path: Path, package: Path = PACKAGE) -> None:
    here = _home(path, package)
    assert here in RANK, f"{here} has no layer: add it to LAYERS"
    for target, _ in _imports(path):
        there = _home(target, package)
        assert there in RANK, f"{there} has no layer: add it to LAYERS"
        assert RANK[there] <= RANK[here], f"{path.relative_to(package)} ({here}) imports {there}, a layer above it"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_the_layers(path):
    _check_layers(path)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_another_modules_underscore_names(path):
    for target, name in _imports(path):
        if name.startswith("_") and not name.startswith("__"):
            raise AssertionError(f"{path.relative_to(PACKAGE)} imports {name} from {target.relative_to(PACKAGE)}")


def test_the_rule_catches_an_upward_import(tmp_path):
    # the check itself can fail: a stores module importing the shuffle is refused
    fake = tmp_path / "shuffle_kit"
    (fake / "stores").mkdir(parents=True)
    (fake / "shuffling").mkdir()
    (fake / "shuffling" / "api.py").write_text("")
    bad = fake / "stores" / "bad.py"
    bad.write_text("from ..shuffling.api import shuffle\n")
    with pytest.raises(AssertionError, match="imports shuffling, a layer above it"):
        _check_layers(bad, fake)
