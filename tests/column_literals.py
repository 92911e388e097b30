"""Column names written as string literals where a constant of ``adpilot.data.columns`` is meant
(ast only; nothing is imported or run). Used by ``tests/test_architecture.py``.

A literal counts when its value equals a constant's value and it is used as a column: a
subscript (``df["segment"]``, ``df[["a", "b"]]``, ``df.loc[i, "channel"]``), a ``columns=``,
``on=``, ``by=``, ``left_on=``, ``right_on=``, ``subset=``, ``index=`` or ``values=`` argument,
an argument of ``groupby``/``sort_values``/``set_index``/``drop_duplicates``, or the column of
``DataFrame.insert``. Not counted: ``Literal[...]`` types, dict displays (JSON bodies are built
that way), ``data/columns.py`` itself and ``store/`` (its table definitions)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

KEYWORDS = frozenset({"columns", "on", "by", "left_on", "right_on", "subset", "index", "values"})
METHODS = frozenset({"groupby", "sort_values", "set_index", "drop_duplicates"})
EXEMPT = ("adpilot/data/columns.py", "adpilot/store/")

# (file under src/, literal) -> how many times it may occur. Each is a key of a document that
# is not a table of ours, so the column constants do not name it; exact counts, so a new one
# fails and so does one removed without deleting its entry here.
ALLOWED: dict[tuple[str, str], int] = {
    # ASGI scope and message dicts; pydantic error dicts.
    ("adpilot/api/limits.py", "type"): 5,
    ("adpilot/api/event_models.py", "type"): 1,
    # keyword arguments of a filter call (``age=(lo, hi)``), not a column read.
    ("adpilot/api/routers/data.py", "age"): 1,
    # CLI: fields of a JSON document (report, estimate, summary, send result) it prints.
    ("adpilot/cli/campaign.py", "campaign"): 2,
    ("adpilot/cli/campaign.py", "variant"): 2,
    ("adpilot/cli/campaign.py", "id"): 1,
    ("adpilot/cli/campaign.py", "value"): 1,
    ("adpilot/cli/datasets.py", "source"): 1,
    ("adpilot/cli/score.py", "text"): 1,
    ("adpilot/cli/send.py", "channel"): 1,
    ("adpilot/cli/sentiment.py", "text"): 1,
    ("adpilot/cli/uplift.py", "value"): 3,
    # dashboard: a key of the preview dict it builds itself.
    ("adpilot/dashboard/send_page.py", "variant"): 1,
    # a provider's HTTP reply; a variant's stored copy document; cached completions.
    ("adpilot/delivery/channels/webhook.py", "id"): 1,
    ("adpilot/delivery/run_steps.py", "text"): 1,
    ("adpilot/generation/cache.py", "text"): 1,
    ("adpilot/generation/campaign.py", "text"): 1,
    # internal columns that merely share a name: the exploded row number of aspects, the
    # plan's targeting reason (not the quarantine's ``Q_ROW``/``Q_REASON``).
    ("adpilot/profiling/aspects.py", "row"): 3,
    ("adpilot/targeting/plan.py", "reason"): 1,
    # tuning evaluation: fields of the JSON copies it compares.
    ("adpilot/tuning/evaluate.py", "id"): 4,
    ("adpilot/tuning/evaluate.py", "text"): 4,
}


def column_values(columns_py: Path) -> set[str]:
    """The values of the module-level ``NAME = "..."`` constants of ``columns.py``."""
    out = set()
    for node in ast.parse(columns_py.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)):
            out.add(node.value.value)
    return out


def _strings(node: ast.AST):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
    elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        for e in node.elts:
            yield from _strings(e)
    elif isinstance(node, ast.Dict):  # rename(columns={old: new})
        for e in [*node.keys, *node.values]:
            if e is not None:
                yield from _strings(e)


def _is_literal_type(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "Literal") or (
        isinstance(node, ast.Attribute) and node.attr == "Literal")


def _column_uses(tree: ast.AST):
    for n in ast.walk(tree):
        if isinstance(n, ast.Subscript) and not _is_literal_type(n.value):
            yield from _strings(n.slice)
        elif isinstance(n, ast.Call):
            for kw in n.keywords:
                if kw.arg in KEYWORDS:
                    yield from _strings(kw.value)
            if isinstance(n.func, ast.Attribute):
                if n.func.attr in METHODS:
                    for a in n.args:
                        yield from _strings(a)
                elif n.func.attr == "insert" and len(n.args) == 3:
                    yield from _strings(n.args[1])


def column_literals(src: Path) -> list[tuple[str, int, str]]:
    """(file under ``src``, line, literal) of each column name written as a literal."""
    values = column_values(src / "adpilot" / "data" / "columns.py")
    hits = []
    for path in sorted((src / "adpilot").rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        if rel.startswith(EXEMPT):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        hits += [(rel, s.lineno, s.value) for s in _column_uses(tree) if s.value in values]
    return sorted(hits)


def over_allowance(hits: list[tuple[str, int, str]],
                   allowed: dict[tuple[str, str], int]) -> dict[tuple[str, str], tuple[int, int]]:
    """(file, literal) -> (found, allowed) wherever the two differ."""
    found = Counter((f, v) for f, _, v in hits)
    return {k: (found.get(k, 0), allowed.get(k, 0)) for k in found.keys() | allowed.keys()
            if found.get(k, 0) != allowed.get(k, 0)}
