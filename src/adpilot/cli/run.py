"""``adpilot run`` (the main job) and ``adpilot status``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from adpilot.cli._common import console, err_console, print_json


def run(
    out: Path = typer.Option(Path("adpilot-out"), "--out", help="Folder for report and outputs."),
    data: Path = typer.Option(None, "--data",
                              help="Folder with customers/products/reviews/transactions/events "
                                   "files (default: the built-in sample)."),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB",
                           help="Database URL (default: SQLite in the output folder)."),
    sentiment: str = typer.Option("auto", help="auto: the fine-tuned models (trained on first "
                                               "use); rating: the star rating only."),
    llm: str = typer.Option("llamacpp", help="LLM backend for the copy step (llamacpp, openai, "
                                             "transformers), or none."),
    executor: str = typer.Option("local", "--executor", help="Where the heavy profiling stages "
                                 "run: local (in-process batches) or ray (Ray Data actors)."),
    ray_address: str = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS",
                                    help="Join this Ray cluster (e.g. auto, ray://head:10001) "
                                         "instead of starting Ray on this machine."),
    approve: bool = typer.Option(False, "--approve", help="Approve the planned variants that "
                                 "passed every guardrail (delivery stays a dry run; adpilot send "
                                 "sends)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary only."),
) -> None:
    """Run the end-to-end job on the built-in sample (or --data) and write an HTML report."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from adpilot.cli.progress import EtaColumn, LineProgress
    from adpilot.config import get_settings
    from adpilot.pipeline import STEPS
    from adpilot.pipeline import run as run_pipeline

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(),
                  EtaColumn(), console=err_console, transient=as_json) as progress:
        task = progress.add_task("adpilot run", total=len(STEPS))

        def on_step(name: str) -> None:
            progress.update(task, description=f"adpilot run: {name}",
                            completed=[n for n, _ in STEPS].index(name))

        sub: dict[str, int] = {}

        lines = None if err_console.is_terminal else LineProgress(err_console)  # logs, pipes

        def on_progress(name: str, done: int, total: int) -> None:
            # sentiment steps report "polarity/en"; the copy models a readable name
            what = name if " " in name else f"sentiment model {name}"
            label = f"building {what} (first run only)"
            if lines is not None:
                lines(label, done, total)
            if name not in sub:
                sub[name] = progress.add_task(label, total=total, eta=True)
            progress.update(sub[name], completed=done, total=total)

        result = run_pipeline(out, db_url=db, data_dir=data, on_step=on_step,
                              sentiment=sentiment, llm=llm, progress=on_progress,
                              executor=executor, ray_address=ray_address, approve=approve,
                              settings=get_settings())
        progress.update(task, completed=len(STEPS), description="adpilot run: done")
    if as_json:
        print_json(result.summary())
        return
    table = Table("stage", "seconds", title="adpilot run")
    for name, secs in result.timings.items():
        table.add_row(name, f"{secs:.2f}")
    console.print(table)
    for kind, s in result.ingests.items():
        console.print(f"  {kind:<13} read {s['read']:>5}  kept {s['kept']:>5}  "
                      f"quarantined {s['quarantined']:>3}")
    if result.delivery:
        d = result.delivery
        reasons = ", ".join(f"{r} {n}" for r, n in {**d["skipped"], **d["deferred"]}.items())
        console.print(f"  delivery (dry run): {d['planned']} planned, {d['would_send']} would be "
                      f"sent; {reasons or 'none held back'}")
    console.print(f"[bold green]report:[/] {result.report.resolve()}")
    console.print(f"[bold]database:[/] {result.db_url}")
    for name, path in result.outputs.items():
        console.print(f"[bold]{name}:[/] {path}")


def status(
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB", help="Database URL."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Row counts per table in the store."""
    from adpilot.cli._common import open_store
    from adpilot.usecases.data_overview import DataService

    store = open_store(db)
    counts = DataService(store).counts()
    if as_json:
        print_json({"db": store.safe_url, "counts": counts})
        return
    table = Table("table", "rows", title=store.safe_url)
    for kind, n in counts.items():
        table.add_row(kind, f"{n:,}")
    console.print(table)
