"""The copy step of ``make demo``, timed: generated tokens per accepted variant and seconds.

Runs the pipeline's ingest and profiles steps on the built-in sample (sentiment from ratings,
so no model is trained first), then writes the campaign copy exactly as ``step_copy`` does
(``plan_campaign``, e-mail, at most 4 segment variants per language) with the prompt cache off,
counting every model call. Run it against another checkout to compare (``--src old/src``
puts that tree first on the path, e.g. today's prompts from ``git archive``):

    python evaluation/copy_step_bench.py --out evaluation/results/copy_step.json
    git archive <rev> src | tar -x -C /tmp/base && \
        python evaluation/copy_step_bench.py --src /tmp/base/src --label before --out ...
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from checkout_models import ensure_checkout_models, model_store_option


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", help="put this source tree first on sys.path (another checkout)")
    ap.add_argument("--label", default="after")
    ap.add_argument("--out", type=Path, help="append the result to this JSON file")
    ap.add_argument("--sentiment", default="rating")
    ap.add_argument("--fresh-cache", action="store_true",
                    help="an empty prompt cache, as on a fresh home (identical prompts of one run "
                         "are written once, as `make demo` does); default: no cache")
    args = ap.parse_args()
    if args.src:
        sys.path.insert(0, str(Path(args.src).resolve()))
    ensure_checkout_models()  # the models the guardrails and scorecard load

    from adpilot.generation import CopyGenerator
    from adpilot.generation.campaign import plan_campaign
    from adpilot.pipeline import run, step_ingest, step_profiles

    variants = []
    work = Path(tempfile.mkdtemp(prefix="copy-bench-"))
    holder = {}

    def step_copy_timed(ctx) -> None:
        from adpilot.backends.llm import get_backend
        from adpilot.backends.llm.models import DEFAULT_MODEL, model_path
        from adpilot.config import get_settings
        from adpilot.generation import PromptCache

        cache = PromptCache(work / "llm-cache") if args.fresh_cache else False
        gguf = model_path(DEFAULT_MODEL, cache_dir=get_settings().models_dir)  # any checkout
        gen = CopyGenerator(get_backend(ctx.llm, model=str(gguf)), cache=cache,
                            on_message=variants.append, **model_store_option(CopyGenerator))
        gen.backend._load()  # model load is not copy-writing time
        started = time.perf_counter()
        plan = plan_campaign(ctx.profiles.profiles.table, ctx.profiles.segments,
                             ctx.table("products"), ctx.table("reviews"), gen,
                             channels=("email",), max_variants=4)
        holder["seconds"] = time.perf_counter() - started
        holder["plan"] = plan

    run(work / "out", db_url=f"sqlite:///{work / 'bench.db'}",
        steps=[("ingest", step_ingest), ("profiles", step_profiles), ("copy", step_copy_timed)],
        sentiment=args.sentiment)
    plan = holder["plan"]
    accepted = [v for v in variants if v.passed]
    tokens = sum(v.usage.completion_tokens for v in variants if not v.cached)
    distinct = plan.drop_duplicates("text")
    result = {
        "label": args.label, "src": args.src or "this checkout",
        "variants": len(variants), "accepted": len(accepted),
        "cached": sum(v.cached for v in variants), "fresh_cache": args.fresh_cache,
        "generated_tokens": tokens, "prompt_tokens": sum(v.usage.prompt_tokens for v in variants),
        "tokens_per_accepted_variant": round(tokens / len(accepted), 1) if accepted else None,
        "attempts": [v.attempts for v in variants],
        "copy_step_seconds": round(holder["seconds"], 1),
        "seconds_per_variant": round(holder["seconds"] / max(len(variants), 1), 1),
        "messages": len(plan), "messages_passed": int(plan["passed"].sum()),
        "texts": [{"lang": r.lang, "segment": r.segment, "product_id": r.product_id,
                   "text": r.text, "passed": bool(r.passed), "violations": r.violations}
                  for r in distinct.itertuples()],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "texts"}, indent=1))
    for t in result["texts"]:
        print(f"[{t['lang']} {t['product_id']} {'ok' if t['passed'] else 'FAIL'}] {t['text']!r}"
              + (f"  <- {t['violations']}" if t["violations"] else ""))
    if args.out:
        old = json.loads(args.out.read_text()) if args.out.exists() else []
        old = [r for r in old if r["label"] != args.label] + [result]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(old, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
