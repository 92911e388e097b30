"""The saved form of a sentiment model: ``config.json`` (the parameters that define it),
``meta.json`` (kind, format version, adpilot version, classes, ensemble weight and offsets,
training-data and config hashes, metrics), ``tfidf.joblib`` and the other half's file; and the
checks that a folder is what the caller expects before it is loaded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adpilot.errors import ArtifactMismatchError
from adpilot.profiling.sentiment.labels import TASKS

if TYPE_CHECKING:
    from adpilot.profiling.sentiment.model import SentimentModel

FORMAT_VERSION = 1


def config_sha256(config_text: str) -> str:
    """The hash ``meta.json`` keeps of ``config.json``'s text."""
    return hashlib.sha256(config_text.encode()).hexdigest()


def read_meta(d: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    """``(meta, config, config text)`` of a saved folder, or :class:`ArtifactMismatchError`."""
    meta_path, config_path = d / "meta.json", d / "config.json"
    if not meta_path.is_file() or not config_path.is_file():
        raise ArtifactMismatchError(f"{d}: not a saved SentimentModel (meta.json or "
                                    f"config.json is missing)")
    try:
        meta = json.loads(meta_path.read_text())
        config_text = config_path.read_text()
        return meta, json.loads(config_text), config_text
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactMismatchError(f"{d}: unreadable metadata ({exc})") from exc


def mismatches(cls: type[SentimentModel], d: Path, meta: dict[str, Any], config: dict[str, Any],
               config_text: str, *, task: str | None, lang: str | None) -> list[str]:
    """Why the saved folder ``d`` cannot be loaded as ``cls`` (its ``_KIND``,
    ``_TRANSFORMER_FILE`` and ``_CONFIG_KEYS``) for ``task``/``lang``; empty when it can."""
    reasons = []
    if meta.get("kind") != cls._KIND:
        reasons.append(f"kind is {meta.get('kind')!r}, not {cls._KIND!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        reasons.append(f"format version {meta.get('format_version')!r} != {FORMAT_VERSION}")
    if config_sha256(config_text) != meta.get("config_sha256"):
        reasons.append("config.json does not match the config it was saved with")
    if config.get("task") not in TASKS or meta.get("classes") != list(
            TASKS.get(config.get("task"), ())):
        reasons.append(f"classes {meta.get('classes')} do not fit task {config.get('task')!r}")
    if task is not None and config.get("task") != task:
        reasons.append(f"it is a {config.get('task')!r} model, not {task!r}")
    if lang is not None and meta.get("lang") != lang:
        reasons.append(f"its language is {meta.get('lang')!r}, not {lang!r}")
    if meta.get("has_transformer") and not (d / cls._TRANSFORMER_FILE).exists():
        reasons.append(f"{cls._TRANSFORMER_FILE} is missing")
    if not (d / "tfidf.joblib").is_file():
        reasons.append("tfidf.joblib is missing")
    unknown = set(config) - set(cls._CONFIG_KEYS)
    if unknown:
        reasons.append(f"unknown config keys {sorted(unknown)} (saved by another version?)")
    return reasons
