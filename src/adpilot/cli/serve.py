"""``adpilot serve``: the HTTP API and dashboard with uvicorn."""

from __future__ import annotations

import typer

from adpilot.cli._common import err_console


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB", help="Database URL."),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Serve the API (/v1; docs at /docs with ADPILOT_API_DOCS=true) and the dashboard (/)."""
    from adpilot.deps import require

    uvicorn = require("uvicorn", feature="adpilot serve")
    from adpilot.api.app import create_app
    from adpilot.api.settings import ApiSettings

    settings = ApiSettings(**({"db": db} if db else {}))
    if not (settings.admin_user and settings.admin_password):
        err_console.print("[yellow]ADPILOT_ADMIN_USER/ADPILOT_ADMIN_PASSWORD are not set: log in "
                          "to the dashboard with an API key (adpilot keys create).[/]")
    if settings.session_secret is None:
        err_console.print("[yellow]ADPILOT_SESSION_SECRET is not set: dashboard logins end when "
                          "the server stops.[/]")
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)
