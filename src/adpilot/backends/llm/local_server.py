"""An OpenAI-compatible HTTP server for a local GGUF model: llama.cpp's own server via xllamacpp.

Point the ``openai`` backend (or ``adpilot generate-batch --base-url``) at it to have several
requests decoded together (``parallel`` slots, continuous batching). It binds 127.0.0.1 unless
told otherwise, and asks for a bearer key when ``api_key`` (or ``ADPILOT_LLM_SERVER_KEY``) is set.

    python -m adpilot.backends.llm.local_server --model gemma3-270m-q4_k_m --port 8000 --parallel 4
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path

from adpilot.backends.llm.llamacpp import (
    default_batch_threads,
    default_threads,
    resolve_model,
    server_params,
)
from adpilot.deps import require


class LocalServer:
    """A running server; ``url`` ends in ``/v1``. :meth:`close` (or ``with``) stops it."""

    def __init__(self, server, url: str) -> None:
        self._server = server
        self.url = url

    def close(self) -> None:
        server, self._server = self._server, None
        del server  # the destructor stops llama.cpp's loop and its HTTP listener

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_server(model: str | Path, *, host: str = "127.0.0.1", port: int = 0, n_ctx: int = 2048,
                 parallel: int = 1, n_threads: int | None = None, alias: str | None = None,
                 chat_template: str | None = None, lora_path: str | Path | None = None,
                 lora_scale: float = 1.0, api_key: str | None = None,
                 models_dir: str | Path | None = None) -> LocalServer:
    """Load ``model`` (a registered name, assembled in ``models_dir``, or a GGUF path) and serve
    it; returns once it listens. ``port=0`` picks a free port; ``n_ctx`` is per slot."""
    xlc = require("xllamacpp", feature="the local llama.cpp server")
    params = server_params(resolve_model(model, models_dir), n_ctx=n_ctx,
                           n_threads=n_threads or default_threads(),
                           n_threads_batch=default_batch_threads(),
                           parallel=parallel, lora_path=Path(lora_path) if lora_path else None,
                           lora_scale=lora_scale, chat_template=chat_template, host=host, port=port,
                           alias=alias, api_key=api_key or os.environ.get("ADPILOT_LLM_SERVER_KEY"))
    server = xlc.Server(params)
    return LocalServer(server, server.listening_address.rstrip("/") + "/v1")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="registered model name or GGUF path")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--n-ctx", type=int, default=2048, help="context per slot")
    ap.add_argument("--parallel", type=int, default=1, help="requests decoded together")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--alias", default=None, help="model name the server answers to")
    ap.add_argument("--chat-template", default=None,
                    help="llama.cpp built-in template name (gemma, chatml, ...) or Jinja text")
    ap.add_argument("--lora", default=None, help="GGUF LoRA adapter")
    ap.add_argument("--lora-scale", type=float, default=1.0)
    ap.add_argument("--models-dir", default=None,
                    help="models folder where a registered model name is assembled")
    args = ap.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with start_server(args.model, host=args.host, port=args.port, n_ctx=args.n_ctx,
                      parallel=args.parallel, n_threads=args.threads, alias=args.alias,
                      chat_template=args.chat_template, lora_path=args.lora,
                      lora_scale=args.lora_scale, models_dir=args.models_dir) as srv:
        print(f"serving {args.model} at {srv.url}", flush=True)
        # llama.cpp's threads may take the signal; the main thread must wake to run the handler
        while not stop.wait(0.5):
            pass


if __name__ == "__main__":
    main()
