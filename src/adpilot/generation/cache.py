"""On-disk completion cache keyed by a hash of (model, messages, sampling settings).

Re-running a campaign or an evaluation re-uses every reply already paid for; a changed prompt,
model or setting is a different key. One small JSON file per entry, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from adpilot.backends.llm.base import Completion, GenerationParams, LLMBackend, Message, Usage


def prompt_hash(model_id: str, messages: Sequence[Message], params: GenerationParams) -> str:
    payload = {"model": model_id, "messages": [m.as_dict() for m in messages],
               "params": asdict(params)}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


class PromptCache:
    """``get``/``put`` by key; :meth:`complete` is a cached ``backend.complete``. The folder
    is given: a shell passes ``Settings.llm_cache_dir`` (``<cache>/llm``)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.hits = self.misses = 0

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Completion | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):  # a torn file is just a miss
            return None
        return Completion(data["text"], Usage(**data["usage"]), data["seconds"], data["model"],
                          cached=True)

    def put(self, key: str, completion: Completion) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # one temporary name per process and thread: two threads may write one key at once
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps({"text": completion.text, "usage": asdict(completion.usage),
                                   "seconds": completion.seconds, "model": completion.model},
                                  ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)

    def complete(self, backend: LLMBackend, messages: Sequence[Message],
                 params: GenerationParams) -> Completion:
        key = prompt_hash(backend.model_id, messages, params)
        found = self.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        reply = backend.complete(messages, params)
        self.put(key, reply)
        return reply
