"""Decode speed of the default local model against this machine's memory bandwidth, and
personalised messages per hour: segment-then-personalise vs naive per-user generation.

1. bandwidth: a numpy copy of a buffer the size of the GGUF file (read + write counted),
   min/median/max of --reps; decoding one token at batch 1 reads every weight once, so
   ``bandwidth / model bytes`` is the decode ceiling in tokens/s.
2. decode: llama.cpp, batch 1, greedy, EOS suppressed, --tokens new tokens after a short prompt;
   decode rate excludes prompt processing (time from the first streamed token to the last).
   Reported as % of the ceiling measured in the same run.
3. messages per hour for 10,000 users (same backend, same prompts): a sample of real
   generations times one LLM variant (segment copy) and one per-user generation; the per-user
   slot filling + guardrail re-check is run for real on all 10,000 users. Totals for a plan of
   --segments × --products variants are extrapolated from that sample and stated as such.

Usage: nice -n 10 python benchmarks/llm_decode.py [--reps 3] [--tokens 64]
Writes benchmarks/results/llm_decode.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def stats(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def copy_bandwidth(nbytes: int, reps: int) -> list[float]:
    """Bytes moved per second (read + write) by copying an ``nbytes`` buffer."""
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in first
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        np.copyto(dst, src)
        out.append(2 * nbytes / (time.perf_counter() - t))
    del src, dst
    return out


def decode_rate(llm, n_tokens: int) -> tuple[float, float]:
    """(decode tokens/s excluding the prompt, prompt seconds) for one greedy run of n tokens."""
    prompt = "Write a long, friendly product description of a linen shirt for summer:\n"
    started = time.perf_counter()
    first = None
    count = 0
    for _ in llm.create_completion(prompt, max_tokens=n_tokens, temperature=0.0, stream=True,
                                   logit_bias={llm.token_eos(): -1e9}):
        count += 1
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    return (count - 1) / (end - first), first - started


def messages_per_hour(backend, n_users: int, segments: int, products: int,
                      sample_products: int = 2, sample_users: int = 2) -> dict:
    from adpilot.data.records import Product
    from adpilot.generation import Audience, CopyGenerator, Personaliser, PromptCache, UserTarget

    prods = {f"p{i}": Product(id=f"p{i}", title=t, category="Tops", description=d) for i, (t, d) in
             enumerate([("Linen shirt", "breathable linen, relaxed fit"),
                        ("Merino sweater", "fine merino wool, machine washable")])}
    segs = {"s0": Audience(description="women 25-34 who buy tops", likes=["fit"]),
            "s1": Audience(description="women 45-60 who value quality", likes=["quality"])}
    aspects = ["fit", "quality", "comfort", "style", None]
    targets = [UserTarget(f"u{i}", f"s{i % 2}", f"p{(i // 2) % sample_products}", aspects[i % 5])
               for i in range(n_users)]
    from adpilot.artifacts import ModelStore
    from adpilot.config import get_settings

    gen = CopyGenerator(backend, cache=PromptCache(Path(os.environ.get("TMPDIR", "/tmp"))
                                                    / f"adpilot-bench-{time.time_ns()}"),
                        store=ModelStore.from_settings(get_settings()))
    seg_run = Personaliser(gen).run(targets, prods, segs, "sms", "en", mode="segment")
    per_variant = seg_run.llm_seconds / seg_run.llm_variants
    users = {t.user_id: Audience(kind="user", description=f"shopper who cares about {t.aspect}")
             for t in targets[:sample_users]}
    user_run = Personaliser(gen).run(targets[:sample_users], prods, segs, "sms", "en", users=users,
                                     mode="per_user")
    per_user = user_run.llm_seconds / len(user_run.messages)
    planned_variants = segments * products
    seg_total = planned_variants * per_variant + seg_run.fill_seconds
    naive_total = n_users * per_user
    return {
        "note": "extrapolated: LLM seconds per variant measured on a sample of "
                f"{seg_run.llm_variants} segment variants and {len(user_run.messages)} per-user "
                f"generations; slot filling + guardrail re-check measured on all {n_users} users",
        "users": n_users, "plan": f"{segments} segments x {products} products, one channel (sms, en)",
        "sample_segment_variants": seg_run.llm_variants,
        "seconds_per_segment_variant": round(per_variant, 2),
        "seconds_per_user_generation": round(per_user, 2),
        "fill_seconds_all_users": round(seg_run.fill_seconds, 3),
        "personalised_share": round(sum(m.personalised for m in seg_run.messages) / n_users, 3),
        "passed_share": round(sum(m.passed for m in seg_run.messages) / n_users, 3),
        "segment_then_personalise": {"seconds": round(seg_total, 1),
                                     "messages_per_hour": round(n_users / seg_total * 3600)},
        "naive_per_user": {"seconds": round(naive_total, 1),
                           "messages_per_hour": round(n_users / naive_total * 3600)},
        "ratio": round(naive_total / seg_total, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--segments", type=int, default=10)
    ap.add_argument("--products", type=int, default=10)
    ap.add_argument("--sample-products", type=int, default=2, choices=[1, 2])
    ap.add_argument("--sample-users", type=int, default=2)
    ap.add_argument("--skip-personalise", action="store_true")
    args = ap.parse_args()
    from adpilot.artifacts import ModelStore
    from adpilot.config import get_settings
    from adpilot.datasets_fetch import DataSources
    from adpilot.models_fetch import ensure_copy_models

    # the guardrails' and scorecard's models
    ensure_copy_models(ModelStore.from_settings(get_settings()),
                       sources=DataSources.from_settings(get_settings()))

    # llama-cpp-python's Llama API (create_completion, token_eos) is what this script drives;
    # benchmarks/llm_bindings.py measures the default xllamacpp binding beside it
    from adpilot.backends.llm.llamacpp_python import LlamaCppPythonBackend as LlamaCppBackend
    from adpilot.backends.llm.models import DEFAULT_MODEL, model_path
    from adpilot.config import get_settings

    path = model_path(DEFAULT_MODEL, cache_dir=get_settings().models_dir)
    size = path.stat().st_size
    bw = copy_bandwidth(size, args.reps + 2)
    backend = LlamaCppBackend(DEFAULT_MODEL, models_dir=get_settings().models_dir)
    llm = backend._load()
    decode_rate(llm, 8)  # warm-up: weights paged in, threads spun up
    runs = [decode_rate(llm, args.tokens) for _ in range(args.reps)]
    rates = [r for r, _ in runs]
    ceiling = [b / size for b in bw]
    result = {
        "machine": {"cpus": os.cpu_count(), "threads": backend.n_threads, "python": platform.python_version(),
                    "note": "2 cores shared with other jobs; run niced, timings are noisy"},
        "model": {"name": DEFAULT_MODEL, "bytes": size},
        "copy_bandwidth_GBps": {k: round(v / 1e9, 2) for k, v in stats(bw).items()},
        "decode_ceiling_tokens_per_s": {k: round(v, 2) for k, v in stats(ceiling).items()},
        "decode_tokens_per_s": {k: round(v, 2) for k, v in stats(rates).items()},
        "prompt_seconds": round(statistics.median(p for _, p in runs), 3),
        "percent_of_bandwidth_limit": round(100 * statistics.median(rates) / statistics.median(ceiling), 1),
        "reps": args.reps, "new_tokens": args.tokens,
    }
    print(json.dumps(result, indent=2))
    if not args.skip_personalise:
        result["messages_per_hour_10k_users"] = messages_per_hour(
            backend, args.users, args.segments, args.products, args.sample_products, args.sample_users)
    backend.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "llm_decode.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result.get("messages_per_hour_10k_users"), indent=2))


if __name__ == "__main__":
    main()
