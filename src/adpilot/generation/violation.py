"""A guardrail's result (:class:`Violation`) and its text form in reports and CSV cells."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One reason the copy fails: which guardrail (``check``), what to change (``reason``) and,
    where the check can tell, where: ``span`` is the ``(start, end)`` character offsets in the
    text of field ``field``. ``str()`` gives the ``"check: reason"`` text reports show."""

    check: str
    reason: str
    span: tuple[int, int] | None = None
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.check}: {self.reason}"


SEPARATOR = "; "  # between violations in one CSV cell


def join_violations(violations: Iterable[Violation | str]) -> str:
    """The violations as one ``"; "``-joined string (a CSV cell, a plan column)."""
    return SEPARATOR.join(str(v) for v in violations)


def parse_violations(text: object) -> list[Violation]:
    """Violations back from :func:`join_violations`' string (empty, None or NaN: none); the
    positions do not survive the round trip."""
    if not isinstance(text, str) or not text:
        return []
    out = []
    for part in text.split(SEPARATOR):
        if part:
            check, sep, reason = part.partition(": ")
            out.append(Violation(check, reason) if sep else Violation("", part))
    return out
