"""``adpilot profile …``: build, query and export user profiles and segments."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from adpilot.cli._common import console, err_console, print_json
from adpilot.errors import ConfigError

if TYPE_CHECKING:
    from adpilot.artifacts import ModelStore
    from adpilot.config import Settings

app = typer.Typer(help="User profiles and segments.", no_args_is_help=True)


@app.command("build")
def build(
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB", help="Database URL."),
    out: Path = typer.Option(None, "--out", help="Also export profiles/segments here."),
    embedder: str = typer.Option("auto", help="minilm | lsa | auto"),
    k: int = typer.Option(None, help="Number of segments (default: chosen by silhouette)."),
    seed: int = typer.Option(0),
    sentiment: str = typer.Option("auto", help="auto | model | rating"),
    executor: str = typer.Option("local", "--executor", help="local | ray"),
    ray_address: str = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS",
                                    help="Join this Ray cluster instead of starting Ray here."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Build profiles and segments from everything in the store."""
    from adpilot.backends.executor import get_executor
    from adpilot.cli._common import open_store
    from adpilot.config import get_settings
    from adpilot.profiling.build import export_profiles
    from adpilot.profiling.scaled import profile_store_with

    store = open_store(db)
    settings = get_settings()
    model_store = _sentiment_models(settings, sentiment) if sentiment != "rating" else None
    opts = {"address": ray_address} if executor == "ray" else {}
    with get_executor(executor, **opts) as ex, err_console.status("profiling …"):
        run = profile_store_with(store, ex, embedder=embedder, k=k, seed=seed,
                                 sentiment=sentiment, model_store=model_store,
                                 precision=settings.sentiment_precision)
    summary = run.summary()
    if out:
        summary["outputs"] = export_profiles(run, out)
    if as_json:
        print_json(summary)
        return
    table = Table("segment", "size", "name", "description", title=f"{len(run.profiles)} profiles")
    for row in run.segments.itertuples():
        table.add_row(row.segment, str(row.size), row.name, row.description)
    console.print(table)


def _sentiment_models(settings: Settings, mode: str) -> ModelStore:
    """The explicit training step before profiling: the polarity models the store lacks, built
    with a progress bar (a minute or two, first run only); the store they load from."""
    from adpilot.artifacts import ModelStore
    from adpilot.cli.progress import progress_reporter
    from adpilot.datasets_fetch import DataSources
    from adpilot.models_fetch import ensure_sentiment_models
    from adpilot.profiling.polarity import state_unbuilt

    models = ModelStore.from_settings(settings)
    with progress_reporter(labels={n: f"building sentiment model {n} (first run only)"
                                   for n in ("polarity/en", "polarity/zh")}) as report:
        status = ensure_sentiment_models(models, sources=DataSources.from_settings(settings),
                                         progress=report)
    state_unbuilt(status, mode)  # auto: the stated fallback, with why; model: refused
    return models


def _age(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    try:
        lo, hi = (int(v) for v in value.split("-", 1))
    except ValueError:
        raise ConfigError(f"--age expects LOW-HIGH such as 25-34, got {value!r}") from None
    return lo, hi


@app.command("query")
def query(
    age: str = typer.Option(None, help="Age range, e.g. 25-34."),
    gender: str = typer.Option(None),
    region: str = typer.Option(None),
    unhappy_with: str = typer.Option(None, help="Aspect: fit quality price comfort style delivery."),
    happy_with: str = typer.Option(None, help="Aspect the user is happy with."),
    bought: str = typer.Option(None, help="Category among the user's top categories."),
    segment: str = typer.Option(None, help="Segment id, e.g. S2."),
    limit: int = typer.Option(20),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Find profiles, e.g. --age 25-34 --unhappy-with fit --bought dresses."""
    from adpilot.cli._common import open_store
    from adpilot.profiling.profiles import query_profiles

    store = open_store(db)
    if not store.has_table("profiles"):
        raise ConfigError("no profiles in the store yet; run `adpilot profile build` first")
    profiles = store.read("profiles")
    hits = query_profiles(profiles, age=_age(age), gender=gender, region=region,
                          unhappy_with=unhappy_with, happy_with=happy_with, bought=bought,
                          segment=segment)
    if as_json:
        print_json({"matched": len(hits), "profiles": hits.head(limit).to_dict("records")})
        return
    table = Table("user", "segment", "summary", title=f"{len(hits)} profiles match")
    for row in hits.head(limit).itertuples():
        table.add_row(str(row.user_id), str(getattr(row, "segment", "")), str(row.summary))
    console.print(table)


@app.command("export")
def export(
    out: Path = typer.Argument(..., help="File to write: .parquet or .csv"),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB"),
) -> None:
    """Export the stored profiles."""
    from adpilot.cli._common import open_store

    store = open_store(db)
    if not store.has_table("profiles"):
        raise ConfigError("no profiles in the store yet; run `adpilot profile build` first")
    profiles = store.read("profiles")
    if out.suffix == ".parquet":
        profiles.to_parquet(out, index=False)
    elif out.suffix == ".csv":
        from adpilot.data.csv_safe import write_csv

        write_csv(profiles, out)
    else:
        raise ConfigError(f"export to .parquet or .csv, not {out.suffix!r}")
    console.print(f"wrote {len(profiles):,} profiles to {out}")
