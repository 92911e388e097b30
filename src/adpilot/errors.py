"""The exception tree: every error adpilot raises on purpose derives from :class:`AdpilotError`.

Shells (CLI, API) catch ``AdpilotError`` and show its message without a traceback; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations


class AdpilotError(Exception):
    """Root of all errors raised by adpilot on purpose."""

    exit_code = 1


class InputError(AdpilotError):
    """A file or argument given by the user cannot be used at all (missing, empty, malformed)."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class MissingColumnError(InputError):
    """A required column is absent; names the column asked for and the columns found."""

    def __init__(self, column: str, found: list[str], *, path: str | None = None,
                 role: str | None = None) -> None:
        self.column = column
        self.found = list(found)
        what = f"the {role} column {column!r}" if role else f"column {column!r}"
        shown = ", ".join(repr(c) for c in found[:40]) + (" …" if len(found) > 40 else "")
        super().__init__(f"{what} is missing; columns found: {shown}", path=path)


class ConfigError(AdpilotError):
    """A setting, mapping file or parameter is invalid."""

    exit_code = 2


class NotFoundError(ConfigError):
    """A named resource (campaign, profile, segment, job) does not exist."""


class MissingDependencyError(AdpilotError):
    """An optional dependency is not installed; the message says which extra to install."""

    exit_code = 3


class NotFittedError(AdpilotError, ValueError):
    """A model was used before ``fit`` (or ``load``)."""


class ArtifactMismatchError(AdpilotError):
    """A saved model or artifact does not match what the caller expects (version, config, data)."""
