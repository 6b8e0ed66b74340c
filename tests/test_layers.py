"""Which code may import which: the apps point one way (catalog ← channels ← synclogs), and
omni's foundation imports no app (the two floors: see omni/__init__.py).

Read from the source with `ast`, so an import inside a function counts as much as one at the
top of a module, and so does a dotted path given as text to import_module or import_string.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

from omni import PROJECT_MODULES

ROOT = Path(__file__).resolve().parent.parent
APPS = ("catalog", "channels", "synclogs")
# What each app must not import: the apps that build on it.
APPS_ABOVE = {"catalog": ("channels", "synclogs"), "channels": ("synclogs",), "synclogs": ()}
# Calls that import the module named by their first argument.
IMPORTING_CALLS = frozenset({"import_module", "import_string", "__import__"})


def modules(package: str) -> Iterator[tuple[str, Path]]:
    """Every module of `package` (a top-level folder of the repository), by dotted name."""
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def imports(name: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything module `name` imports, anywhere in its source.
    `from a import b` yields `a.b`, whether b is a module or a name in `a`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(package, node.module, node.level)
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and _called(node.func) in IMPORTING_CALLS:
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield node.lineno, first.value


def _absolute(package: str, module: str | None, level: int) -> str:
    if not level:
        return module or ""
    parts = package.split(".")[: len(package.split(".")) - (level - 1)]
    return ".".join([*parts, module] if module else parts)


def _called(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in packages)


def _offenders(package: str, forbidden: tuple[str, ...], *, only=lambda name: True) -> list[str]:
    """'path:line: module imports name' for each import of a module within `forbidden` by a
    module of `package` for which `only` holds."""
    found = []
    for name, path in modules(package):
        if not only(name):
            continue
        for line, imported in imports(name, path):
            if _within(imported, forbidden):
                found.append(f"{path.relative_to(ROOT)}:{line}: {name} imports {imported}")
    return found


def test_omni_foundation_imports_no_app():
    offenders = _offenders("omni", APPS, only=lambda name: not _within(name, PROJECT_MODULES))
    assert not offenders, (
        "omni's foundation must not import an app (move the code to an app or to the project "
        "floor, omni.PROJECT_MODULES):\n" + "\n".join(offenders)
    )


def test_apps_import_no_app_that_builds_on_them():
    offenders = [line for app in APPS for line in _offenders(app, APPS_ABOVE[app])]
    assert not offenders, (
        "dependencies point one way, catalog ← channels ← synclogs:\n" + "\n".join(offenders)
    )


def test_apps_import_no_project_module_of_omni():
    offenders = [line for app in APPS for line in _offenders(app, PROJECT_MODULES)]
    assert not offenders, (
        "the apps build on omni's foundation only, never on its project floor:\n"
        + "\n".join(offenders)
    )


def test_every_project_module_exists():
    names = {name for name, _path in modules("omni")}
    assert [p for p in PROJECT_MODULES if p not in names] == []


def test_imports_are_found_inside_functions_and_relative_imports(tmp_path):
    # given: a module whose imports hide in a function, behind a relative name and in a call
    path = tmp_path / "sample.py"
    path.write_text(
        "from .bulk import chunks\n"
        "def later():\n"
        "    import synclogs.models\n"
        "    from channels import models\n"
        "    return import_string('catalog.services.stock_apply')\n"
    )
    # when
    found = sorted(imports("omni.sample", path))
    # then
    assert found == [
        (1, "omni.bulk.chunks"),
        (3, "synclogs.models"),
        (4, "channels.models"),
        (5, "catalog.services.stock_apply"),
    ]
