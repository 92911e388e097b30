"""``adpilot datasets …``: the public data sets in ../shared/data, loaded through their loaders."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from adpilot.cli._common import console, err_console, print_json

app = typer.Typer(help="List and load the public data sets (../shared/data).",
                  no_args_is_help=True)


@app.command("list")
def list_datasets(as_json: bool = typer.Option(False, "--json")) -> None:
    """List the registered data sets and where they are expected."""
    from adpilot.datasets import DATASETS, data_dir

    try:
        base = data_dir()
    except Exception:
        base = None
    rows = [{"name": d.name, "file": d.file,
             "present": bool(base and (base / d.file).exists())} for d in DATASETS.values()]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "file", "present")
    for r in rows:
        table.add_row(r["name"], r["file"], "yes" if r["present"] else "[red]no[/]")
    console.print(table)


@app.command("load")
def load(
    name: str = typer.Argument(..., help="Data set name (see `adpilot datasets list`)."),
    path: Path = typer.Option(None, "--path", help="File path (default: in the data folder)."),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB", help="Store canonical tables here."),
    store_it: bool = typer.Option(False, "--store", help="Write canonical tables to the store."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Load a data set through its loader and report read / kept / quarantined."""
    from adpilot.data.schema import SCHEMAS
    from adpilot.datasets import load_dataset

    with err_console.status(f"loading {name} …"):
        loaded = load_dataset(name, path)
        summary = loaded.summary()
        if store_it or db:
            from adpilot.store import open_store

            store = open_store(db)
            summary["inserted"] = {
                kind: store.upsert(kind, frame) for kind, frame in loaded.tables.items()
                if kind in SCHEMAS  # canonical tables; experiment tables stay in files
            }
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"{name}: {summary['source']}", show_header=False)
    for key in ("read", "kept", "quarantined", "tables"):
        table.add_row(key, str(summary[key]))
    console.print(table)
    for reason, n in summary["reasons"].items():
        console.print(f"  [yellow]quarantined[/] {n:>7,} × {reason}")
