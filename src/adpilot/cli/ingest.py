"""``adpilot ingest …``: read, validate, quarantine and store files of canonical records."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from adpilot.cli._common import console, err_console, print_json
from adpilot.data import columns as C
from adpilot.data.ingest import IngestResult, ingest_file
from adpilot.data.mapping import ColumnMapping
from adpilot.data.schema import SCHEMAS
from adpilot.errors import ConfigError

app = typer.Typer(help="Ingest a file of records into the store (nothing is dropped silently).",
                  no_args_is_help=True)


def _parse_cols(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--col expects CANONICAL=SOURCE, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def show_result(result: IngestResult) -> None:
    table = Table(title=f"ingest {result.kind}: {result.source}", show_header=False)
    for key in ("read", "kept", "quarantined", "inserted", "encoding", "quarantine_file"):
        table.add_row(key, str(getattr(result, key)))
    table.add_row("columns", ", ".join(f"{k}←{v}" for k, v in result.columns.items()))
    console.print(table)
    for reason, n in result.summary()["reasons"].items():
        console.print(f"  [yellow]quarantined[/] {n:>7,} × {reason}")


def _make_command(kind: str):
    def command(
        path: Path = typer.Argument(..., help="CSV, TSV, JSON Lines or Parquet file."),
        id_col: str = typer.Option(None, "--id-col", help="Column with the record id."),
        text_col: str = typer.Option(None, "--text-col", help="Review text column."),
        rating_col: str = typer.Option(None, "--rating-col", help="Rating column (1-5)."),
        user_col: str = typer.Option(None, "--user-col", help="Customer/user id column."),
        product_col: str = typer.Option(None, "--product-col", help="Product id column."),
        time_col: str = typer.Option(None, "--time-col", help="Date/time column."),
        col: list[str] = typer.Option([], "--col", help="Any other mapping, CANONICAL=SOURCE."),
        map_file: Path = typer.Option(None, "--map", help="YAML mapping file (columns: …)."),
        encoding: str = typer.Option("auto", help="Text encoding, or auto (UTF-8/BOM/GBK)."),
        fmt: str = typer.Option(None, "--format", help="csv|tsv|jsonl|parquet (default: suffix)."),
        db: str = typer.Option(None, "--db", envvar="ADPILOT_DB", help="Database URL."),
        quarantine: Path = typer.Option(None, "--quarantine", help="Where to write bad rows."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Validate only; store nothing."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON summary only."),
    ) -> None:
        from adpilot.cli._common import open_store
        from adpilot.config import get_settings

        time_key = {"reviews": C.CREATED_AT, "consents": C.AT}.get(kind, C.TIME)
        id_key = C.EVENT_ID if kind == "events" else C.ID
        flags = {id_key: id_col, C.TEXT: text_col, C.RATING: rating_col, C.USER_ID: user_col,
                 C.PRODUCT_ID: product_col, time_key: time_col, **_parse_cols(col)}
        mapping = (ColumnMapping.from_yaml(map_file) if map_file else ColumnMapping()).merged(flags)
        store = None if dry_run else open_store(db)
        with err_console.status(f"ingesting {path} …", spinner="dots"):
            result = ingest_file(kind, path, mapping=mapping, encoding=encoding, fmt=fmt,
                                 store=store, quarantine_path=quarantine,
                                 quarantine_dir=get_settings().quarantine_dir)
        if as_json:
            print_json(result.summary())
        else:
            show_result(result)

    command.__doc__ = f"Ingest {kind} from PATH."
    return command


for _kind in SCHEMAS:  # consents: also fed to the delivery consent ledger
    app.command(_kind)(_make_command(_kind))
