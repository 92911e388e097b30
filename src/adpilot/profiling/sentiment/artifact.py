"""The saved form of a sentiment model: ``config.json`` (the parameters that define it),
``meta.json`` (kind, format version, adpilot version, classes, ensemble weight and offsets,
training-data and config hashes, metrics), ``tfidf.joblib`` and the other half's file; and the
checks that a folder is what the caller expects before it is loaded. The folder also carries
the common ``adpilot-artifact.json`` (:mod:`adpilot.artifacts`, kind ``sentiment``), written from
``meta.json`` by :func:`write_document`; a folder saved without it is migrated when loaded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adpilot import artifacts
from adpilot.errors import ArtifactMismatchError
from adpilot.profiling.sentiment.labels import TASKS

if TYPE_CHECKING:
    from adpilot.profiling.sentiment.model import SentimentModel

FORMAT_VERSION = 1
KIND = "sentiment"  # the kind in adpilot-artifact.json (meta.json's kind names the class)


def config_sha256(config_text: str) -> str:
    """The hash ``meta.json`` keeps of ``config.json``'s text."""
    return hashlib.sha256(config_text.encode()).hexdigest()


def read_meta(d: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    """``(meta, config, config text)`` of a saved folder, or :class:`ArtifactMismatchError`."""
    artifacts.check(d, KIND, FORMAT_VERSION)
    meta_path, config_path = d / "meta.json", d / "config.json"
    if not meta_path.is_file() or not config_path.is_file():
        raise ArtifactMismatchError(f"{d}: not a saved SentimentModel (meta.json or "
                                    f"config.json is missing)")
    try:
        meta = json.loads(meta_path.read_text())
        config_text = config_path.read_text()
        config = json.loads(config_text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactMismatchError(f"{d}: unreadable metadata ({exc})") from exc
    if not (d / artifacts.METADATA_FILE).is_file():  # saved before the document: migrate
        try:
            write_document(d, meta, config)
        except OSError as exc:  # a read-only cache still loads
            artifacts.log.info("%s: could not write %s (%s)", d, artifacts.METADATA_FILE, exc)
    return meta, config, config_text


def write_document(d: Path, meta: dict[str, Any] | None = None,
                   config: dict[str, Any] | None = None) -> artifacts.ArtifactMeta:
    """Write ``d/adpilot-artifact.json`` from the folder's ``meta.json`` and ``config.json``."""
    meta = meta if meta is not None else json.loads((d / "meta.json").read_text())
    config = config if config is not None else json.loads((d / "config.json").read_text())
    base = ("MiniLM (all-MiniLM-L6-v2) + TF-IDF" if meta.get("has_transformer") else "TF-IDF")
    return artifacts.save_metadata(
        d, KIND, FORMAT_VERSION, config=config, data_hash=meta.get("data_sha256"),
        metrics=meta.get("metrics", {}), created_at=meta.get("saved_at"),
        extra={"model_kind": meta.get("kind"), "task": meta.get("task"),
               "lang": meta.get("lang"), "n_train": meta.get("n_train"),
               "meta_config_sha256": meta.get("config_sha256"), "base_model": base})


def migrate_legacy(store: artifacts.ModelStore) -> list[Path]:
    """Write the document of each sentiment folder in ``store`` saved without one."""
    done = []
    for meta_file in sorted(store.root.glob(f"{KIND}-*/meta.json")):
        d = meta_file.parent
        if not (d / artifacts.METADATA_FILE).is_file() and (d / "config.json").is_file():
            try:
                write_document(d)
            except (OSError, ValueError) as exc:
                artifacts.log.warning("%s: not migrated (%s)", d, exc)
                continue
            artifacts.log.info("%s: wrote %s from meta.json", d, artifacts.METADATA_FILE)
            done.append(d)
    return done


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
