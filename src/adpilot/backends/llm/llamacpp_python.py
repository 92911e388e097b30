"""The same GGUF models through llama-cpp-python, kept as an alternative binding.

The default ``llamacpp`` backend runs on xllamacpp (prebuilt wheels, see docs/llm_bindings.md).
llama-cpp-python compiles llama.cpp during ``pip install`` (15-25 min on 2 cores, and it must be
built with ``CMAKE_ARGS="-DGGML_NATIVE=OFF"`` on these machines); install it yourself
(``pip install 'adpilot[llm-python]'``) to compare the two or where no xllamacpp wheel exists.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from adpilot.backends import llm
from adpilot.backends.llm.llamacpp import default_threads, resolve_model
from adpilot.backends.llm.models import DEFAULT_MODEL
from adpilot.deps import require


@llm.register_backend("llama-cpp-python")
class LlamaCppPythonBackend(llm.LLMBackend):
    """A GGUF file run in-process by llama-cpp-python; the options of the ``llamacpp`` backend.
    JSON schemas become a GBNF grammar (llama-cpp-python's own converter); a registered model
    name is assembled in ``models_dir``."""

    name = "llama-cpp-python"

    def __init__(self, model: str | Path = DEFAULT_MODEL, *, n_ctx: int = 4096,
                 n_threads: int | None = None, seed: int = 0, use_grammar: bool = True,
                 lora_path: str | Path | None = None, lora_scale: float = 1.0,
                 models_dir: str | Path | None = None) -> None:
        self.model = str(model)
        self.models_dir = models_dir
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.seed = seed
        self.use_grammar = use_grammar
        self.lora_path = Path(lora_path) if lora_path else None
        self.lora_scale = lora_scale
        self._llm = None
        self._lock = threading.Lock()  # a llama context is not thread-safe

    @property
    def model_id(self) -> str:
        lora = f"+lora:{self.lora_path.name}@{self.lora_scale:g}" if self.lora_path else ""
        return f"llamacpp:{Path(self.model).name}{lora}"

    def _load(self):
        if self._llm is None:
            llama_cpp = require("llama_cpp", feature="the llama-cpp-python backend")
            path = resolve_model(self.model, self.models_dir)
            extra = {}
            if self.lora_path is not None:
                if not self.lora_path.is_file():
                    raise llm.LLMError(f"LoRA adapter file {self.lora_path} does not exist")
                extra = {"lora_path": str(self.lora_path), "lora_scale": self.lora_scale}
            self._llm = llama_cpp.Llama(model_path=str(path), n_ctx=self.n_ctx,
                                        n_threads=self.n_threads, seed=self.seed, verbose=False,
                                        **extra)
        return self._llm

    def complete(self, messages: Sequence[llm.Message], params: llm.GenerationParams) -> llm.Completion:
        with self._lock:
            model = self._load()
            kwargs = {}
            if params.json_schema is not None and self.use_grammar:
                kwargs["response_format"] = {"type": "json_object", "schema": params.json_schema}
            started = time.perf_counter()
            out = model.create_chat_completion(
                messages=[m.as_dict() for m in messages], max_tokens=params.max_tokens,
                temperature=params.temperature, seed=params.seed, **kwargs)
            seconds = time.perf_counter() - started
        return llm.Completion(text=out["choices"][0]["message"]["content"] or "",
                              usage=llm.Usage.from_openai(out.get("usage")),
                              seconds=seconds, model=self.model_id)

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
