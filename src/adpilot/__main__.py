"""``python -m adpilot`` runs the CLI."""

from adpilot.cli import main

main()
