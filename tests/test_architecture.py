"""The dependency rule, read from the source (ast; nothing is imported or run): a backend
(``adpilot.backends``) runs what it is given and never reaches up into a stage of the workflow
(profiling, generation, scoring, targeting, optimisation, tuning). Imports inside functions
count: a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
STAGES = ("profiling", "generation", "scoring", "targeting", "optimization", "tuning")

# Known violations, each to be removed by the issue named; a new one fails the test, and so
# does an entry here that no longer occurs (delete it then).
ALLOWED = {
    # issue 19 (3): the transformers backend asks the tuning registry for the promoted
    # generator when no model_dir is given; the caller should pass the folder in.
    ("adpilot.backends.llm.hf", "adpilot.tuning.registry"),
}


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


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
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
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
