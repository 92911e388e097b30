"""Local GGUF models through llama-cpp-python (the default, offline backend)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from adpilot.backends.llm.base import (
    Completion,
    GenerationParams,
    LLMBackend,
    LLMError,
    Message,
    Usage,
    register_backend,
)
from adpilot.backends.llm.models import DEFAULT_MODEL, MODELS, model_path
from adpilot.deps import require


@register_backend("llamacpp")
class LlamaCppBackend(LLMBackend):
    """A GGUF file run in-process. ``model`` is a registered model name (assembled and verified
    on first use) or a path to any GGUF file. JSON schemas become a sampling grammar, so replies
    are well-formed JSON by construction."""

    name = "llamacpp"

    def __init__(self, model: str | Path = DEFAULT_MODEL, *, n_ctx: int = 4096,
                 n_threads: int | None = None, seed: int = 0, use_grammar: bool = True) -> None:
        self.model = str(model)
        self.n_ctx = n_ctx
        # one thread per physical core: llama.cpp threads spin-wait on each other, so extra
        # threads on a busy machine cost more than they give (measured 2x slower with 2 threads
        # than 1 on 2 shared cores); ADPILOT_LLM_THREADS overrides
        self.n_threads = n_threads or int(os.environ.get("ADPILOT_LLM_THREADS", 0)) or max(
            1, (os.cpu_count() or 2) // 2)
        self.seed = seed
        self.use_grammar = use_grammar
        self._llm = None
        self._lock = threading.Lock()  # a llama context is not thread-safe

    @property
    def model_id(self) -> str:
        return f"llamacpp:{Path(self.model).name}"

    def _load(self):
        if self._llm is None:
            llama_cpp = require("llama_cpp", feature="the llamacpp backend")
            path = model_path(self.model) if self.model in MODELS else Path(self.model)
            if not path.is_file():
                raise LLMError(f"GGUF model file {path} does not exist")
            self._llm = llama_cpp.Llama(model_path=str(path), n_ctx=self.n_ctx,
                                        n_threads=self.n_threads, seed=self.seed, verbose=False)
        return self._llm

    def complete(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        with self._lock:
            llm = self._load()
            kwargs = {}
            if params.json_schema is not None and self.use_grammar:
                kwargs["response_format"] = {"type": "json_object", "schema": params.json_schema}
            started = time.perf_counter()
            out = llm.create_chat_completion(
                messages=[m.as_dict() for m in messages], max_tokens=params.max_tokens,
                temperature=params.temperature, seed=params.seed, **kwargs)
            seconds = time.perf_counter() - started
        usage = out.get("usage") or {}
        return Completion(text=out["choices"][0]["message"]["content"] or "",
                          usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
                          seconds=seconds, model=self.model_id)

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
