"""Language-model backends behind one interface; see :mod:`adpilot.backends.llm.base`.

Registered names: ``llamacpp`` (default, offline GGUF through xllamacpp), ``llama-cpp-python``
(the same through llama-cpp-python, an optional extra that compiles), ``openai`` (any
OpenAI-compatible server, e.g. :mod:`adpilot.backends.llm.local_server`), ``transformers`` (a
local Hugging Face directory).
"""

from adpilot.backends.llm.base import (
    Attempt,
    Completion,
    GenerationParams,
    LLMBackend,
    LLMError,
    Message,
    StructuredOutputError,
    StructuredResult,
    Usage,
    available_backends,
    extract_json,
    get_backend,
    register_backend,
    structured,
    unregister_backend,
)

DEFAULT_BACKEND = "llamacpp"

__all__ = ["DEFAULT_BACKEND", "Attempt", "Completion", "GenerationParams", "LLMBackend", "LLMError",
           "Message", "StructuredOutputError", "StructuredResult", "Usage", "available_backends",
           "extract_json", "get_backend", "register_backend", "structured", "unregister_backend"]
