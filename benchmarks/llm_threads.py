"""Threads for llama.cpp's two kinds of work: reading the prompt vs writing the reply.

Reading a prompt is one large matrix product per layer (compute-bound: every core helps);
writing is one token at a time (memory-bound: llama.cpp's threads spin-wait on each other, so
on a small shared machine one thread was faster than two, see ``default_threads``). Copy
prompts are ~330-370 tokens for ~75 generated, and on 2 cores reading them took longer
than writing, so the two are measured apart here.

The batch is ``llm_parallel.requests``: the generator's e-mail prompt and output schema for
the built-in sample's first products (English and Chinese alternating), greedy, fixed seed,
sent one at a time to ``LlamaCppBackend(n_threads=D, n_threads_batch=B)`` for each ``D:B``
of ``--threads``. The model is loaded before the clock starts; each repetition starts from an
empty prompt cache (a fresh backend), so every prompt is read in full. Reported per setting:
wall seconds for the batch, prompt and generated tokens per second as llama.cpp times them,
median / min / max of ``--reps``, the ratio to the first setting from the same run, and
whether the replies equal the first setting's byte for byte.

Usage: python benchmarks/llm_threads.py [--threads 1:1,1:2,2:2] [--reps 3] [--requests 4]
Writes benchmarks/results/llm_threads.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from llm_parallel import RESULTS, requests, stats  # noqa: E402  (same prompts, same stats)


def run_batch(backend, batch) -> dict:
    """Wall seconds, llama.cpp's own prompt/decode timings and the replies, one request at a
    time (the default campaign path: one slot)."""
    server = backend._load()
    started = time.perf_counter()
    prompt_ms = predicted_ms = prompt_n = predicted_n = 0.0
    texts = []
    for messages, params in batch:
        out = server.handle_chat_completions(backend.request(messages, params))
        timings = out.get("timings", {})
        prompt_ms += timings.get("prompt_ms", 0.0)
        predicted_ms += timings.get("predicted_ms", 0.0)
        prompt_n += timings.get("prompt_n", 0)
        predicted_n += timings.get("predicted_n", 0)
        texts.append(out["choices"][0]["message"].get("content") or "")
    return {"seconds": time.perf_counter() - started,
            "prompt_tps": prompt_n / max(prompt_ms / 1000, 1e-9),
            "decode_tps": predicted_n / max(predicted_ms / 1000, 1e-9),
            "prompt_s": prompt_ms / 1000, "decode_s": predicted_ms / 1000, "texts": texts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1:1,1:2,2:2", help="decode:prompt thread pairs")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--requests", type=int, default=4)
    ap.add_argument("--out", type=Path, default=RESULTS / "llm_threads.json")
    args = ap.parse_args()
    from adpilot.backends.llm.llamacpp import LlamaCppBackend
    from adpilot.backends.llm.models import DEFAULT_MODEL, model_path
    from adpilot.config import get_settings

    gguf = model_path(DEFAULT_MODEL, cache_dir=get_settings().models_dir)
    batch = requests(args.requests)
    settings = [tuple(int(x) for x in pair.split(":")) for pair in args.threads.split(",")]
    runs: dict[tuple[int, int], list[dict]] = {s: [] for s in settings}
    for _ in range(args.reps):  # settings interleaved, so a change of machine load hits all
        for decode, prompt in settings:
            backend = LlamaCppBackend(str(gguf), n_threads=decode, n_threads_batch=prompt)
            backend._load()  # loading is not decoding
            runs[(decode, prompt)].append(run_batch(backend, batch))
            backend.close()
            print(decode, prompt, round(runs[(decode, prompt)][-1]["seconds"], 1), flush=True)
    first = runs[settings[0]]
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "model": gguf.name, "requests": len(batch), "reps": args.reps, "runs": {}}
    for (decode, prompt), rs in runs.items():
        result["runs"][f"{decode}:{prompt}"] = {
            "decode_threads": decode, "prompt_threads": prompt,
            **{k: stats([r[k] for r in rs])
               for k in ("seconds", "prompt_s", "decode_s", "prompt_tps", "decode_tps")},
            "same_replies_as_first": all(r["texts"] == f["texts"] for r, f in zip(rs, first, strict=True))}
    base = result["runs"][f"{settings[0][0]}:{settings[0][1]}"]["seconds"]["median"]
    for r in result["runs"].values():
        r["speedup_vs_first"] = round(base / r["seconds"]["median"], 2)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
