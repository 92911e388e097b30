"""``adpilot send``: deliver a stored campaign (or dry-run it) through a configured provider."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from adpilot.cli._common import console, err_console, print_json


def send(
    campaign: str = typer.Option(..., "--campaign", help="Campaign id (adpilot campaign list)."),
    audience: str = typer.Option("all", "--audience",
                                 help="all | segment:ID | a file of customer ids."),
    channel: str = typer.Option(None, "--channel", help="email | sms | push (default: the one "
                                "the campaign's variants name, else email)."),
    provider: str = typer.Option("file", "--provider",
                                 help="file (an outbox folder) | smtp | webhook."),
    outbox: Path = typer.Option(None, "--outbox", help="Outbox folder of the file provider and of "
                                "a dry run's preview (default: ADPILOT_OUTBOX_DIR or home/outbox)."),
    limit: int = typer.Option(None, "--limit", min=0, help="Only the first N of the audience."),
    workers: int = typer.Option(4, "--workers", min=1, max=64, help="Parallel provider calls."),
    rate: float = typer.Option(None, "--rate", min=0.1, help="At most this many messages per second."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Decide each message's outcome, send "
                                 "nothing, write nothing to the ledger."),
    db: str = typer.Option(None, "--db", envvar="ADPILOT_DB"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Send a campaign's approved variants to its audience: consent, suppression, frequency caps,
    quiet hours and control groups applied; each message at most once (the send ledger)."""
    from adpilot.cli._common import open_store
    from adpilot.config import get_settings
    from adpilot.delivery.campaign_send import send_campaign
    from adpilot.delivery.from_settings import channel_from, rules_from
    from adpilot.delivery.pacing import TokenBucket

    settings = get_settings()
    store = open_store(db)
    folder = outbox or settings.outbox_dir or settings.home / "outbox"
    chan = None if dry_run and provider == "file" else channel_from(provider, settings, outbox=folder)
    bucket = TokenBucket(rate) if rate else None
    try:
        with _Bar(as_json) as on_progress:
            result = send_campaign(store, campaign, chan, audience=audience, kind=channel,
                                   limit=limit, dry_run=dry_run, rules=rules_from(settings),
                                   workers=workers, rate_limit=bucket,
                                   outbox=folder if dry_run else None, on_progress=on_progress)
    finally:
        if chan is not None:
            chan.close()
        store.dispose()
    doc = result.to_dict()
    if as_json:
        print_json(doc)
        return
    table = Table("outcome", "messages", title=f"{campaign} on {doc['channel']}"
                  + (" (dry run)" if dry_run else ""))
    table.add_row("planned", f"{doc['planned']:,}")
    table.add_row("would send" if dry_run else "sent",
                  f"{doc['would_send'] if dry_run else doc['sent']:,}")
    for kind in ("skipped", "deferred"):
        for reason, n in doc[kind].items():
            table.add_row(f"{kind}: {reason}", f"{n:,}")
    table.add_row("failed", f"{doc['failed']:,}")
    table.add_row("unknown", f"{doc['unknown']:,}")
    console.print(table)
    if doc.get("outbox"):
        console.print(f"[bold]preview:[/] {doc['outbox']}")


class _Bar:
    """A progress bar over the messages due (on stderr; hidden for --json)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __enter__(self):
        from adpilot.cli.progress import LineProgress, bar_columns

        if not err_console.is_terminal:
            lines = LineProgress(err_console)
            self._progress = None
            return lambda done, total: lines("sending", done, total)
        from rich.progress import Progress

        self._progress = Progress(*bar_columns(), console=err_console, transient=self.quiet)
        self._progress.start()
        task = self._progress.add_task("sending", total=None, eta=True)
        return lambda done, total: self._progress.update(task, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
