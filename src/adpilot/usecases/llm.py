"""The LLM backend a user asked for: one mapping from the user-facing settings (backend name,
model, server URL), as the CLI options and the API settings give them, to a backend's
constructor options. The ``transformers`` backend without a model uses the generator promoted
in the model registry (resolved here, so the backend itself knows nothing of tuning)."""

from __future__ import annotations

from pathlib import Path

from adpilot.backends.llm.base import LLMBackend, get_backend


def backend_options(backend: str, model: str | None = None, base_url: str | None = None,
                    models_dir: str | Path | None = None,
                    parallel: int | None = None) -> dict[str, str | Path | int]:
    """Constructor options for ``backend`` (each backend names its model differently); unset
    or empty values are left out so the backend's own default applies. ``models_dir``
    (``Settings.models_dir``) is where the llama.cpp backends assemble a registered model;
    ``parallel`` (``Settings.llm_parallel``) how many requests the in-process llama.cpp model
    decodes together."""
    options = {"llamacpp": {"model": model, "models_dir": models_dir, "parallel": parallel},
               "llama-cpp-python": {"models_dir": models_dir},
               "openai": {"base_url": base_url, "model": model},
               "transformers": {"model_dir": model}}.get(backend, {})
    options = {k: v for k, v in options.items() if v}
    if backend == "transformers" and "model_dir" not in options:
        from adpilot.errors import ConfigError
        from adpilot.tuning.registry import ModelRegistry, promoted_generator_dir

        if not models_dir:
            raise ConfigError("the transformers backend needs a model: pass one, or the models "
                              "folder whose registry holds the promoted generator")
        options["model_dir"] = str(promoted_generator_dir(ModelRegistry(models_dir)))
    return options


def build_backend(backend: str, model: str | None = None, base_url: str | None = None,
                  models_dir: str | Path | None = None, parallel: int | None = None) -> LLMBackend:
    """The registered backend ``backend`` built from the user-facing settings."""
    return get_backend(backend, **backend_options(backend, model, base_url, models_dir, parallel))
