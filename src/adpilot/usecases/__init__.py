"""Use cases: what a user asks adpilot to do, as library functions the shells call alike.

The dependency rule (checked by ``tests/test_architecture.py``): the shells — ``adpilot.cli``
(Typer), ``adpilot.api`` (FastAPI) and ``adpilot.dashboard`` (HTML pages) — translate input and
output and call use cases here or stages directly; a shell never imports another shell. Two
compositions are the exceptions, both because one process serves both shells: ``adpilot.api.app``
mounts the dashboard, and the dashboard runs on the API's application state (``adpilot.api``'s
``security``, ``services``, ``jobs``, ``keys`` modules, never its ``routers``). ``adpilot serve``
starts that server (named in the test's allow-list); ``adpilot keys`` manages its keys through
the library's key store, :mod:`adpilot.store.keys`.

Use cases take what they need as arguments (services, a generator, values): they never read
settings themselves.
"""
