"""Local GGUF models through llama.cpp (the default, offline backend).

The binding is xllamacpp: prebuilt CPU wheels (nothing to compile, installs in seconds) around
llama.cpp's own C++ server, called in-process. It was chosen over llama-cpp-python by
``benchmarks/llm_bindings.py`` (docs/llm_bindings.md); that binding stays available as the
``llama-cpp-python`` backend.
"""

from __future__ import annotations

import copy
import os
import secrets
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from adpilot.backends import llm
from adpilot.backends.llm.models import DEFAULT_MODEL, MODELS, model_path
from adpilot.deps import require


def default_threads() -> int:
    """Decoding threads, one per physical core: llama.cpp threads spin-wait on each other, so
    extra threads on a busy machine cost more than they give (2 threads were 2x slower than 1
    on 2 shared cores; on the same 2 cores idle, ``benchmarks/llm_threads.py``, they decoded
    1.65x faster but wrote other replies); ``ADPILOT_LLM_THREADS`` overrides."""
    return int(os.environ.get("ADPILOT_LLM_THREADS", 0)) or max(1, (os.cpu_count() or 2) // 2)


def default_batch_threads() -> int:
    """Every core for reading the prompt: one large matrix product per layer, compute-bound,
    so the threads do not wait on each other (``benchmarks/llm_threads.py`` on 2 cores: 31 vs
    18 prompt tokens/s, the copy batch 1.28x faster, the same replies byte for byte);
    ``ADPILOT_LLM_BATCH_THREADS`` overrides."""
    return int(os.environ.get("ADPILOT_LLM_BATCH_THREADS", 0)) or max(1, os.cpu_count() or 1)


def resolve_model(model: str | Path, models_dir: str | Path | None = None) -> Path:
    """A registered model name (assembled and verified on first use in ``models_dir``) or a
    path to a GGUF file."""
    path = model_path(str(model), cache_dir=models_dir) if str(model) in MODELS else Path(model)
    if not path.is_file():
        raise llm.LLMError(f"GGUF model file {path} does not exist")
    return path


def grammar_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema as llama.cpp's LLGuidance sampler should see it.

    LLGuidance follows JSON-schema semantics where llama-cpp-python's GBNF converter did not:
    without ``additionalProperties: false`` it lets the model invent extra keys, and by default
    it allows any run of whitespace between tokens, where greedy decoding of a small model can
    loop until ``max_tokens`` (seen with the 270M model). Both are closed here, so replies look
    like ``{"text": "..."}`` as they did with the old binding.
    """
    out = copy.deepcopy(schema)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(out)
    out.setdefault("x-guidance", {"whitespace_flexible": False, "key_separator": ": ",
                                  "item_separator": ", "})
    return out


def server_params(model: Path, *, n_ctx: int, n_threads: int, n_threads_batch: int | None = None,
                  parallel: int = 1,
                  lora_path: Path | None = None, lora_scale: float = 1.0,
                  chat_template: str | None = None, host: str = "127.0.0.1", port: int = 0,
                  alias: str | None = None, api_key: str | None = None):
    """xllamacpp ``CommonParams`` for one model; each of ``parallel`` slots gets ``n_ctx``.
    ``n_threads`` decode; ``n_threads_batch`` (default ``n_threads``) read the prompt."""
    xlc = require("xllamacpp", feature="the llamacpp backend")
    p = xlc.CommonParams()
    p.model.path = str(model)
    p.n_parallel = parallel
    p.n_ctx = n_ctx * parallel
    p.cpuparams.n_threads = n_threads
    p.cpuparams_batch.n_threads = n_threads_batch or n_threads
    p.warmup = False  # the first request pages the weights in anyway
    p.verbosity = -1  # llama.cpp's per-request log lines would drown adpilot's own output
    p.hostnames = [host]
    p.port = port
    p.endpoint_slots = False
    if alias:
        p.model_alias = {alias}
    if api_key:
        p.api_keys = [api_key]
    if chat_template:
        # a Jinja template, or the name of one built into llama.cpp ("gemma", "chatml", ...)
        p.chat_template = chat_template
        p.use_jinja = "{%" in chat_template or "{{" in chat_template
    if lora_path is not None:
        if not lora_path.is_file():
            raise llm.LLMError(f"LoRA adapter file {lora_path} does not exist")
        p.lora_adapters = [xlc.CommonAdapterLoraInfo(str(lora_path), float(lora_scale))]
    return p


@llm.register_backend("llamacpp")
class LlamaCppBackend(llm.LLMBackend):
    """A GGUF file run in-process. ``model`` is a registered model name (assembled and verified
    on first use in ``models_dir``, which a shell passes from ``Settings.models_dir``) or a
    path to any GGUF file. JSON schemas become a sampling grammar, so replies
    are well-formed JSON by construction. ``lora_path`` applies a GGUF LoRA adapter at
    ``lora_scale``; ``parallel`` > 1 decodes that many concurrent requests together (continuous
    batching, one ``n_ctx`` per slot): :meth:`complete_many`, or ``concurrency`` threads."""

    name = "llamacpp"

    def __init__(self, model: str | Path = DEFAULT_MODEL, *, n_ctx: int = 4096,
                 n_threads: int | None = None, seed: int = 0, use_grammar: bool = True,
                 lora_path: str | Path | None = None, lora_scale: float = 1.0,
                 parallel: int = 1, chat_template: str | None = None,
                 models_dir: str | Path | None = None, n_threads_batch: int | None = None) -> None:
        if parallel < 1:
            raise llm.LLMError(f"The 'parallel' parameter of LlamaCppBackend must be an int >= 1. "
                               f"Got {parallel}.")
        self.model = str(model)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.n_threads_batch = n_threads_batch or default_batch_threads()
        self.seed = seed  # used when a request carries no seed of its own
        self.use_grammar = use_grammar
        self.lora_path = Path(lora_path) if lora_path else None
        self.lora_scale = lora_scale
        self.parallel = parallel
        self.chat_template = chat_template
        self.models_dir = models_dir
        self._server = None
        self._lock = threading.Lock()  # loading only: the server itself is thread-safe

    @property
    def concurrency(self) -> int:
        """Requests worth having in flight at once (``CopyGenerator.map`` keeps this many):
        one per slot, decoded together."""
        return self.parallel

    @property
    def model_id(self) -> str:
        lora = f"+lora:{self.lora_path.name}@{self.lora_scale:g}" if self.lora_path else ""
        return f"llamacpp:{Path(self.model).name}{lora}"

    def _load(self):
        with self._lock:
            if self._server is None:
                xlc = require("xllamacpp", feature="the llamacpp backend")
                # the server also listens on a random loopback port; a key nobody knows keeps
                # other local processes out (in-process calls do not go through HTTP)
                params = server_params(resolve_model(self.model, self.models_dir), n_ctx=self.n_ctx,
                                       n_threads=self.n_threads,
                                       n_threads_batch=self.n_threads_batch, parallel=self.parallel,
                                       lora_path=self.lora_path, lora_scale=self.lora_scale,
                                       chat_template=self.chat_template,
                                       api_key=secrets.token_urlsafe(24))
                self._server = xlc.Server(params)
            return self._server

    def request(self, messages: Sequence[llm.Message], params: llm.GenerationParams) -> dict[str, Any]:
        """The OpenAI-style request body sent to llama.cpp's server."""
        body: dict[str, Any] = {"messages": [m.as_dict() for m in messages],
                                "max_tokens": params.max_tokens, "temperature": params.temperature,
                                "seed": self.seed if params.seed is None else params.seed}
        if params.json_schema is not None and self.use_grammar:
            # as a grammar, not response_format: on the chat-template path llama.cpp rebuilds the
            # grammar from a response_format schema and drops grammar_schema's whitespace rule
            # (replies came out as {\n  "text": ...}, about 20% more tokens on short copy)
            xlc = require("xllamacpp", feature="the llamacpp backend")
            body["grammar"] = xlc.json_schema_to_grammar(grammar_schema(params.json_schema))
        return body

    def complete(self, messages: Sequence[llm.Message], params: llm.GenerationParams) -> llm.Completion:
        server = self._load()
        started = time.perf_counter()
        out = server.handle_chat_completions(self.request(messages, params))
        seconds = time.perf_counter() - started
        if "error" in out:
            err = out["error"]
            raise llm.LLMError(f"llama.cpp refused the request ({err.get('type', '?')}): "
                               f"{err.get('message', err)}")
        return llm.Completion(text=out["choices"][0]["message"].get("content") or "",
                              usage=llm.Usage.from_openai(out.get("usage")),
                              seconds=seconds, model=self.model_id)

    def complete_many(self, batch: Sequence[Sequence[llm.Message]],
                      params: llm.GenerationParams) -> list[llm.Completion]:
        if self.parallel == 1 or len(batch) < 2:
            return [self.complete(m, params) for m in batch]
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            return list(pool.map(lambda m: self.complete(m, params), batch))

    def close(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        del server  # the destructor stops llama.cpp's loop and frees the model
