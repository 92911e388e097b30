"""One artifact format and one owner for trained models.

Every saved model is a folder with its own files plus one metadata document,
``adpilot-artifact.json``: kind, format version, adpilot version, config and its hash,
training-data hash, metrics and the time it was written. :func:`check` is what a loader calls
before it reads the folder; it fails with the reason (:class:`ArtifactMismatchError`) on a wrong
kind or a format newer than this adpilot reads.

:class:`ModelStore` is the only code that builds model paths (``store.path("sentiment",
"polarity-en")``); the caller builds it from settings (:meth:`ModelStore.from_settings`) and
passes it in. :meth:`ModelStore.list` discovers every artifact by its document, without knowing
any format. Folders saved before the document existed are *format version 0*: their loaders
still read them, and :meth:`ModelStore.migrate_legacy` writes their documents from what they
kept (each format's module supplies ``migrate_legacy(store)``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adpilot.errors import ArtifactMismatchError

log = logging.getLogger(__name__)

METADATA_FILE = "adpilot-artifact.json"
# Modules that know an old (pre-document) format and can write its document.
LEGACY_FORMATS = ("adpilot.profiling.sentiment.artifact", "adpilot.scoring.attractiveness",
                  "adpilot.scoring.fluency", "adpilot.generation.tone", "adpilot.tuning.train")


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of the config as canonical JSON (sorted keys), so equal configs hash equal."""
    text = json.dumps(config, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ArtifactMeta:
    """The content of ``adpilot-artifact.json``. ``extra`` holds what only one kind needs."""

    kind: str
    format_version: int
    adpilot_version: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    config_hash: str | None = None
    data_hash: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the folder it was read from (not saved)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("path")
        return out


def save_metadata(folder: str | Path, kind: str, format_version: int, *,
                  config: dict[str, Any] | None = None, data_hash: str | None = None,
                  metrics: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                  created_at: str | None = None) -> ArtifactMeta:
    """Write ``folder/adpilot-artifact.json`` (atomically) and return what was written."""
    from adpilot import __version__

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = dict(config or {})
    meta = ArtifactMeta(kind, int(format_version), __version__, config, config_hash(config),
                        data_hash, dict(metrics or {}),
                        created_at or datetime.now(UTC).isoformat(timespec="seconds"),
                        dict(extra or {}), folder)
    tmp = folder / f".{METADATA_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_text(json.dumps(meta.as_dict(), indent=2, ensure_ascii=False, default=str),
                   encoding="utf-8")
    os.replace(tmp, folder / METADATA_FILE)
    return meta


def load_metadata(folder: str | Path) -> ArtifactMeta | None:
    """The document of ``folder``; None when it has none (an artifact saved before it existed).
    An unreadable or incomplete document is an :class:`ArtifactMismatchError` naming the file."""
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        meta = ArtifactMeta(**{k: raw[k] for k in ArtifactMeta.__dataclass_fields__
                               if k in raw and k != "path"}, path=Path(folder))
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
        raise ArtifactMismatchError(f"{path}: unreadable artifact metadata ({exc}); expected "
                                    f"the keys kind, format_version, config, …") from exc
    if meta.config_hash is not None and meta.config_hash != config_hash(meta.config):
        raise ArtifactMismatchError(f"{path}: the config does not match its hash (edited by "
                                    f"hand?); expected {meta.config_hash[:12]}…")
    return meta


def check(folder: str | Path, kind: str, format_version: int) -> ArtifactMeta:
    """The document of ``folder`` if it is a ``kind`` artifact this code reads (format version
    at most ``format_version``); :class:`ArtifactMismatchError` with the reason otherwise.
    A folder without a document is format version 0 and is said so in the log."""
    meta = load_metadata(folder)
    if meta is None:
        log.info("%s: no %s; treated as a %s artifact of format version 0 (saved before the "
                 "document existed)", folder, METADATA_FILE, kind)
        return ArtifactMeta(kind, 0, path=Path(folder))
    if meta.kind != kind:
        raise ArtifactMismatchError(f"{folder}: holds a {meta.kind!r} artifact, not {kind!r} "
                                    f"({METADATA_FILE})")
    if meta.format_version > format_version:
        raise ArtifactMismatchError(
            f"{folder}: {kind} artifact of format version {meta.format_version} (saved by "
            f"adpilot {meta.adpilot_version}); this adpilot reads up to version "
            f"{format_version}: upgrade adpilot or retrain the model")
    return meta


class ModelStore:
    """The model cache folder: where every model lives (:meth:`path`) and what is there
    (:meth:`list`). Build it from settings in the shell and pass it in."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def from_settings(cls, settings: Any) -> ModelStore:
        """The store at ``settings.models_dir`` (a shell passes the settings it read)."""
        return cls(settings.models_dir)

    def path(self, kind: str, name: str | None = None) -> Path:
        """The folder of model ``name`` of ``kind``: ``<root>/<kind>-<name>``, or
        ``<root>/<kind>`` for a kind's single model (``name`` None)."""
        for part in (kind, name or ""):
            if "/" in part or "\\" in part or part.startswith("."):
                raise ArtifactMismatchError(f"invalid model kind/name {part!r}: expected a plain "
                                            f"name without slashes")
        return self.root / (f"{kind}-{name}" if name else kind)

    def list(self, kind: str | None = None) -> list[ArtifactMeta]:
        """Every artifact in the store (each folder with a document), optionally of one kind,
        sorted by path. Unreadable documents are skipped with a log line."""
        found = []
        for doc in sorted(self.root.glob(f"*/{METADATA_FILE}")):
            try:
                meta = load_metadata(doc.parent)
            except ArtifactMismatchError as exc:
                log.warning("skipping %s", exc)
                continue
            if meta is not None and (kind is None or meta.kind == kind):
                found.append(meta)
        return found

    def migrate_legacy(self) -> list[Path]:
        """Write the document of every folder saved before it existed (each format in
        :data:`LEGACY_FORMATS` knows its own old files); return the folders migrated."""
        done: list[Path] = []
        for module in LEGACY_FORMATS:
            done += importlib.import_module(module).migrate_legacy(self)
        return done

    def __repr__(self) -> str:
        return f"ModelStore({str(self.root)!r})"
