"""The model registry: every trained model with version, base, data hash, config and metrics.

One JSON file, ``<models_dir>/registry.json`` (written atomically under a file lock, so two
processes never lose each other's entries). Entries are named ``<name>:<version>``; versions
count up per name. Each kind (``generator``, ``sentiment``, ``attractiveness``) has at most one
promoted entry; the ``transformers`` backend serves the promoted generator when it is given no
model directory.

Every saved model carries ``adpilot-artifact.json`` (:mod:`adpilot.artifacts`);
:meth:`ModelRegistry.discover` registers the ones :meth:`~adpilot.artifacts.ModelStore.list`
finds in the model cache, so ``adpilot models list`` shows them without the registry knowing any
format or their code knowing the registry.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adpilot.artifacts import ModelStore
from adpilot.errors import ConfigError, NotFoundError

KINDS = ("generator", "sentiment", "attractiveness", "fluency", "complaint")


@dataclass
class ModelEntry:
    name: str
    version: int
    kind: str
    path: str
    base_model: str | None = None
    data_hash: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    adpilot_version: str | None = None
    promoted: bool = False

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def as_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, **asdict(self)}


class ModelRegistry:
    """Registry over ``<folder>/registry.json``: ``folder`` a models folder or a
    :class:`~adpilot.artifacts.ModelStore` (a shell builds it with
    ``ModelStore.from_settings(settings)``)."""

    def __init__(self, folder: str | Path | ModelStore) -> None:
        if not isinstance(folder, ModelStore):
            folder = ModelStore(folder)
        self.folder = folder.root
        self.path = self.folder / "registry.json"

    # --- storage -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".registry.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> list[ModelEntry]:
        if not self.path.is_file():
            return []
        raw = json.loads(self.path.read_text(encoding="utf-8"))
        return [ModelEntry(**{k: v for k, v in e.items() if k != "ref"}) for e in raw["models"]]

    def _write(self, entries: list[ModelEntry]) -> None:
        tmp = self.path.with_name(f".registry.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"format_version": 1, "models": [asdict(e) for e in entries]},
                                  indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)

    # --- operations ----------------------------------------------------------------------------
    def register(self, name: str, kind: str, path: str | Path, *, base_model: str | None = None,
                 data_hash: str | None = None, config: dict | None = None,
                 metrics: dict | None = None, adpilot_version: str | None = None) -> ModelEntry:
        """Add a version of ``name``. The same path with the same data hash is not added twice
        (its metrics are updated instead)."""
        if kind not in KINDS:
            raise ConfigError(f"The 'kind' parameter of ModelRegistry.register must be one of "
                              f"{', '.join(KINDS)}. Got {kind!r}.")
        path = str(Path(path).resolve())
        with self._locked():
            entries = self._read()
            same = next((e for e in entries if e.path == path and e.data_hash == data_hash
                         and e.name == name), None)
            if same is not None:
                same.metrics = {**same.metrics, **(metrics or {})}
                same.config = config or same.config
                self._write(entries)
                return same
            version = 1 + max((e.version for e in entries if e.name == name), default=0)
            entry = ModelEntry(name, version, kind, path, base_model, data_hash, config or {},
                               metrics or {}, datetime.now(UTC).isoformat(timespec="seconds"),
                               adpilot_version)
            entries.append(entry)
            self._write(entries)
            return entry

    def update_metrics(self, ref_or_path: str, metrics: dict[str, Any]) -> ModelEntry:
        with self._locked():
            entries = self._read()
            entry = self._find(entries, ref_or_path)
            entry.metrics = {**entry.metrics, **metrics}
            self._write(entries)
            return entry

    def list(self, kind: str | None = None) -> list[ModelEntry]:
        return [e for e in self._read() if kind is None or e.kind == kind]

    def get(self, ref_or_path: str) -> ModelEntry:
        return self._find(self._read(), ref_or_path)

    @staticmethod
    def _find(entries: list[ModelEntry], ref: str) -> ModelEntry:
        """``name:version``, ``name`` (its latest version) or the model's path."""
        name, sep, version = ref.rpartition(":")
        if sep and version.isdigit():
            hit = [e for e in entries if e.name == name and e.version == int(version)]
        else:
            hit = sorted((e for e in entries if e.name == ref), key=lambda e: e.version)
            if not hit:
                p = str(Path(ref).resolve())
                hit = [e for e in entries if e.path == p]
        if not hit:
            raise NotFoundError(f"no registered model {ref!r}; see: adpilot models list")
        return hit[-1]

    def promote(self, ref: str) -> ModelEntry:
        """Make ``ref`` the promoted model of its kind (the previous one is demoted)."""
        with self._locked():
            entries = self._read()
            entry = self._find(entries, ref)
            if not Path(entry.path).exists():
                raise NotFoundError(f"{entry.ref}: its files are gone ({entry.path})")
            for e in entries:
                if e.kind == entry.kind:
                    e.promoted = e is entry
            self._write(entries)
            return entry

    def promoted(self, kind: str = "generator") -> ModelEntry | None:
        return next((e for e in self._read() if e.kind == kind and e.promoted), None)

    # --- models that keep their own metadata ---------------------------------------------------
    def discover(self) -> list[ModelEntry]:
        """Register every artifact in the model store (found by its ``adpilot-artifact.json``,
        whatever its format; each once per data hash); return the entries added or refreshed.
        Folders saved before the document existed get one first."""
        store = ModelStore(self.folder)
        store.migrate_legacy()
        found = []
        known = self._read()
        for meta in store.list():
            if meta.kind not in KINDS:
                continue
            path = str(meta.path.resolve())
            if any(e.path == path and e.name != meta.path.name for e in known):
                continue  # registered under its own name already (e.g. by register_tuned)
            extra = meta.extra
            config = {k: extra[k] for k in ("task", "lang", "n_train") if k in extra}
            counts = {"n_pairs": extra["n_pairs"]} if "n_pairs" in extra else {}
            found.append(self.register(
                meta.path.name, meta.kind, meta.path, base_model=extra.get("base_model"),
                data_hash=str(meta.data_hash or "")[:16] or None,
                config={**meta.config, **config, "config_hash": meta.config_hash},
                metrics={**meta.metrics, **counts}, adpilot_version=meta.adpilot_version))
        return found


def register_tuned(model_dir: str | Path, *, registry: ModelRegistry,
                   name: str | None = None) -> ModelEntry:
    """Register a model written by :func:`adpilot.tuning.train.tune` from its ``adpilot.json``."""
    from adpilot.tuning.train import load_meta

    meta = load_meta(model_dir)
    reg = registry
    return reg.register(name or f"copy-{meta['method']}", "generator", model_dir,
                        base_model=meta.get("base"), data_hash=meta.get("data_hash"),
                        config={**meta.get("config", {}), "method": meta["method"],
                                "n_examples": meta.get("n_examples"),
                                "base_info": meta.get("base_info")},
                        metrics=meta.get("metrics", {}), adpilot_version=meta.get("adpilot_version"))


def promoted_generator_dir(registry: ModelRegistry) -> Path:
    """Directory of the promoted generator; :class:`NotFoundError` naming the fix if none."""
    entry = registry.promoted("generator")
    if entry is None:
        raise NotFoundError("no generator is promoted: tune one (adpilot tune copy) and promote "
                            "it (adpilot models promote NAME:VERSION), or pass --model DIR")
    return Path(entry.path)
