"""Copy requests decoded one at a time vs together (llama.cpp continuous batching, in-process).

The same batch of real copy prompts (the generator's e-mail prompt and output schema for the
built-in sample's English and Chinese products, one variant each, greedy, fixed seed) is
written by ``LlamaCppBackend(parallel=P)`` through ``CopyGenerator.map`` (which keeps the
backend's ``concurrency`` requests in flight, as the campaign step does) for each P of
``--parallel``, each repetition loading nothing new (the model is loaded before the clock
starts). Decoding one
token reads every weight once; decoding P sequences together reads them once for all P, so on
a memory-bound CPU the batch should finish in well under P times one request's time.
Reported per P: wall seconds for the batch and generated tokens per second, median / min / max
of ``--reps``, and the ratio to P = 1 from the same run.

Usage: python benchmarks/llm_parallel.py [--parallel 1,2,4] [--reps 3] [--requests 4]
Writes benchmarks/results/llm_parallel.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import time
from importlib import resources
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def sample_products(n: int):
    """The first ``n`` sample products, English and Chinese alternating."""
    from adpilot.data.records import Product

    with (resources.files("adpilot") / "sample" / "products.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    by_lang = {lang: [r for r in rows if r["language"] == lang] for lang in ("en", "zh")}
    picked = [r for pair in zip(by_lang["en"], by_lang["zh"], strict=False) for r in pair][:n]
    return [Product(id=r["product_id"], title=r["title"], category=r["category"],
                    price=float(r["price"]) if r["price"] else None, currency=r["currency"],
                    description=r["description"], language=r["language"]) for r in picked]


def requests(n: int):
    """(messages, params) of the generator's first e-mail variant for ``n`` products."""
    from adpilot.backends.llm.base import GenerationParams
    from adpilot.generation import Audience, channel_spec, load_brand
    from adpilot.generation.generator import max_tokens_for, output_schema
    from adpilot.generation.prompts import build_prompt

    brand, out = load_brand(), []
    for p in sample_products(n):
        spec = channel_spec("email", p.language)
        prompt = build_prompt(p, Audience(description="customers of the shop"), spec, brand)
        out.append((prompt.messages, GenerationParams(
            max_tokens=max_tokens_for(spec, brand), temperature=0.0, seed=0,
            json_schema=output_schema(spec, brand))))
    return out


def run_batch(generator, batch) -> tuple[float, int]:
    """Wall seconds and generated tokens for the whole batch, each request with its own
    params, mapped as the generator maps a campaign's texts."""
    started = time.perf_counter()
    done = generator.map(lambda r: generator.backend.complete(*r), batch)
    return time.perf_counter() - started, sum(c.usage.completion_tokens for c in done)


def stats(xs: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(xs), 2), "min": round(min(xs), 2),
            "max": round(max(xs), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parallel", default="1,2,4")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--requests", type=int, default=4)
    ap.add_argument("--out", type=Path, default=RESULTS / "llm_parallel.json")
    args = ap.parse_args()
    from adpilot.backends.llm.llamacpp import LlamaCppBackend
    from adpilot.backends.llm.models import DEFAULT_MODEL, model_path
    from adpilot.config import get_settings
    from adpilot.generation import CopyGenerator

    gguf = model_path(DEFAULT_MODEL, cache_dir=get_settings().models_dir)
    batch = requests(args.requests)
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "model": gguf.name, "requests": len(batch), "reps": args.reps, "runs": {}}
    for p in (int(x) for x in args.parallel.split(",")):
        backend = LlamaCppBackend(str(gguf), parallel=p)
        backend._load()  # loading is not decoding
        generator = CopyGenerator(backend, cache=False)  # only its map is used
        runs = [run_batch(generator, batch) for _ in range(args.reps)]
        backend.close()
        result["runs"][p] = {"batch_seconds": stats([s for s, _ in runs]),
                             "tokens": [t for _, t in runs],
                             "tokens_per_s": stats([t / s for s, t in runs])}
        print(p, result["runs"][p], flush=True)
    one = result["runs"].get(1)
    if one:
        for r in result["runs"].values():
            r["speedup_vs_1"] = round(one["batch_seconds"]["median"] / r["batch_seconds"]["median"], 2)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
