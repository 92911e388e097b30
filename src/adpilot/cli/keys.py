"""``adpilot keys create|list|revoke``: API keys for the HTTP API and dashboard."""

from __future__ import annotations

import typer
from rich.table import Table

from adpilot.cli._common import console, err_console, print_json

app = typer.Typer(help="API keys (stored hashed; a key is shown once, when created).",
                  no_args_is_help=True)


def _store(db: str | None):
    from adpilot.cli._common import open_store

    return open_store(db)


@app.command("create")
def create(
    scope: str = typer.Option("read", "--scope", help="read | write | admin"),
    name: str = typer.Option(None, "--name", help="A label to recognise the key by."),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create a key and print it once; only its salted hash is stored."""
    from adpilot.store.keys import create_key

    key, info = create_key(_store(db), scope, name)
    if as_json:
        print_json({"key": key, "id": info.id, "scope": info.scope, "name": info.name})
        return
    err_console.print(f"key {info.id} ({info.scope}) created; store it now, it is not shown again:")
    print(key)


@app.command("list")
def list_(
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List keys (never the secrets)."""
    from adpilot.data import columns as C
    from adpilot.store.keys import list_keys

    rows = list_keys(_store(db))
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "scope", "created", "revoked")
    for r in rows:
        table.add_row(r[C.ID], r["name"] or "", r["scope"], str(r[C.CREATED_AT])[:19],
                      str(r["revoked_at"])[:19] if r["revoked_at"] else "")
    console.print(table)


@app.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., help="The key's id (from `adpilot keys list`)."),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB"),
) -> None:
    """Revoke a key; it stops working within seconds."""
    from adpilot.store.keys import revoke_key

    revoke_key(_store(db), key_id)
    console.print(f"revoked {key_id}")
