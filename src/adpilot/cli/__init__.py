"""The ``adpilot`` command line: a thin shell over the library (Typer + Rich)."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from adpilot.cli import campaign as _campaign
from adpilot.cli import datasets as _datasets
from adpilot.cli import generate as _generate
from adpilot.cli import generate_batch as _generate_batch
from adpilot.cli import ingest as _ingest
from adpilot.cli import keys as _keys
from adpilot.cli import models as _models
from adpilot.cli import profile as _profile
from adpilot.cli import recommend as _recommend
from adpilot.cli import run as _run
from adpilot.cli import score as _score
from adpilot.cli import send as _send
from adpilot.cli import sentiment as _sentiment
from adpilot.cli import serve as _serve
from adpilot.cli import tune as _tune
from adpilot.cli import uplift as _uplift
from adpilot.cli._common import err_console
from adpilot.errors import AdpilotError

app = typer.Typer(
    name="adpilot",
    help="Precision marketing with language models: profiles, copy, scoring, targeting, feedback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(_ingest.app, name="ingest")
app.add_typer(_datasets.app, name="datasets")
app.add_typer(_profile.app, name="profile")
app.add_typer(_sentiment.app, name="sentiment")
app.add_typer(_uplift.app, name="uplift")
app.add_typer(_recommend.app, name="recommend")
app.add_typer(_campaign.app, name="campaign")
app.add_typer(_campaign.events_app, name="events")
app.add_typer(_campaign.ope_app, name="ope")
app.add_typer(_score.attract_app, name="attract")
app.command("score")(_score.score)
app.command("generate")(_generate.generate)
app.command("generate-batch")(_generate_batch.generate_batch)
app.add_typer(_keys.app, name="keys")
app.add_typer(_tune.app, name="tune")
app.add_typer(_models.app, name="models")
app.command("serve")(_serve.serve)
app.command("send")(_send.send)
app.command("run")(_run.run)
app.command("status")(_run.status)


def main(argv: list[str] | None = None) -> int:
    """Entry point: adpilot errors become one red line and an exit code, never a traceback.

    With ``argv`` (tests) the exit code is returned; as the console script it exits.
    """
    try:
        app(args=argv, prog_name="adpilot")  # standalone: handles usage errors and --help
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except AdpilotError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        code = 130
    if argv is None:
        sys.exit(code)
    return code
