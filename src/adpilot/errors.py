"""The exception tree: every error adpilot raises on purpose derives from :class:`AdpilotError`
and is defined here, in this one module (the old homes re-export theirs).

Each class carries what a shell needs to answer it: ``exit_code`` for the CLI and
``http_status`` / ``error_code`` for the API, so shells map an error by its type and never by its
name or message. Shells catch ``AdpilotError`` and show its message without a traceback; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any


class AdpilotError(Exception):
    """Root of all errors raised by adpilot on purpose."""

    exit_code = 1
    http_status = 400
    error_code = "bad_request"


# --- the caller's input and settings --------------------------------------------------------
class InputError(AdpilotError):
    """A file or argument given by the user cannot be used at all (missing, empty, malformed)."""

    exit_code = 2
    http_status = 422
    error_code = "invalid_input"

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


class EventsRefused(InputError):
    """A ``POST /v1/events`` body cannot be accepted: ``loc`` names where
    (``["body", "events", 3, "user_id"]``); ``details`` lists every problem found."""

    error_code = "invalid_request"

    def __init__(self, loc: list, message: str, details: list[dict] | None = None) -> None:
        super().__init__(message)
        self.loc, self.message = loc, message
        self.details = details or [{"loc": [str(p) for p in loc], "message": message}]

    def text(self) -> str:
        """The one-line message of the 422 answer."""
        return f"invalid request: {'.'.join(str(p) for p in self.loc)}: {self.message}"


class BodyTooLarge(AdpilotError):
    """A request body is over the size limit (raised inside the body-limit middleware)."""

    http_status = 413
    error_code = "too_large"

    def __init__(self, message: str = "request body too large") -> None:
        super().__init__(message)


class ConfigError(AdpilotError):
    """A setting, mapping file or parameter is invalid."""

    exit_code = 2
    http_status = 400
    error_code = "bad_request"


class NotFoundError(ConfigError):
    """A named resource (campaign, profile, segment, job) does not exist."""

    http_status = 404
    error_code = "not_found"


# --- what is not there yet or not installed --------------------------------------------------
class NotReadyError(AdpilotError):
    """The data the request needs has not been built yet (HTTP 409), e.g. no profiles."""

    http_status = 409
    error_code = "not_ready"


class MissingDependencyError(AdpilotError):
    """An optional dependency is not installed; the message says which extra to install."""

    exit_code = 3
    http_status = 501
    error_code = "not_available"


class NotFittedError(AdpilotError, ValueError):
    """A model was used before ``fit`` (or ``load``)."""

    http_status = 409
    error_code = "not_fitted"


class ArtifactMismatchError(AdpilotError):
    """A saved model or artifact does not match what the caller expects (version, config, data)."""

    http_status = 409
    error_code = "artifact_mismatch"


# --- data sets (adpilot.datasets_fetch) -------------------------------------------------------
class DatasetUnavailableError(InputError):
    """No copy of a data set file can be had here (no data folder, no cache, no download).
    ``short`` is a one-line reason for fallback notes; the message lists everything tried."""

    def __init__(self, message: str, *, short: str | None = None) -> None:
        self.short = short or message
        super().__init__(message)


class ChecksumError(InputError):
    """A downloaded file's sha256 differs from the manifest's."""


# --- backends: the store, language models, delivery -----------------------------------------
class StoreError(AdpilotError):
    """The database cannot be reached or written."""

    http_status = 503
    error_code = "store_unavailable"


class LLMError(AdpilotError):
    """A language-model backend failed (server unreachable, bad reply, model missing)."""

    http_status = 502
    error_code = "model_error"


class StructuredOutputError(LLMError):
    """The model's output never validated; carries every attempt and the total token usage.

    ``attempts`` is a list of :class:`adpilot.backends.llm.base.Attempt` and ``usage`` a
    :class:`~adpilot.backends.llm.base.Usage` (typed loosely here so this module imports nothing).
    """

    def __init__(self, message: str, *, attempts: list[Any], usage: Any) -> None:
        self.attempts = attempts
        self.usage = usage
        last = attempts[-1].error if attempts else "no attempt"
        super().__init__(f"{message} after {len(attempts)} attempt(s), {usage.total_tokens} tokens; "
                         f"last error: {last}")


class DeliveryError(AdpilotError):
    """A channel cannot be built or used at all (bad settings, unreachable configuration)."""


# --- dashboard sessions (adpilot.dashboard.auth) ---------------------------------------------
class LoginRequired(AdpilotError):
    """No valid session: the dashboard sends the browser to the login page."""

    http_status = 401
    error_code = "unauthorized"


class CsrfError(AdpilotError):
    """A form came back without the session's CSRF token."""

    http_status = 403
    error_code = "forbidden"


class ScopeError(AdpilotError):
    """The session's scope does not allow the action."""

    http_status = 403
    error_code = "forbidden"
