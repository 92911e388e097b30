"""``adpilot datasets …``: the public data sets: list, fetch (data folder, cache or download,
sha256-checked) and load through their loaders."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from adpilot.cli._common import console, err_console, print_json

app = typer.Typer(help="List, fetch and load the public data sets.",
                  no_args_is_help=True)


@app.command("list")
def list_datasets(as_json: bool = typer.Option(False, "--json")) -> None:
    """List the data sets of the manifest: file, size, and where a copy is found."""
    from adpilot.config import get_settings
    from adpilot.datasets_fetch import MANIFEST, DataSources, cached_file, dev_data_dir

    sources = DataSources.from_settings(get_settings())
    base = dev_data_dir(sources)
    rows = []
    for d in MANIFEST.values():
        where = (str(base / d.file) if base and (base / d.file).is_file()
                 else str(cached_file(d, sources) or ""))
        rows.append({"name": d.name, "file": d.file, "bytes": d.size, "present": bool(where),
                     "path": where or None, "source": d.url, "derived": d.derived})
    if as_json:
        print_json(rows)
        return
    table = Table("name", "file", "MB", "present")
    for r in rows:
        table.add_row(r["name"], r["file"], f"{r['bytes'] / 1e6:.1f}",
                      "yes" if r["present"] else "[red]no[/]")
    console.print(table)


def download_progress():
    """A Rich progress display for downloads and the ``progress(file, done, total)`` hook."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    bars = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), console=err_console, transient=True)
    tasks: dict[str, int] = {}

    def update(label: str, done: int, total: int) -> None:
        if label not in tasks:
            tasks[label] = bars.add_task(f"downloading {label}", total=total or None)
        bars.update(tasks[label], completed=done, total=total or None)

    return bars, update


@app.command("fetch")
def fetch(
    names: list[str] = typer.Argument(None, help="Data set names (default: all)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Make the data sets available: from ADPILOT_DATA_DIR, the download cache, or a download
    (ADPILOT_DATASETS_MIRROR, else the source of record), each checked against its sha256."""
    from adpilot.config import get_settings
    from adpilot.datasets_fetch import DataSources, fetch_all

    bars, update = download_progress()
    with bars:
        results = fetch_all(DataSources.from_settings(get_settings()), names or None,
                            progress=update)
    failed = [n for n, r in results.items() if not r["ok"]]
    if as_json:
        print_json(results)
    else:
        for name, r in results.items():
            if r["ok"]:
                console.print(f"[green]ok[/] {name}: {r['path']} ({r['from']})")
            else:
                err_console.print(f"[bold red]failed[/] {name}: {escape(r['error'])}",
                                  soft_wrap=True)
    if failed:
        raise typer.Exit(1)


@app.command("load")
def load(
    name: str = typer.Argument(..., help="Data set name (see `adpilot datasets list`)."),
    path: Path = typer.Option(None, "--path", help="File path (default: in the data folder)."),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB", help="Store canonical tables here."),
    store_it: bool = typer.Option(False, "--store", help="Write canonical tables to the store."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Load a data set through its loader and report read / kept / quarantined."""
    from adpilot.config import get_settings
    from adpilot.data.schema import SCHEMAS
    from adpilot.datasets import load_dataset
    from adpilot.datasets_fetch import DataSources

    with err_console.status(f"loading {name} …"):
        loaded = load_dataset(name, path or DataSources.from_settings(get_settings()))
        summary = loaded.summary()
        if store_it or db:
            from adpilot.cli._common import open_store

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
