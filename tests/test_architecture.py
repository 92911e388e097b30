"""The dependency rule, read from the source (ast; nothing is imported or run). Imports inside
functions count: a lazy import is still a dependency.

1. A backend (``adpilot.backends``) runs what it is given and never reaches up into a stage of
   the workflow (profiling, generation, scoring, targeting, optimisation, tuning).
2. A shell never imports another shell: ``adpilot.cli`` imports neither ``adpilot.api`` nor
   ``adpilot.dashboard``; ``adpilot.dashboard`` imports neither ``adpilot.api.routers`` nor
   ``adpilot.cli`` (it runs on the API's application state, see :mod:`adpilot.usecases`);
   ``adpilot.api`` never imports ``adpilot.cli``. What shells share is a use case in
   ``adpilot.usecases`` or a stage.
3. The library (everything but the shells and ``adpilot.config``) never calls
   ``get_settings()``: settings are read by a shell and passed in as values."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
STAGES = ("profiling", "generation", "scoring", "targeting", "optimization", "tuning")

# Known violations, each to be removed by the issue named; a new one fails the test, and so
# does an entry here that no longer occurs (delete it then).
ALLOWED: set[tuple[str, str]] = set()


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_from(node: ast.ImportFrom, package: str) -> str:
    """The absolute module of ``from <module> import …`` written in ``package`` (relative resolved)."""
    if not node.level:
        return node.module or ""
    anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def imports_of(path: Path, src: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved; ``from a import b`` gives
    ``a`` and ``a.b`` (``b`` may be a submodule)."""
    module = module_name(path, src)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = imported_from(node, package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def backend_violations(src: Path) -> set[tuple[str, str]]:
    """``(backend module, stage module)`` for every import of a stage by a backend."""
    out = set()
    for path in sorted((src / "adpilot" / "backends").rglob("*.py")):
        for name in imports_of(path, src):
            parts = name.split(".")
            if len(parts) > 1 and parts[0] == "adpilot" and parts[1] in STAGES:
                out.add((module_name(path, src), ".".join(parts[:3])))
    return _collapse(out)


def _collapse(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Keep the most specific name per (module, stage package): ``from adpilot.tuning import
    registry`` and ``from adpilot.tuning.registry import x`` both read ``adpilot.tuning.registry``."""
    keep = set()
    for mod, name in pairs:
        if not any(m == mod and other != name and other.startswith(name + ".")
                   for m, other in pairs):
            keep.add((mod, name))
    return keep


def test_no_backend_imports_a_stage():
    backends = list((SRC / "adpilot" / "backends").rglob("*.py"))
    assert len(backends) > 10  # the walk really read the backends
    found = backend_violations(SRC)
    new = found - ALLOWED
    assert not new, ("backends must not import stages (pass what they need in instead): "
                     + ", ".join(f"{m} imports {n}" for m, n in sorted(new)))
    stale = ALLOWED - found
    assert not stale, f"fixed, remove from ALLOWED: {sorted(stale)}"


def test_the_walk_sees_every_import_form(tmp_path):
    """A planted backend that reaches into stages in each way Python allows is caught."""
    pkg = tmp_path / "adpilot" / "backends" / "fake"
    pkg.mkdir(parents=True)
    for folder in (tmp_path / "adpilot", tmp_path / "adpilot" / "backends", pkg):
        (folder / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import adpilot.profiling.steps\n")
    (pkg / "b.py").write_text("def f():\n    from adpilot.scoring.batch import ScoreStage\n")
    (pkg / "c.py").write_text("from ...generation import batch\n")
    (pkg / "d.py").write_text("from adpilot import tuning\nimport adpilot.backends.llm\n")
    (pkg / "e.py").write_text("from . import a\nfrom .. import llm\n")  # inside backends: fine
    assert backend_violations(tmp_path) == {
        ("adpilot.backends.fake.a", "adpilot.profiling.steps"),
        ("adpilot.backends.fake.b", "adpilot.scoring.batch"),
        ("adpilot.backends.fake.c", "adpilot.generation.batch"),
        ("adpilot.backends.fake.d", "adpilot.tuning"),
    }


# --- 2. no shell imports another shell ------------------------------------------------------

SHELLS = ("cli", "api", "dashboard")
# (importing shell, forbidden prefix): what each shell must not import
FORBIDDEN = {"cli": ("adpilot.api", "adpilot.dashboard"),
             "dashboard": ("adpilot.api.routers", "adpilot.cli"),
             "api": ("adpilot.cli",)}
SHELL_ALLOWED = {
    # `adpilot serve` starts the server: composing the app is what the command is for.
    ("adpilot.cli.serve", "adpilot.api.app"),
    ("adpilot.cli.serve", "adpilot.api.settings"),
}


def shell_violations(src: Path) -> set[tuple[str, str]]:
    """``(shell module, imported module)`` for every import one shell must not make."""
    out = set()
    for shell in SHELLS:
        for path in sorted((src / "adpilot" / shell).rglob("*.py")):
            for name in imports_of(path, src):
                if any(name == p or name.startswith(p + ".") for p in FORBIDDEN[shell]):
                    out.add((module_name(path, src), _as_module(name, src)))
    return _collapse_prefixes(out)


def _as_module(name: str, src: Path) -> str:
    """The longest prefix of ``name`` that is a module or package in ``src``
    (``adpilot.api.keys.create_key`` is the function of ``adpilot.api.keys``)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        base = src.joinpath(*parts[:i])
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return ".".join(parts[:i])
    return name


def _collapse_prefixes(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Keep the most specific imported name per module (``from adpilot.api import keys``
    gives ``adpilot.api`` and ``adpilot.api.keys``: keep the latter)."""
    return {(mod, name) for mod, name in pairs
            if not any(m == mod and other.startswith(name + ".") for m, other in pairs)}


def test_no_shell_imports_another_shell():
    assert len(list((SRC / "adpilot" / "cli").rglob("*.py"))) > 10
    found = shell_violations(SRC)
    new = found - SHELL_ALLOWED
    assert not new, ("shells must not import each other (move the shared code to "
                     "adpilot.usecases or a stage): "
                     + ", ".join(f"{m} imports {n}" for m, n in sorted(new)))
    stale = SHELL_ALLOWED - found
    assert not stale, f"fixed, remove from SHELL_ALLOWED: {sorted(stale)}"


def test_the_shell_walk_catches_each_direction(tmp_path):
    """Planted shells that import each other in each forbidden way are caught; what the
    rule permits (the dashboard on the API's state, the API mounting the dashboard) is not."""
    root = tmp_path / "adpilot"
    for shell in (*SHELLS, "api/routers"):
        (root / shell).mkdir(parents=True, exist_ok=True)
        (root / shell / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    for module in ("dashboard/charts", "dashboard/routes", "cli/generate", "cli/_common",
                   "api/routers/copy", "api/services"):
        (root / f"{module}.py").write_text("")
    (root / "cli" / "a.py").write_text("def f():\n    from adpilot.dashboard.charts import x\n")
    (root / "cli" / "b.py").write_text("from adpilot import api\n")
    (root / "dashboard" / "c.py").write_text("from ..api.routers import copy\n"
                                             "from adpilot.api.services import records\n")
    (root / "dashboard" / "d.py").write_text("import adpilot.cli.generate\n")
    (root / "api" / "e.py").write_text("from adpilot.cli._common import console\n"
                                       "from adpilot.dashboard.routes import mount\n")
    assert shell_violations(tmp_path) == {
        ("adpilot.cli.a", "adpilot.dashboard.charts"),
        ("adpilot.cli.b", "adpilot.api"),
        ("adpilot.dashboard.c", "adpilot.api.routers.copy"),
        ("adpilot.dashboard.d", "adpilot.cli.generate"),
        ("adpilot.api.e", "adpilot.cli._common"),
    }


# --- 3. the library reads no settings -------------------------------------------------------

NOT_LIBRARY = ("adpilot.cli", "adpilot.api", "adpilot.dashboard",
               "adpilot.config",  # defines the settings
               "adpilot.__main__")  # `python -m adpilot`: the CLI's entry point
# Library modules allowed to read settings themselves: none (issue 19: a ModelStore, the data
# sources and paths are built from settings by the shell and passed in). A new reader fails
# the test, and so would an entry here that no longer occurs.
SETTINGS_ALLOWED: set[str] = set()


def settings_readers(src: Path) -> set[str]:
    """Library modules that call ``get_settings()`` (by name or as an attribute)."""
    out = set()
    for path in sorted((src / "adpilot").rglob("*.py")):
        module = module_name(path, src)
        if any(module == n or module.startswith(n + ".") for n in NOT_LIBRARY):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name == "get_settings":
                    out.add(module)
    return out


def test_the_library_reads_no_settings():
    found = settings_readers(SRC)
    new = found - SETTINGS_ALLOWED
    assert not new, ("library modules must not call get_settings() (take the value as an "
                     "argument; the shell reads the settings): " + ", ".join(sorted(new)))
    stale = SETTINGS_ALLOWED - found
    assert not stale, f"fixed, remove from SETTINGS_ALLOWED: {sorted(stale)}"


def test_the_settings_walk_sees_both_call_forms(tmp_path):
    root = tmp_path / "adpilot"
    (root / "cli").mkdir(parents=True)
    (root / "lib.py").write_text("from adpilot.config import get_settings\n"
                                 "def f():\n    return get_settings().models_dir\n")
    (root / "other.py").write_text("from adpilot import config\nX = config.get_settings()\n")
    (root / "quiet.py").write_text("from adpilot.config import Settings\n"
                                   "def f(s: Settings):\n    return s.models_dir\n")
    (root / "cli" / "run.py").write_text("from adpilot.config import get_settings\n"
                                         "get_settings()\n")
    (root / "config.py").write_text("def get_settings():\n    return get_settings()\n")
    assert settings_readers(tmp_path) == {"adpilot.lib", "adpilot.other"}


# --- 4. no import circles -------------------------------------------------------------------
# Module-level imports only: an import inside a function runs after every module is loaded, so it
# cannot close a circle at import time (the lazy imports of heavy libraries are such imports).

def module_level_imports(path: Path, src: Path, modules: set[str]) -> set[str]:
    """The adpilot modules ``path`` imports when it is imported (``from a import b`` reads the
    submodule ``a.b`` when there is one, else the package ``a``)."""
    module = module_name(path, src)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for stmt in (node.body if isinstance(node, ast.Try) else [node]):
            if isinstance(stmt, ast.Import):
                found.update(alias.name for alias in stmt.names)
            elif isinstance(stmt, ast.ImportFrom):
                base = imported_from(stmt, package)
                subs = {f"{base}.{a.name}" for a in stmt.names} & modules
                found.update(subs or {base})
    return (found & modules) - {module}


def import_circles(src: Path) -> list[list[str]]:
    """Every set of modules that import each other in a circle (strongly connected, Tarjan)."""
    paths = {module_name(p, src): p for p in (src / "adpilot").rglob("*.py")}
    graph = {m: module_level_imports(p, src, set(paths)) for m, p in paths.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while (w := stack.pop()) != v:
                part.append(w)
            if part:
                circles.append(sorted([v, *part]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_import_circles():
    assert not import_circles(SRC), "modules that import each other in a circle"


def test_the_circle_walk_finds_a_planted_circle(tmp_path):
    pkg = tmp_path / "adpilot" / "stage"
    pkg.mkdir(parents=True)
    (tmp_path / "adpilot" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from adpilot.stage import b\n")
    (pkg / "b.py").write_text("from .c import x\n")
    (pkg / "c.py").write_text("import adpilot.stage.a\nx = 1\n")
    (pkg / "d.py").write_text("def f():\n    from adpilot.stage import a\n")  # lazy: no circle
    assert import_circles(tmp_path) == [["adpilot.stage.a", "adpilot.stage.b", "adpilot.stage.c"]]


# --- 5. no god-modules ----------------------------------------------------------------------

def test_no_source_file_over_500_lines():
    sizes = {str(p.relative_to(SRC)): len(p.read_text(encoding="utf-8").splitlines())
             for p in (SRC / "adpilot").rglob("*.py")}
    assert len(sizes) > 150
    assert not {k: n for k, n in sizes.items() if n > 500}, "split these by responsibility"


# --- 6. column names from data/columns (issue 19) -------------------------------------------

def test_columns_are_named_by_the_constants():
    from column_literals import ALLOWED as COLUMNS_ALLOWED
    from column_literals import column_literals, over_allowance

    hits = column_literals(SRC)
    assert len(hits) == sum(COLUMNS_ALLOWED.values())  # only the listed document keys remain
    assert not over_allowance(hits, COLUMNS_ALLOWED), (
        "(file, literal): (found, allowed) — use adpilot.data.columns (C.X), or list a key "
        "that is no column in tests/column_literals.py")


def test_the_column_walk_catches_a_planted_literal(tmp_path):
    from column_literals import column_literals, over_allowance

    (tmp_path / "adpilot" / "data").mkdir(parents=True)
    (tmp_path / "adpilot" / "store").mkdir()
    (tmp_path / "adpilot" / "data" / "columns.py").write_text('SEGMENT = "segment"\nTEXT = "text"\n')
    (tmp_path / "adpilot" / "store" / "t.py").write_text('x = df["segment"]\n')  # table definitions
    (tmp_path / "adpilot" / "stage.py").write_text(
        "from typing import Literal\nfrom adpilot.data import columns as C\n"
        'Mode = Literal["segment", "user"]\n'          # a type, not a column
        'doc = {"segment": 1, "text": 2}\n'            # a dict display: a JSON body
        "a = df[C.SEGMENT]\n"                          # the constant: fine
        'b = df["segment"]\n'
        'c = df.groupby(["segment", "other"]).size()\n'
        'd = df.drop(columns="text")\n'
        'e = df.loc[0, "text"]\n')
    hits = column_literals(tmp_path)
    assert hits == [("adpilot/stage.py", 6, "segment"), ("adpilot/stage.py", 7, "segment"),
                    ("adpilot/stage.py", 8, "text"), ("adpilot/stage.py", 9, "text")]
    assert over_allowance(hits, {("adpilot/stage.py", "segment"): 2}) == {
        ("adpilot/stage.py", "text"): (2, 0)}
    assert over_allowance(hits[:1], {("adpilot/stage.py", "segment"): 2}) == {
        ("adpilot/stage.py", "segment"): (1, 2)}  # a stale allowance fails too
