"""Any OpenAI-compatible chat server (vLLM, Ollama, llama.cpp server, cloud APIs) over HTTP.

The key comes from an environment variable (never from code or files); requests have timeouts,
transient failures (connection errors, 429, 5xx) are retried with exponential backoff, and
:meth:`complete_many` runs at most ``concurrency`` requests at once so a batching server
(vLLM, llama.cpp with parallel slots) is kept busy without being flooded.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from adpilot.backends import llm
from adpilot.backends.llm.llamacpp import grammar_schema
from adpilot.deps import require
from adpilot.errors import ConfigError

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
# statuses with which a server refuses a request it does not understand (older llama.cpp forks
# answer an unknown response_format with a 500 "server_error")
_REFUSED_STATUS = {400, 422, 500}


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as OpenAI's strict structured outputs want it: every object closed
    (``additionalProperties: false``), no llama.cpp-only keys (``x-guidance``)."""
    out = grammar_schema(schema)
    out.pop("x-guidance", None)
    return out


def _schema_name(schema: dict[str, Any]) -> str:
    """A ``json_schema.name`` OpenAI accepts (``[A-Za-z0-9_-]{1,64}``): the schema's title."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title") or "reply"))[:64] or "reply"


def llguidance_grammar(schema: dict[str, Any]) -> str:
    """llama.cpp's LLGuidance grammar for ``schema``: what the in-process ``llamacpp`` backend
    samples with (closed objects, compact whitespace), sent as the request's ``grammar``."""
    return "%llguidance {}\nstart: %json " + json.dumps(grammar_schema(schema),
                                                        separators=(",", ":"))


# how a JSON schema is passed on. "json_schema" (default) is OpenAI's structured outputs, which
# OpenAI, vLLM, Ollama and llama.cpp's server (xllamacpp 2026.10) all enforce while sampling;
# "schema" is llama.cpp's own form (the schema inside json_object); llama.cpp's server turns
# both into a grammar that lets the model pretty-print (``{\n  "text": ...``: other tokens,
# so other copy, than the in-process backend). "llguidance" sends llama.cpp's ``grammar``
# field instead (servers built with LLGuidance, as xllamacpp's): the in-process backend's
# exact grammar. "json_object" is plain JSON mode (the schema is not enforced: only the
# prompt describes it); "none" sends no response_format at all
RESPONSE_FORMATS: dict[str, Callable[[dict], dict | None]] = {
    "llguidance": lambda schema: None,  # the grammar goes in the body (_payload)
    "json_schema": lambda schema: {"type": "json_schema", "json_schema": {
        "name": _schema_name(schema), "schema": strict_schema(schema), "strict": True}},
    "schema": lambda schema: {"type": "json_object", "schema": grammar_schema(schema)},
    "json_object": lambda schema: {"type": "json_object"},
    "none": lambda schema: None,
}
# formats that make the server enforce the schema (a prompt need not spell it out)
ENFORCING = frozenset({"llguidance", "json_schema", "schema"})
# what a server that refuses a form is asked with instead
FALLBACK = {"llguidance": "json_schema", "json_schema": "json_object", "schema": "json_object"}


@llm.register_backend("openai")
class OpenAICompatBackend(llm.LLMBackend):
    """Chat completions at ``{base_url}/chat/completions``.

    ``base_url`` / ``model`` default to ``ADPILOT_LLM_BASE_URL`` / ``ADPILOT_LLM_MODEL``; the key is
    read from the variable named by ``api_key_env`` (default ``ADPILOT_LLM_API_KEY``, then
    ``OPENAI_API_KEY``); local servers usually need none.

    A JSON schema goes out as ``response_format`` (:data:`RESPONSE_FORMATS`; default
    ``ADPILOT_LLM_RESPONSE_FORMAT``, else ``json_schema``). A server that refuses that form
    (an HTTP 400 naming ``response_format``, or ``grammar`` for ``llguidance``) is asked again
    at once in the :data:`FALLBACK` form (``json_schema`` → plain JSON mode), which this
    backend keeps to from then on (logged once); :attr:`enforces_schema` says whether the
    form in use makes the server enforce the schema.
    """

    name = "openai"
    remote = True

    def __init__(self, base_url: str | None = None, model: str | None = None, *,
                 api_key_env: str | None = None, timeout: float = 60.0, max_retries: int = 3,
                 backoff: float = 0.5, concurrency: int = 4, response_format: str | None = None) -> None:
        self.base_url = (base_url or os.environ.get("ADPILOT_LLM_BASE_URL") or "").rstrip("/")
        if not self.base_url:
            raise ConfigError("the openai backend needs a base URL (--base-url or "
                              "ADPILOT_LLM_BASE_URL), e.g. http://127.0.0.1:8000/v1")
        self.model = model or os.environ.get("ADPILOT_LLM_MODEL") or "default"
        names = [api_key_env] if api_key_env else ["ADPILOT_LLM_API_KEY", "OPENAI_API_KEY"]
        key = next((os.environ[n] for n in names if os.environ.get(n)), None)
        if concurrency < 1:
            raise ConfigError(f"The 'concurrency' parameter of OpenAICompatBackend must be an int "
                              f">= 1. Got {concurrency}.")
        self.timeout, self.max_retries, self.backoff = timeout, max_retries, backoff
        response_format = (response_format or os.environ.get("ADPILOT_LLM_RESPONSE_FORMAT")
                           or "json_schema")
        if response_format not in RESPONSE_FORMATS:
            raise ConfigError(f"unknown response_format {response_format!r}; choose one of "
                              f"{', '.join(RESPONSE_FORMATS)}")
        self.concurrency, self.response_format = concurrency, response_format
        self._format_lock = threading.Lock()
        httpx = require("httpx", feature="the openai backend")
        self._httpx = httpx
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers,
                                    timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
                                    limits=httpx.Limits(max_connections=concurrency))

    @property
    def model_id(self) -> str:
        return f"openai:{self.base_url}:{self.model}"

    @property
    def enforces_schema(self) -> bool:
        """Whether the server is asked to enforce the JSON schema (False after a fallback)."""
        return self.response_format in ENFORCING

    def _payload(self, messages: Sequence[llm.Message], params: llm.GenerationParams) -> dict:
        """The request body, with ``response_format`` in this backend's current form."""
        body = {"model": self.model, "messages": [m.as_dict() for m in messages],
                "max_tokens": params.max_tokens, "temperature": params.temperature}
        if params.seed is not None:
            body["seed"] = params.seed
        fmt = (RESPONSE_FORMATS[self.response_format](params.json_schema)
               if params.json_schema is not None else None)
        if fmt is not None:
            body["response_format"] = fmt
        if params.json_schema is not None and self.response_format == "llguidance":
            body["grammar"] = llguidance_grammar(params.json_schema)
        return body

    def _refused_format(self, body: dict, resp: Any) -> bool:
        """If ``resp`` refuses ``body``'s schema form, fall back to JSON mode (once per backend,
        logged once) and return True: the caller asks again."""
        fmt = body.get("response_format") or {}
        if "grammar" in body:
            sent, key = "llguidance", "grammar"
        elif fmt.get("type") == "json_schema":
            sent, key = "json_schema", "response_format"
        elif "schema" in fmt:
            sent, key = "schema", "response_format"
        else:
            return False
        if resp.status_code not in _REFUSED_STATUS or key not in resp.text:
            return False
        with self._format_lock:
            if self.response_format == sent:  # not yet moved on by a concurrent request
                self.response_format = FALLBACK[sent]
                log.warning("%s refused %s %r (HTTP %s: %s); this backend sends %r from now on%s",
                            self.base_url, key, sent, resp.status_code, resp.text[:200],
                            self.response_format, "" if self.enforces_schema
                            else " (JSON mode: the schema is not enforced)")
        return True

    def complete(self, messages: Sequence[llm.Message], params: llm.GenerationParams) -> llm.Completion:
        body = self._payload(messages, params)
        fallbacks, last, attempt = 0, "", 0
        while attempt <= self.max_retries:
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            attempt += 1
            started = time.perf_counter()
            try:
                resp = self._client.post("/chat/completions", json=body)
            except self._httpx.TransportError as exc:  # connect/read timeouts, refused, reset
                last = f"{type(exc).__name__}: {exc}"
                continue
            if fallbacks < len(FALLBACK) and self._refused_format(body, resp):
                body, fallbacks = self._payload(messages, params), fallbacks + 1
                attempt -= 1  # asked again at once in JSON mode: not one of the retries
                continue
            if resp.status_code in _RETRY_STATUS:
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                continue
            if resp.status_code >= 400:
                raise llm.LLMError(f"{self.base_url} answered HTTP {resp.status_code}: {resp.text[:300]}")
            data = resp.json()
            try:
                text = data["choices"][0]["message"]["content"] or ""
            except (KeyError, IndexError, TypeError) as exc:
                raise llm.LLMError(f"{self.base_url} sent a reply without choices[0].message: "
                                   f"{str(data)[:300]}") from exc
            return llm.Completion(text, llm.Usage.from_openai(data.get("usage")),
                              time.perf_counter() - started, self.model_id)
        raise llm.LLMError(f"{self.base_url} failed after {self.max_retries + 1} tries: {last}")

    def complete_many(self, batch: Sequence[Sequence[llm.Message]],
                      params: llm.GenerationParams) -> list[llm.Completion]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda m: self.complete(m, params), batch))

    def close(self) -> None:
        self._client.close()
