"""HTTP API (FastAPI) over the library; build it with :func:`create_app`. Needs the ``api`` extra."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # fastapi is optional: import it only when an app is built
    from adpilot.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from adpilot.api.app import create_app

        return create_app
    raise AttributeError(name)
