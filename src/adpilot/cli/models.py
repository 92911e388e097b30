"""``adpilot models list|show|promote|register|fetch``: the model registry, and the default
models built from the public data sets."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from adpilot.cli._common import console, model_store, print_json

app = typer.Typer(help="Registered models (tuned generators, sentiment, attractiveness).",
                  no_args_is_help=True)


def _registry():
    from adpilot.tuning.registry import ModelRegistry

    reg = ModelRegistry(model_store())
    reg.discover()  # the sentiment and attractiveness models in the cache
    return reg


@app.command("list")
def list_models(
    kind: str = typer.Option(None, "--kind", help="generator | sentiment | attractiveness"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Every registered model with its version, base, data hash and headline metrics."""
    entries = _registry().list(kind)
    if as_json:
        print_json([e.as_dict() for e in entries])
        return
    table = Table("model", "kind", "promoted", "base", "data hash", "created")
    for e in entries:
        table.add_row(e.ref, e.kind, "yes" if e.promoted else "", (e.base_model or "")[:40],
                      e.data_hash or "", e.created_at[:19])
    console.print(table)


@app.command("show")
def show(ref: str = typer.Argument(..., help="NAME:VERSION, NAME (latest) or a path.")) -> None:
    """One model's full record (config and metrics)."""
    print_json(_registry().get(ref).as_dict())


@app.command("promote")
def promote(ref: str = typer.Argument(..., help="NAME:VERSION, NAME (latest) or a path."),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Make this model the one its kind serves (generators: `adpilot generate --backend
    transformers` without --model)."""
    entry = _registry().promote(ref)
    if as_json:
        print_json(entry.as_dict())
    else:
        console.print(f"promoted {entry.ref} ({entry.kind}): {entry.path}")


@app.command("register")
def register(model_dir: Path = typer.Argument(..., help="Directory written by adpilot tune copy."),
             name: str = typer.Option(None, "--name"),
             as_json: bool = typer.Option(False, "--json")) -> None:
    """Register a tuned model (tune copy does this unless --no-register)."""
    from adpilot.tuning.registry import register_tuned

    entry = register_tuned(model_dir, name=name, registry=_registry())
    if as_json:
        print_json(entry.as_dict())
    else:
        console.print(f"registered {entry.ref}: {entry.path}")


@app.command("fetch")
def fetch(parts: list[str] = typer.Argument(None, help="sentiment, complaint, fluency, "
                                                       "attractiveness (default: all)."),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Build the default models from the public data sets (fetched with checksums: see
    `adpilot datasets fetch`); models already in the cache are kept."""
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from adpilot.artifacts import ModelStore
    from adpilot.cli._common import err_console
    from adpilot.cli.datasets import download_progress
    from adpilot.cli.progress import EtaColumn
    from adpilot.config import get_settings
    from adpilot.datasets_fetch import DataSources
    from adpilot.models_fetch import fetch_models

    settings = get_settings()
    downloads, on_download = download_progress()
    bars = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                    EtaColumn(), console=err_console, transient=True)
    tasks: dict[str, int] = {}

    def on_progress(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = bars.add_task(f"training {name}", total=total, eta=True)
        bars.update(tasks[name], completed=done, total=total)

    with downloads, bars:
        results = fetch_models(parts or None, progress=on_progress, download_progress=on_download,
                               store=ModelStore.from_settings(settings),
                               sources=DataSources.from_settings(settings),
                               log=lambda msg: bars.console.print(f"[dim]{msg}[/]"))
    if as_json:
        print_json(results)
    else:
        for part, r in results.items():
            if r["ok"]:
                console.print(f"[green]ok[/] {part} ({r['seconds']} s): {', '.join(r['models'])}")
            else:
                err_console.print(f"[bold red]failed[/] {part}: {escape(r['error'])}",
                                  highlight=False, soft_wrap=True)
    if any(not r["ok"] for r in results.values()):
        raise typer.Exit(1)
