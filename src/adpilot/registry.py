"""One shape for every registry of pluggable components (LLM backends, executors, delivery
channels, embedders, uplift learners, policies).

A :class:`Registry` maps a name to a factory (usually a class). It is a ``dict``, so code that
lists or looks up components reads it like one; on top it gives the registration decorator, the
one error form for an unknown name, and lazy loading of the built-in modules (which run their
``@register`` decorators when imported, keeping heavy libraries out of ``import adpilot``).
``tests/test_contracts.py`` runs the same checks over whatever a registry holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from adpilot.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


class Registry(dict[str, F], Generic[F]):
    """``name → factory`` for components of one kind, e.g. ``Registry("uplift learner")``.

    ``load`` imports the modules that register the built-in components; it runs once, before
    the first lookup or listing.
    """

    def __init__(self, what: str, initial: dict[str, F] | None = None, *,
                 load: Callable[[], None] | None = None) -> None:
        super().__init__(initial or {})
        self.what = what
        self._load = load

    def _loaded(self) -> Registry[F]:
        if self._load is not None:
            load, self._load = self._load, None
            load()
        return self

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator: make ``factory`` available under ``name`` (a later one replaces it)."""
        def deco(factory: F) -> F:
            self[name] = factory
            return factory
        return deco

    def unregister(self, name: str) -> None:
        """Forget ``name`` (tests that register their own components)."""
        self.pop(name, None)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._loaded())

    def factory(self, name: str) -> F:
        """The factory registered as ``name``; a :class:`ConfigError` naming the choices otherwise."""
        self._loaded()
        if name not in self:
            raise ConfigError(f"unknown {self.what} {name!r}; expected one of {', '.join(self.names())}")
        return self[name]

    def build(self, name: str, /, **options: Any) -> Any:
        """The component ``name`` built with its constructor ``options``."""
        return self.factory(name)(**options)
