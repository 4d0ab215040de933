"""The package's shape, checked: imports run one way, no module hides a cycle, none grows too big, and
every module that carries logic has a test module of its own, in the mirrored place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "template" / "pipeline"
TESTS = ROOT / "tests" / "pipeline"
MAX_LINES = 400
# Lowest first: a module may import from its own layer and those below it, never above.
LAYERS = ("errors", "compat", "model", "data", "reading", "config", "job", "launch", "evaluate")
PARAMETER_TABLE = (
    "a table of Parameter values; checked by tests/pipeline/launch/test_parameters.py and tests/test_metadata.py"
)
# Modules without logic of their own to test, and why.
NO_TEST_NEEDED = {
    "job/tags.py": "names of tagged outputs, constants only",
    "data/decoders/base.py": "the Decoded type and the Decoder protocol; exercised by every decoder's test",
    "launch/parameters/input.py": PARAMETER_TABLE,
    "launch/parameters/model.py": PARAMETER_TABLE,
    "launch/parameters/output.py": PARAMETER_TABLE,
    "launch/parameters/advanced.py": PARAMETER_TABLE,
    "launch/parameters/udf.py": PARAMETER_TABLE,
    "launch/parameters/statistics.py": PARAMETER_TABLE,
}


def modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


def layer_of(module: str) -> int:
    """The layer of a dotted module name under `pipeline` (the package itself is the lowest)."""
    parts = module.split(".")
    if len(parts) < 2:
        return -1
    top = parts[1]
    if top == "errors":
        return 0
    return LAYERS.index(top) if top in LAYERS else -1


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def pipeline_imports(tree: ast.AST) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for each import of the package's own modules."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom) and child.module and child.module.split(".")[0] == "pipeline":
                names = [child.module] + [f"{child.module}.{alias.name}" for alias in child.names]
                for name in names if child.module == "pipeline" else [child.module]:
                    found.append((name, child.lineno, in_function))
            elif isinstance(child, ast.Import):
                found.extend(
                    (alias.name, child.lineno, in_function)
                    for alias in child.names
                    if alias.name.startswith("pipeline")
                )
            visit(child, nested)

    visit(tree, False)
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_imports_run_downwards_only_and_at_the_top(path: Path):
    importer = module_name(path)
    for imported, line, in_function in pipeline_imports(ast.parse(path.read_text())):
        where = f"{path.relative_to(ROOT)}:{line} imports {imported}"
        assert not in_function, f"{where} inside a function (no import may dodge a cycle)"
        if imported == "pipeline":
            continue
        assert layer_of(imported) <= layer_of(importer), f"{where}, a layer above {importer}"


@pytest.mark.parametrize("path", modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(path: Path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_every_module_with_logic_has_a_test_module_in_the_mirrored_place():
    missing = []
    for path in modules():
        relative = path.relative_to(PACKAGE)
        if path.name == "__init__.py" and len(ast.parse(path.read_text()).body) <= 1:
            continue  # a docstring alone
        if str(relative) in NO_TEST_NEEDED:
            continue
        name = relative.parent.name if path.name == "__init__.py" else path.stem
        folder = relative.parent.parent if path.name == "__init__.py" else relative.parent
        if not (TESTS / folder / f"test_{name}.py").is_file():
            missing.append(str(TESTS.relative_to(ROOT) / folder / f"test_{name}.py"))
    assert not missing, f"modules without tests: {missing}"


def test_the_layer_check_sees_an_upward_import():
    tree = ast.parse(
        "from pipeline.launch.options import PARAMETERS\n\ndef f():\n    from pipeline.job import metrics\n"
    )
    imports = pipeline_imports(tree)
    assert imports == [("pipeline.launch.options", 1, False), ("pipeline.job", 4, True)]
    assert layer_of("pipeline.launch.options") > layer_of("pipeline.data.rows") > layer_of("pipeline.model.files")
